"""Whole random circuits against the reference; batching; numerical stability."""

import math

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain.engine.gates import GATES
from tests.circuits import random_circuit, random_theta
from tests.conftest import REAL, TOLERANCE


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_random_circuit_matches_reference(rng, dtype, n):
    rc = random_circuit(rng, n, n_gates=12 * n + 12, batch=3)
    assert len(set(rc.circuit.slot_params)) < len(rc.circuit.slot_params)  # parameters really are shared
    theta = random_theta(rng, rc.circuit, batch=3)
    got = rc.circuit.state(torch.tensor(theta, dtype=REAL[dtype]), dtype=dtype).numpy()
    assert np.abs(got - rc.reference_states(theta)).max() < TOLERANCE[dtype]


def test_one_theta_broadcasts_over_per_sample_circuits(rng):
    rc = random_circuit(rng, 3, n_gates=30, batch=4)
    theta = random_theta(rng, rc.circuit, batch=None)  # (P,)
    got = rc.circuit.state(torch.tensor(theta)).numpy()
    assert got.shape == (4, 8)
    assert np.abs(got - rc.reference_states(theta)).max() < 1e-10


def test_batched_equals_looped(rng):
    c = Circuit(4)
    for layer in range(3):
        for q in range(4):
            c.ry(q, f"y{q}").rz(q, f"z{layer}")
        for q in range(3):
            c.cnot(q, q + 1)
    theta = torch.tensor(random_theta(rng, c, batch=7))
    batched = c.expval(theta, "Z0 Z1 + 0.5*X2")
    looped = torch.cat([c.expval(t, "Z0 Z1 + 0.5*X2") for t in theta])
    assert torch.allclose(batched, looped, atol=1e-12, rtol=0)


def test_norm_preserved_over_1000_layers_complex64():
    n, layers = 4, 1000
    gen = torch.Generator().manual_seed(0)
    axes_per_gate = torch.randint(0, 3, (layers, n, 8), generator=gen)
    c = Circuit(n)
    for layer in range(layers):
        for q in range(n):
            c.pauli_rot(q, f"t{layer}_{q}", axes_per_gate[layer, q])
        for q in range(n - 1):
            c.cz(q, q + 1)
    theta = torch.rand(8, c.n_params, generator=gen) * 2 * math.pi
    norms = c.state(theta, dtype=torch.complex64).abs().pow(2).sum(dim=1)
    assert (norms - 1).abs().max().item() < 1e-5


def test_cz_ladder_is_fused_into_one_diagonal():
    c = Circuit(5).ry(0, "a")
    for q in range(4):
        c.cz(q, q + 1)
    c.z(2).s(4).rx(1, "b")
    steps = c.program().steps
    assert [s.kind for s in steps] == ["rotation", "fixed", "rotation"]
    assert steps[1].diagonal and steps[1].qubits == (0, 1, 2, 3, 4)


def test_every_layer_of_the_same_ladder_shares_one_fused_diagonal():
    """A fused diagonal is as large as a state: a deep circuit must hold one per
    distinct ladder, not one per layer."""
    c = Circuit(4)
    for layer in range(3):
        c.ry(0, f"a{layer}")
        for q in range(3):
            c.cz(q, q + 1)
    c.ry(1, "b")
    c.cz(0, 1).cz(2, 3)  # a different ladder: its own diagonal
    c.ry(2, "c")
    diagonals = [s for s in c.program().steps if s.kind == "fixed" and s.diagonal]
    assert len(diagonals) == 4
    assert diagonals[0] is diagonals[1] is diagonals[2]
    assert diagonals[3] is not diagonals[0] and diagonals[3].qubits == (0, 1, 2, 3)


def test_parameters_in_order_of_first_use():
    c = Circuit(3)
    c.ry(0, math.pi / 4)
    c.rx(1, "a").rz(2, "b").rx(0, "a").ry(2, "c")
    assert c.parameters == ("a", "b", "c")
    assert c.slot_params == (0, 1, 0, 2)
    c2 = Circuit.from_gates([("ry", (0,), "a"), ("cz", (0, 1), None), ("rx", (1,), 0.3)], n_qubits=2)
    assert c2.parameters == ("a",) and len(c2) == 3


def test_issue_example():
    c = Circuit(3)
    c.ry(0, math.pi / 4)
    c.rx(1, "a")
    c.rz(2, "a")
    c.cz(0, 1)
    c.cnot(1, 2)
    theta = torch.tensor([[0.1], [0.2]])
    assert c.expval(theta, "Z0 Z1").shape == (2,)
    assert c.state(theta).shape == (2, 8)
    assert c.state(torch.tensor([0.1])).shape == (1, 8)


def test_gradient_flows_into_a_unitary_matrix_with_backprop():
    angle = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    c_, s_ = torch.cos(angle), torch.sin(angle)
    u = torch.stack([torch.stack([c_, -s_]), torch.stack([s_, c_])]).to(torch.complex128)  # a real rotation
    value = Circuit(1).unitary(0, u).expval(None, "Z0", dtype=torch.complex128)
    value.sum().backward()
    # U|0> = (cos a, sin a): <Z> = cos 2a, d/da = -2 sin 2a
    assert angle.grad.item() == pytest.approx(-2 * math.sin(0.6), abs=1e-12)


def test_running_in_two_halves_through_initial_state_equals_whole(rng):
    first = random_circuit(rng, 4, n_gates=25, batch=3)
    second = random_circuit(rng, 4, n_gates=25, batch=3)
    whole = Circuit(4)
    for part in (first, second):
        for op in part.circuit.ops:
            args = tuple(f"{id(part)}{part.circuit.parameters[p]}" if p is not None else a for p, a in zip(op.params, op.angles))
            whole.add(op.name, op.qubits, args or None, axes=op.axes, matrix=op.matrix)
    t1, t2 = random_theta(rng, first.circuit, 3), random_theta(rng, second.circuit, 3)
    theta_whole = np.concatenate([t1, t2], axis=1)
    middle = first.circuit.state(torch.tensor(t1))
    assert middle.shape == (3, 16)
    end = second.circuit.state(torch.tensor(t2), initial_state=middle)
    assert torch.allclose(end, whole.state(torch.tensor(theta_whole)), atol=1e-12)


def test_initial_state_broadcasts_over_the_batch(rng):
    c = Circuit(2).rx(0, "a").cnot(0, 1)
    plus = torch.tensor([1, 0, 1, 0], dtype=torch.complex128) / math.sqrt(2)  # |+>|0>
    out = c.state(torch.tensor([[0.0], [math.pi]], dtype=torch.float64), initial_state=plus)
    assert torch.allclose(out[0], torch.tensor([1, 0, 0, 1], dtype=torch.complex128) / math.sqrt(2))


def test_print_draws_the_circuit():
    c = Circuit(3).ry(0, 0.5).cnot(0, 2).rz(1, "phi").cz(1, 2)
    text = str(c)
    lines = text.splitlines()
    assert lines[0].startswith("q0: ") and lines[2].startswith("q1: ") and lines[4].startswith("q2: ")
    assert "RY(0.5)" in lines[0] and "●" in lines[0] and "⊕" in lines[4]
    assert "RZ(phi)" in lines[2]  # the CNOT spans q1, so RZ comes after it
    assert lines[2].index("RZ(phi)") > lines[0].index("●")
    assert "│" in lines[1] and "│" in lines[3]  # the CNOT's link crosses both gaps
    assert repr(c).startswith("Circuit(n_qubits=3")


def test_long_circuits_wrap():
    c = Circuit(2)
    for i in range(40):
        c.rx(i % 2, f"angle_{i}").cnot(0, 1)
    assert max(len(line) for line in str(c).splitlines()) <= 100
    assert str(c).count("q0: ") > 1


def test_fingerprint_follows_every_gate():
    def build(angle=0.3, name="a", axes=(0, 1)):
        return Circuit(2).rx(0, angle).ry(1, name).pauli_rot(0, "b", torch.tensor(axes)).cz(0, 1)

    base = build().fingerprint()
    assert base == build().fingerprint()
    assert len({base, build(angle=0.31).fingerprint(), build(name="c").fingerprint(), build(axes=(0, 2)).fingerprint()}) == 4
    assert build().gate_list() == ["rx 0 0.3", "ry 1 a", "pauli_rot 0 b (2,)", "cz 0,1"]


def _shortcut_arguments(name: str) -> tuple[tuple[int, ...], tuple]:
    """Qubits and angles for one call of the gate `name`: a parameter name and fixed floats mixed."""
    spec = GATES[name]
    angles = tuple("a" if k % 2 == 0 else 0.25 * (k + 1) for k in range(spec.n_params))
    return tuple(range(spec.n_qubits or 1)), angles


@pytest.mark.parametrize("name", sorted(GATES))
def test_every_gate_of_the_table_has_a_builder_method_equal_to_add(name):
    import inspect

    qubits, angles = _shortcut_arguments(name)
    method = getattr(Circuit, name)
    assert method.__doc__ and method.__name__ == name
    extra = {}
    if name == "pauli_rot":
        extra = {"axes": torch.tensor([0, 2])}
    if name == "unitary":
        extra = {"matrix": torch.eye(2, dtype=torch.complex64)}
    by_method, by_add = Circuit(2), Circuit(2)
    args = (*qubits, *angles, *extra.values()) if name != "unitary" else (qubits[0], extra["matrix"])
    assert getattr(by_method, name)(*args) is by_method  # builder style
    by_add.add(name, qubits if len(qubits) > 1 else qubits[0], (angles if len(angles) > 1 else angles[0]) if angles else None, **extra)
    assert by_method.gate_list() == by_add.gate_list() and by_method.parameters == by_add.parameters
    (got,), (want,) = by_method.ops, by_add.ops
    assert (got.name, got.qubits, got.params, got.angles) == (want.name, want.qubits, want.params, want.angles)
    assert list(inspect.signature(method).parameters)[0] == "self"


def test_generated_methods_take_keyword_arguments_and_name_them_in_help():
    import inspect

    c = Circuit(2).u3(0, theta="t", phi=0.3, lam="t").cu(control=1, target=0, theta=0.1, phi="p", lam=0.2, gamma="g")
    assert c.gate_list() == ["u3 0 t,0.3,t", "cu 1,0 0.1,p,0.2,g"] and c.parameters == ("t", "p", "g")
    assert list(inspect.signature(Circuit.crx).parameters) == ["self", "control", "target", "angle"]
    assert list(inspect.signature(Circuit.rzz).parameters) == ["self", "a", "b", "angle"]
    with pytest.raises(TypeError):
        Circuit(2).crx(0, 1)  # the angle is required, as in a written method


def test_type_checker_declarations_match_the_generated_methods():
    """mypy reads the `if TYPE_CHECKING:` declarations in Circuit, the runtime uses the generated methods:
    each generated method is declared, with the same argument names and annotations, and nothing else is."""
    import ast
    import inspect

    import qtrain.circuit as module

    tree = ast.parse(inspect.getsource(module))
    (cls,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Circuit"]
    (block,) = [node for node in cls.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    declared = {f.name: [(a.arg, ast.unparse(a.annotation) if a.annotation else None) for a in f.args.args] for f in block.body if isinstance(f, ast.FunctionDef)}
    generated = {name: getattr(Circuit, name) for name in GATES if hasattr(getattr(Circuit, name), "__signature__")}
    assert set(declared) == set(generated) and len(generated) >= 15
    for name, method in generated.items():
        signature = inspect.signature(method)
        want = [(p.name, None if p.annotation is inspect.Parameter.empty else p.annotation) for p in signature.parameters.values()]
        assert declared[name] == want, name
