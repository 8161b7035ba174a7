"""The structural tracer both importers share (qtrain.interop._tracing): an
angle is a parameter element only when autograd's path to it only moves
elements. The corpora here also drive the PennyLane and torchquantum tests,
so each case is checked through both importers too."""

import re

import pytest
import torch

from qtrain.errors import UsageError
from qtrain.interop._tracing import Source, trace_angle

#: (case, angle from w (3,), the value of every w element at the traced point, the expression and op a refusal names).
#: The first four are what the old value-and-derivative test took as w at 0 (value w, derivative 1): a different circuit.
REFUSED = [
    ("sin w", lambda w: torch.sin(w[0]), 0.0, "sin(w[0])", "sin"),
    ("w + w^2", lambda w: w[0] + w[0] ** 2, 0.0, "w[0] + (w[0] ** 2)", "add"),
    ("exp(w) - 1", lambda w: torch.exp(w[0]) - 1, 0.0, "exp(w[0]) - const", "sub"),
    ("tanh w", lambda w: torch.tanh(w[0]), 0.0, "tanh(w[0])", "tanh"),
    ("w^3", lambda w: w[0] ** 3, 1.0, "w[0] ** 3", "pow"),
    ("w*w", lambda w: w[0] * w[0], 1.0, "w[0] * w[0]", "mul"),
    ("w0 - w1", lambda w: w[0] - w[1], 0.5, "w[0] - w[1]", "sub"),
    ("w/2", lambda w: w[0] / 2, 0.5, "w[0] / 2", "div"),
    ("w0 + sin w1", lambda w: w[0] + torch.sin(w[1]), 0.0, "w[0] + sin(w[1])", "add"),
    # equal to w[0] in value and every derivative at every point: no re-trace elsewhere could tell, the structure does
    ("w * 1.0", lambda w: w[0] * 1.0, 0.3, "w[0] * 1", "mul"),
    ("w + 0", lambda w: w[1] + 0, 0.3, "w[1] + const", "add"),
]

#: (case, angle from w (2, 3), the element of w it is): structural steps only
STRUCTURAL = [
    ("w[1,2]", lambda w: w[1, 2], (1, 2)),
    ("slice", lambda w: w[1, 1:3][0], (1, 1)),
    ("view", lambda w: w.view(6)[4], (1, 1)),
    ("reshape", lambda w: w.reshape(3, 2)[2, 1], (1, 2)),
    ("unbind", lambda w: w.unbind(1)[2][0], (0, 2)),
    ("clone", lambda w: w.clone()[0, 1], (0, 1)),
    ("to float32", lambda w: w.to(torch.float32)[1, 0], (1, 0)),
    ("to float64", lambda w: w.to(torch.float64)[0, 2], (0, 2)),
    ("two casts", lambda w: w.to(torch.float32).to(torch.float64)[1, 1], (1, 1)),
    ("expand", lambda w: w[0, 2].expand(4)[3], (0, 2)),
    ("squeeze", lambda w: w[0:1].squeeze(0)[2], (0, 2)),
    ("unsqueeze", lambda w: w[1].unsqueeze(0)[0, 1], (1, 1)),
    ("transpose", lambda w: w.T[2, 0], (0, 2)),
    ("stack", lambda w: torch.stack([w[1, 0], torch.tensor(0.5, dtype=w.dtype)])[0], (1, 0)),
]


def _w(shape, value=None, dtype=torch.float64):
    w = torch.full(shape, value, dtype=dtype) if value is not None else torch.arange(1, 7, dtype=dtype).reshape(shape) / 7
    return w.requires_grad_(True)


@pytest.mark.parametrize("case, angle, point, expression, op", REFUSED, ids=[c[0] for c in REFUSED])
def test_arithmetic_on_the_path_is_refused_naming_it(case, angle, point, expression, op):
    w = _w((3,), point)
    refusal = "qtrain maps an angle to a parameter only as the parameter itself"
    message = rf"gate 0 RX: its angle is {re.escape(expression)}; {refusal} \({op} is"
    with pytest.raises(UsageError, match=message):
        trace_angle(angle(w), [Source("w", w)], "gate 0 RX")


@pytest.mark.parametrize("case, angle, index", STRUCTURAL, ids=[c[0] for c in STRUCTURAL])
def test_structural_steps_give_the_element(case, angle, index):
    w = _w((2, 3))
    assert trace_angle(angle(w), [Source("w", w)], "gate 0 RX") == f"w[{index[0]},{index[1]}]"


def test_names_and_constants():
    w, scalar = _w((2, 3)), torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    sources = [Source("w", w), Source("s", scalar)]
    assert trace_angle(scalar, sources, "g") == "s"  # a 0-d source is its name alone
    assert trace_angle(scalar.reshape(1)[0], sources, "g") == "s"
    other = torch.tensor(0.2, requires_grad=True)  # a leaf that is no source: what depends on it alone is a constant
    assert trace_angle(torch.sin(other), sources, "g") is None and trace_angle(other, sources, "g") is None
    assert trace_angle(torch.tensor(0.3), sources, "g") is None
    stacked = torch.stack([w[0, 0], torch.tensor(0.5, dtype=torch.float64)])
    assert trace_angle(stacked[1], sources, "g") is None  # the constant stacked beside w[0, 0]
    with pytest.raises(UsageError, match=r"g: its angle is w\[0,0\] \+ s; .*\(add is"):
        trace_angle(w[0, 0] + scalar, sources, "g")
    with pytest.raises(UsageError, match=r"g: its angle is sin\(w\); "):  # sin of several elements: named by the tensor
        trace_angle(torch.sin(w[0, 0:2])[0], sources, "g")


def test_an_input_batch_maps_sample_by_sample():
    """Entry r of an angle column must be element r of the input's sample
    axis, the same element of every sample; a Parameter's element may be
    expanded over the samples."""
    x = torch.rand(4, 2, 3, dtype=torch.float64, requires_grad=True)
    p = torch.rand(1, 3, requires_grad=True)
    sources = [Source("q.params", p), Source("input", x, batched=True)]
    assert trace_angle(x[:, 1, 2], sources, "g") == "input[1,2]"
    assert trace_angle(x.reshape(4, 6)[:, 4], sources, "g") == "input[1,1]"
    assert trace_angle(p[:, 1].expand(4), sources, "g") == "q.params[0,1]"
    assert trace_angle(p[:, 2].expand(50_000), sources, "g") == "q.params[0,2]"  # a large batch: exact float32 counts
    with pytest.raises(UsageError, match="not one element of input taken sample by sample"):
        trace_angle(x[[1, 0, 3, 2], 0, 0], sources, "g")  # rows permuted: structural, but sample 0 gets sample 1's angle
    with pytest.raises(UsageError, match="not one element of input taken sample by sample"):
        trace_angle(x[0, 0, 0].expand(4), sources, "g")  # one sample's value for all
    with pytest.raises(UsageError, match="several parameters"):
        trace_angle(torch.stack([p[0, 0], x[1, 0, 0]]), sources, "g")
    with pytest.raises(UsageError, match=r"its angle is input\[0,0\] \* 3"):
        trace_angle(x[:, 0, 0] * 3, sources, "g")
