"""Which parameter element an imported angle is, proved from autograd's graph.

Both importers (PennyLane, torchquantum) see a gate's angle as a torch tensor
computed from the tensors whose elements become qtrain parameters (the
sources: a quantum function's arguments, a tape's leaves, a module's
Parameters, an input batch). A qtrain angle is a parameter as it is or a
constant, so an angle is read as source element `w[i]` only when it can be
proved to be that element:

1. every step on every autograd path from the angle to a source is
   structural: it moves or copies elements without computing (select, slice,
   index, unbind, view, reshape, squeeze, expand, clone, a dtype or device
   cast, stack, cat, ...; `STRUCTURAL`). Such a step maps each output
   element to exactly one input element, so arithmetic of any kind (sin w,
   w * w, w / 2, w0 - w1, w * 1.0) is refused, whatever its value and
   derivative happen to be at the traced point.
2. the element is then found by pushing values backward through that
   (proved linear, selection-only) graph: each angle entry sends its value
   to the one source element it is. Ones land as a one-hot holding the
   number of entries when every entry is the same element; for an input
   batch, labels r + 1 land as one label per sample in one column when
   entry r is that element of sample r.

An angle with no path to a source (requires_grad False, or a graph that
reaches only other leaves) is a constant. Anything else raises
`qtrain.errors.UsageError` naming the gate and the angle's expression,
`sin(w[0])`, so the user sees what was computed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, SupportsIndex

import numpy as np
import torch

from qtrain.errors import UsageError

__all__ = ["Source", "trace_angle"]

#: autograd nodes (their class names without `Backward<k>`, lower case, no underscores) that
#: only move or copy elements: each output element is exactly one input element
STRUCTURAL = frozenset({
    "select", "slice", "index", "indexselect", "gather", "unbind", "split", "splitwithsizes", "unsafesplit",
    "unsafesplitwithsizes", "view", "unsafeview", "reshapealias", "alias", "squeeze", "unsqueeze", "expand", "repeat",
    "clone", "tocopy", "permute", "t", "transpose", "stack", "cat", "flip", "roll", "diagonal", "asstrided", "unfold",
})
_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
_RENDER_DEPTH = 5  # levels of an expression shown in a refusal before "…"
_RENDER_CHARS = 100


def fixed_angle(angle: float | None) -> float:
    """The fixed angle of a gate argument that holds no parameter: an Op's argument holds one or the other
    (`op.params[i]` or `op.angles[i]`), which the exporters rely on."""
    if angle is None:
        raise ValueError("a gate argument holds neither a parameter nor a fixed angle")
    return angle


@dataclass(frozen=True)
class Source:
    """A tensor whose elements are parameters, named `name[i,j]` by the
    element's own index (`name` alone for a 0-d tensor). `batched`: axis 0
    is the sample axis of an input batch, so an angle's entry r must be
    element r of that axis, and the name indexes the other axes only."""

    name: str
    tensor: torch.Tensor
    batched: bool = False
    hint: str = ""  # appended to a refusal of an angle computed from this source

    def element(self, index: Sequence[SupportsIndex]) -> str:  # ints, or numpy's (np.unravel_index)
        return self.name if len(index) == 0 else f"{self.name}[{','.join(str(int(i)) for i in index)}]"


def trace_angle(angle: torch.Tensor, sources: Sequence[Source], where: str, hint: str = "") -> str | None:
    """The name of the source element `angle` is (every entry of it: an
    angle of shape (rows,) holds one value per sample), or None when it
    depends on no source (a constant). Raises UsageError, starting with
    `where` and ending with `hint`, for anything else (module docstring)."""
    if not (isinstance(angle, torch.Tensor) and angle.requires_grad):
        return None
    by_id = {id(s.tensor): s for s in sources}
    if angle.grad_fn is None:  # a leaf: a source as it is, or some other tensor (a constant here)
        source = by_id.get(id(angle))
        if source is None:
            return None
        return _name(source, _pushed_values(angle, source.batched), angle, where, hint)
    reached, offending = _walk(angle.grad_fn, by_id)
    if not reached:
        return None
    if offending:
        expression = _render(angle.grad_fn, by_id, 0)
        hints = "".join(dict.fromkeys(s.hint for s in reached if s.hint))
        raise UsageError(
            f"{where}: its angle is {expression}; qtrain maps an angle to a parameter only as the parameter itself "
            f"({_readable(offending[0])} is not a structural step such as indexing, reshape or a cast){hints}{hint}"
        )
    # the graph to the sources only moves elements: push values back to see where each entry comes from
    tensors = [s.tensor for s in reached]
    pushed = torch.autograd.grad(angle, tensors, grad_outputs=_pushed_values(angle, False), retain_graph=True, allow_unused=True)
    landed = [(s, g) for s, g in zip(reached, pushed) if g is not None and g.count_nonzero() > 0]
    if not landed:
        return None  # the entries come from a constant part of the graph (e.g. a stacked fixed value)
    if len(landed) > 1:
        raise UsageError(f"{where}: its angle takes elements of several parameters ({', '.join(s.name for s, _ in landed)}) "
                         f"in different samples; qtrain maps an angle to one parameter{hint}")
    source, grad = landed[0]
    if source.batched:  # which sample each entry comes from: labels
        (grad,) = torch.autograd.grad(angle, [source.tensor], grad_outputs=_pushed_values(angle, True), retain_graph=True)
    return _name(source, grad, angle, where, hint)


def _pushed_values(angle: torch.Tensor, labels: bool) -> torch.Tensor:
    """Ones (exact sums up to 2**24 entries in float32), or the labels 1..n for an input batch, shaped like angle."""
    if not labels:
        return torch.ones_like(angle)
    return torch.arange(1, angle.numel() + 1, dtype=angle.dtype, device=angle.device).reshape(angle.shape)


def _name(source: Source, grad: torch.Tensor, angle: torch.Tensor, where: str, hint: str = "") -> str:
    """The element the pushed labels landed on, checked to be one element for every entry of the angle."""
    name = _element(source, grad, angle.numel())
    if name is not None:
        return name
    if source.batched:
        raise UsageError(f"{where}: its angle is not one element of {source.name} taken sample by sample (entry r from "
                         f"sample r); qtrain maps an input angle only to the same element of every sample{hint}")
    raise UsageError(f"{where}: its angle takes different elements of {source.name} (or a constant) in different samples; "
                     f"qtrain maps an angle to one parameter{hint}")


def _element(source: Source, grad: torch.Tensor, count: int) -> str | None:
    """The name of the element that `_pushed_values`, pushed back from an angle's count entries, landed
    on as `grad`: the same element for every entry (ones), or for an input batch element r of the
    sample axis for entry r, the same element of each sample (labels). None when they landed otherwise."""
    if source.batched:
        per_sample = grad.reshape(grad.shape[0], -1) if grad.dim() else grad.reshape(1, 1)
        columns = per_sample.ne(0).any(0).nonzero().flatten()
        expected = torch.arange(1, per_sample.shape[0] + 1, dtype=grad.dtype, device=grad.device)
        if len(columns) == 1 and count == per_sample.shape[0] and torch.equal(per_sample[:, columns[0]], expected):
            per_sample_shape = tuple(source.tensor.shape[1:])
            return source.element(np.unravel_index(int(columns[0]), per_sample_shape) if per_sample_shape else ())
        return None
    flat = grad.reshape(-1)
    hits = flat.nonzero().flatten()
    if len(hits) == 1 and float(flat[hits[0]]) == count:  # every entry landed on this one element
        return source.element(np.unravel_index(int(hits[0]), tuple(source.tensor.shape)))
    return None


def _walk(root: Any, by_id: dict[int, Source]) -> tuple[list[Source], list[Any]]:
    """(the sources reachable from root, the non-structural nodes on paths to
    them, nearest the angle first). Iterative: a network's graph can be deep."""
    reaches: dict[int, bool] = {}
    keep: dict[int, Any] = {}  # holds each node, so no other node takes its id during the walk
    order: list[Any] = []
    found: dict[int, Source] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            reaches[key] = any(reaches.get(id(child), False) for child, _ in node.next_functions if child is not None)
            order.append(node)
            continue
        if key in keep:
            continue
        keep[key] = node
        if hasattr(node, "variable"):  # AccumulateGrad: a leaf
            source = by_id.get(id(node.variable))
            reaches[key] = source is not None
            if source is not None:
                found.setdefault(id(source.tensor), source)
            continue
        stack.append((node, True))
        stack.extend((child, False) for child, _ in node.next_functions if child is not None and id(child) not in keep)
    offending = [n for n in reversed(order) if reaches[id(n)] and _stem(n) not in STRUCTURAL]
    return list(found.values()), offending


def _stem(node: Any) -> str:
    match = re.match(r"(.*?)Backward\d*(_copy)?$", type(node).__name__)
    return (match.group(1) if match else type(node).__name__).lower()


def _readable(node: Any) -> str:
    """SinBackward0 -> sin, IndexSelectBackward0 -> index_select, CopySlices -> copy_slices."""
    match = re.match(r"(.*?)Backward\d*(_copy)?$", type(node).__name__)
    camel = match.group(1) if match else type(node).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _render(node: Any, by_id: dict[int, Source], depth: int) -> str:
    """A short readable expression of what the graph below node computes,
    `w[1] + w[1] ** 2`, for refusals only (best effort: `…` past a depth)."""
    text = _render_node(node, by_id, depth)
    return text if len(text) <= _RENDER_CHARS else text[: _RENDER_CHARS - 1] + "…"


def _render_node(node: Any, by_id: dict[int, Source], depth: int) -> str:
    if node is None:
        return "const"
    if hasattr(node, "variable"):
        source = by_id.get(id(node.variable))
        return source.name if source is not None else "const"
    if depth >= _RENDER_DEPTH:
        return "…"
    stem = _stem(node)
    if stem in STRUCTURAL:
        element = _structural_element(node, by_id)
        if element is not None:
            return element
        inner = [_render_node(child, by_id, depth + 1) for child, _ in node.next_functions if child is not None]
        return inner[0] if len(inner) == 1 else f"{_readable(node)}({', '.join(inner)})"
    args = [_render_node(child, by_id, depth + 1) if child is not None else _constant(node, slot)
            for slot, (child, _) in enumerate(node.next_functions)]
    if stem in _INFIX and len(args) == 1:  # a Python-number operand is no input of the node: 2 * w, w ** 3
        args.append(_constant(node, 1))
    if stem in _INFIX and len(args) == 2:
        return f"{_wrap(args[0])} {_INFIX[stem]} {_wrap(args[1])}"
    if stem == "neg" and len(args) == 1:
        return f"-{_wrap(args[0])}"
    return f"{_readable(node)}({', '.join(args)})"


def _wrap(text: str) -> str:
    return f"({text})" if " " in text and not text.startswith("(") else text


def _constant(node: Any, slot: int) -> str:
    """The constant operand of a binary node, where autograd saved it (mul, div, pow); else `const`."""
    for attribute in ("_saved_self",) if slot == 0 else ("_saved_exponent", "_saved_other"):
        value = getattr(node, attribute, None)
        if isinstance(value, (int, float)):
            return f"{value:g}"
        if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.requires_grad:
            return f"{value.item():g}"
    return "const"


def _structural_element(node: Any, by_id: dict[int, Source]) -> str | None:
    """`w[0]` for a structural subgraph whose output is one source element
    (for an input batch: that element of every sample), found by pushing
    values through its nodes as `trace_angle` does; else None."""
    try:
        (meta,) = node._input_metadata
        output = torch.zeros(tuple(meta.shape), dtype=meta.dtype)  # stands for the subgraph's output: its shape and dtype
        landed = _push_through(node, _pushed_values(output, False), by_id)
        if len(landed) != 1:
            return None
        source, grad = landed[0]
        if source is not None and source.batched:
            ((source, grad),) = _push_through(node, _pushed_values(output, True), by_id)
        return None if source is None else _element(source, grad, output.numel())
    except Exception:  # a description only: never let it hide the refusal it decorates
        return None


def _push_through(root: Any, values: torch.Tensor, by_id: dict[int, Source]) -> list[tuple[Source | None, torch.Tensor]]:
    """(source or None, what landed on it) for each leaf that `values`, pushed back from root's
    output through its structural nodes (called one by one, in order), reaches with nonzeros."""
    grads, nodes = {id(root): values}, {id(root): root}
    for current in _structural_order(root):
        outputs = current(grads.pop(id(current)))
        outputs = (outputs,) if isinstance(outputs, torch.Tensor) else outputs
        for (child, _), grad in zip(current.next_functions, outputs):
            if child is None or grad is None:
                continue
            grads[id(child)] = grads[id(child)] + grad if id(child) in grads else grad
            nodes[id(child)] = child
    leaves = [(nodes[k].variable, g) for k, g in grads.items() if hasattr(nodes[k], "variable") and g.count_nonzero()]
    return [(by_id.get(id(leaf)), g) for leaf, g in leaves]


def _structural_order(root: Any) -> list[Any]:
    """The structural nodes below root (root first), each after every node that feeds it a gradient."""
    seen: dict[int, Any] = {}
    post: list[Any] = []
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            post.append(node)
            continue
        if id(node) in seen or hasattr(node, "variable"):
            continue
        if _stem(node) not in STRUCTURAL:
            raise ValueError("not structural")
        seen[id(node)] = node
        stack.append((node, True))
        stack.extend((child, False) for child, _ in node.next_functions if child is not None)
    return post[::-1]
