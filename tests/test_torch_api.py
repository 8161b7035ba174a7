"""The torch APIs qtrain leans on beyond the everyday ones, checked for what
qtrain needs of them, so that a torch that drops or changes one fails here by
name rather than somewhere deep in a run: torch.func.debug_unwrap (public),
which tells a transform's wrapper from a plain tensor, and
torch._C._DisableFuncTorch (private, the one private call, behind
`engine.plain_tensors`), which keeps the constants a program caches plain
when it is first built inside a transform."""

import dataclasses

import pytest
import torch
from torch.autograd import forward_ad
from torch.func import grad, jacrev, jvp, vmap

import qtrain.engine.program as program_module
from qtrain import Circuit
from qtrain._execution import compiled
from qtrain.engine import plain_tensors
from qtrain.engine.run import _transformed

H = "0.7*Z0 Z1 - 0.4*X0 Y2 + 0.3*Y1 + Z2"


def _wrapped(tensor: torch.Tensor) -> bool:
    return torch.func.debug_unwrap(tensor, recurse=False) is not tensor


def _inside(transform: str, f):
    """Run f(x) -> scalar inside the named transform; f sees x as the transform does."""
    x = torch.ones(3, dtype=torch.float64)
    if transform == "grad":
        grad(f)(x)
    elif transform == "jacrev":
        jacrev(f)(x)
    elif transform == "jvp":
        jvp(f, (x,), (torch.ones_like(x),))
    elif transform == "vmap(grad)":
        vmap(grad(f))(x.expand(2, 3))
    elif transform == "vmap":
        vmap(f)(x.expand(2, 3))
    else:
        raise ValueError(f"unknown transform {transform!r}")


#: the transforms that wrap every tensor made inside them, constants too (vmap alone does not)
TRANSFORMS = ["grad", "jacrev", "jvp", "vmap(grad)"]


def test_the_private_guard_is_still_in_torch():
    assert hasattr(torch._C, "_DisableFuncTorch"), (
        f"torch {torch.__version__} dropped torch._C._DisableFuncTorch: engine.plain_tensors needs a replacement "
        "(see its docstring for what it must do), and pyproject's torch range an upper bound below this torch"
    )


def test_debug_unwrap_hands_a_plain_tensor_back_as_it_is():
    t = torch.ones(2)
    assert torch.func.debug_unwrap(t, recurse=False) is t
    assert not _transformed(t)


@pytest.mark.parametrize("transform", [*TRANSFORMS, "vmap"])
def test_transformed_sees_every_transform_and_only_it(transform):
    seen = {}

    def f(x):
        seen["input"] = _transformed(x)
        with plain_tensors():
            seen["constant"] = _transformed(torch.ones(3, dtype=torch.float64))
        return (x * x).sum()

    _inside(transform, f)
    assert seen == {"input": True, "constant": False}


def test_transformed_sees_a_forward_mode_tangent():
    t = torch.ones(2, dtype=torch.float64)
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(t, torch.ones_like(t))
        assert not _wrapped(dual)  # not a functorch wrapper: only its tangent tells
        assert _transformed(dual)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_plain_tensors_keeps_constants_plain_inside_transforms(transform):
    made = {}

    def f(x):
        made["bare"] = torch.ones(2, dtype=torch.float64)
        with plain_tensors():
            made["guarded"] = torch.ones(2, dtype=torch.float64)
            made["converted"] = torch.eye(2, dtype=torch.complex128).to(torch.complex64)
        return (x * x).sum()

    _inside(transform, f)
    # The premise: without the guard a constant made in the transform is its wrapper. If a torch
    # stops wrapping constants, plain_tensors may no longer be needed: check its docstring's cases again.
    assert _wrapped(made["bare"]), f"torch {torch.__version__} no longer wraps constants made inside {transform}"
    assert not _wrapped(made["guarded"]) and not _wrapped(made["converted"])


def test_plain_tensors_without_the_guard_fails_by_name(monkeypatch):
    monkeypatch.setattr(program_module, "_DISABLE_FUNCTORCH", None)
    with pytest.raises(RuntimeError, match=r"torch\._C\._DisableFuncTorch"):
        plain_tensors()


def _wrappers(obj, path: str = "") -> list[str]:
    """Where in obj (tensors in dicts, lists, tuples and dataclasses) a functorch wrapper sits."""
    if isinstance(obj, torch.Tensor):
        return [path] if _wrapped(obj) else []
    if isinstance(obj, dict):
        return [w for k, v in obj.items() for w in _wrappers(v, f"{path}[{k!r}]")]
    if isinstance(obj, (list, tuple)):
        return [w for i, v in enumerate(obj) for w in _wrappers(v, f"{path}[{i}]")]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [w for f in dataclasses.fields(obj) for w in _wrappers(getattr(obj, f.name), f"{path}.{f.name}")]
    return []


def _circuit() -> Circuit:
    c = Circuit(3)
    for layer in range(2):
        for q in range(3):
            c.ry(q, f"a{layer}{q}").rz(q, 0.3).u3(q, f"b{layer}{q}", 0.2, f"c{layer}{q}")
        c.cnot(0, 1).cnot(1, 2).cz(0, 2).crx(0, 2, f"d{layer}")
    return c


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint"])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_a_program_first_built_inside_a_transform_keeps_no_wrapper(transform, diff_method):
    """The circuit is lowered, and its operands converted and cached, inside the
    transform; afterwards nothing cached is a wrapper and plain runs agree with
    a circuit built outside any transform."""
    c, fresh = _circuit(), _circuit()
    theta = torch.rand(c.n_params, dtype=torch.float64)
    _inside(transform, lambda x: c.expval(theta + x.sum(), H, diff_method=diff_method, light_cone=False).sum())
    entry = compiled(c._snapshot())
    program = entry.program
    assert _wrappers(program.steps, "steps") + _wrappers(program._operands, "_operands") == []
    gathers = [t for pair in entry._on_device.values() for t in pair if t is not None]  # the slot index and scales
    assert gathers and not any(_wrapped(t) for t in gathers)
    t = theta.clone().requires_grad_(True)
    (got,) = torch.autograd.grad(c.expval(t, H, diff_method=diff_method).sum(), t)
    t_fresh = theta.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(fresh.expval(t_fresh, H, diff_method=diff_method).sum(), t_fresh)
    assert torch.allclose(got, want, atol=1e-12, rtol=0)
    assert torch.allclose(c.expval(theta, H), fresh.expval(theta, H), atol=1e-12, rtol=0)
