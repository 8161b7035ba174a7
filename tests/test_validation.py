"""Every bad input gets a clear error that names the gate and the bad value."""

import math

import pytest
import torch

from qtrain import Circuit, QuantumLayer


def test_unknown_gate():
    c = Circuit(2).h(0)
    with pytest.raises(ValueError, match=r"gate 1 \('foo'\): unknown gate 'foo'"):
        c.add("foo", 0)


def test_qubit_out_of_range():
    c = Circuit(2)
    with pytest.raises(ValueError, match=r"gate 0 \('rx'\): qubit 5 out of range"):
        c.rx(5, 0.1)


def test_negative_qubit():
    with pytest.raises(ValueError, match=r"qubit -1 out of range"):
        Circuit(2).h(-1)


def test_repeated_qubit_in_two_qubit_gate():
    c = Circuit(3).h(0).h(1)
    with pytest.raises(ValueError, match=r"gate 2 \('cnot'\): repeated qubit in \(1, 1\)"):
        c.cnot(1, 1)


def test_wrong_number_of_qubits():
    with pytest.raises(ValueError, match=r"gate 0 \('cz'\): takes 2 qubit\(s\), got \(0,\)"):
        Circuit(2).add("cz", 0)


def test_nan_angle():
    c = Circuit(2).h(0)
    with pytest.raises(ValueError, match=r"gate 1 \('ry'\): angle must be finite, got nan"):
        c.ry(1, math.nan)


def test_infinite_angle():
    with pytest.raises(ValueError, match=r"gate 0 \('rz'\): angle must be finite, got inf"):
        Circuit(1).rz(0, math.inf)


def test_missing_angle():
    with pytest.raises(TypeError, match=r"gate 0 \('rx'\): angle must be a float .* got None"):
        Circuit(1).add("rx", 0)


def test_angle_on_fixed_gate():
    with pytest.raises(ValueError, match=r"gate 0 \('h'\): takes no angle, got 0.5"):
        Circuit(1).add("h", 0, 0.5)


def test_empty_parameter_name():
    with pytest.raises(ValueError, match=r"gate 0 \('rx'\): a parameter name must be a non-empty string"):
        Circuit(1).rx(0, "")


def test_bad_axis():
    with pytest.raises(ValueError, match=r"gate 0 \('pauli_rot'\): axes must be 0 \(X\), 1 \(Y\) or 2 \(Z\), got 3"):
        Circuit(1).pauli_rot(0, "a", torch.tensor([0, 3]))


def test_axes_as_letters():
    c = Circuit(1).pauli_rot(0, 0.3, "XYZ")
    assert c.ops[0].axes.tolist() == [0, 1, 2]


def test_non_unitary_matrix():
    with pytest.raises(ValueError, match=r"gate 0 \('unitary'\): matrix is not unitary"):
        Circuit(1).unitary(0, torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=torch.complex128))


def test_matrix_of_wrong_size():
    with pytest.raises(ValueError, match=r"gate 0 \('unitary'\): matrix must be \(4, 4\)"):
        Circuit(2).unitary((0, 1), torch.eye(2, dtype=torch.complex128))


def test_bad_n_qubits():
    with pytest.raises(ValueError, match="n_qubits must be a positive int, got 0"):
        Circuit(0)


def test_theta_wrong_shape():
    c = Circuit(2).rx(0, "a").rx(1, "b")
    with pytest.raises(ValueError, match=r"theta has shape \(3,\); expected \(2,\) or \(B, 2\)"):
        c.state(torch.zeros(3))


def test_theta_wrong_rank():
    c = Circuit(1).rx(0, "a")
    with pytest.raises(ValueError, match=r"theta has shape \(2, 2, 1\)"):
        c.state(torch.zeros(2, 2, 1))


@pytest.mark.parametrize("dtype", [torch.int64, torch.complex64, torch.bool])
def test_theta_wrong_dtype(dtype):
    c = Circuit(1).rx(0, "a")
    with pytest.raises(TypeError, match=f"theta must be a real floating tensor.*{str(dtype)}"):
        c.state(torch.zeros(1, dtype=dtype))


def test_theta_not_a_tensor():
    with pytest.raises(TypeError, match="theta must be a torch.Tensor, got list"):
        Circuit(1).rx(0, "a").state([0.1])


def test_theta_missing():
    with pytest.raises(ValueError, match=r"theta is required: the circuit has 1 parameters \('a',\)"):
        Circuit(1).rx(0, "a").state()


def test_theta_batch_disagrees_with_per_sample_axes():
    c = Circuit(1).pauli_rot(0, "a", torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="theta has batch 2, but the circuit's per-sample gates have batch 3"):
        c.state(torch.zeros(2, 1))


def test_bad_state_dtype():
    with pytest.raises(TypeError, match="dtype must be torch.complex64 or torch.complex128, got torch.float32"):
        Circuit(1).h(0).state(dtype=torch.float32)


def test_bad_diff_method():
    with pytest.raises(ValueError, match="diff_method must be one of .* got 'magic'"):
        Circuit(1).h(0).state(diff_method="magic")


def test_observable_outside_circuit():
    with pytest.raises(ValueError, match=r"observable 'Z0 Z5' acts on qubit 5, but the circuit has 2 qubits"):
        Circuit(2).h(0).expval(None, "Z0 Z5")


def test_unparsable_observable():
    with pytest.raises(ValueError, match="cannot parse observable 'Z0 Q1'"):
        Circuit(2).h(0).expval(None, "Z0 Q1")


def test_adjoint_refuses_a_matrix_that_requires_grad():
    u = torch.eye(2, dtype=torch.complex128, requires_grad=True)
    c = Circuit(1).unitary(0, u).rx(0, "a")
    with pytest.raises(ValueError, match="use diff_method='backprop'"):
        c.state(torch.zeros(1, dtype=torch.float64), diff_method="adjoint")


def test_from_gates_bad_tuple():
    with pytest.raises(ValueError, match=r"gate 0: expected \(name, qubits, angle\[, axes\]\), got \('h',\)"):
        Circuit.from_gates([("h",)], n_qubits=1)


def _layer_circuit():
    return Circuit(2).ry(0, "x0").ry(1, "x1").rx(0, "w0").cnot(0, 1)


def test_layer_unknown_input():
    with pytest.raises(ValueError, match=r"inputs \['x9'\] are not parameters"):
        QuantumLayer(_layer_circuit(), ["Z0"], inputs=["x0", "x9"])


def test_layer_bad_init():
    with pytest.raises(ValueError, match="init must be one of .* got 'gauss'"):
        QuantumLayer(_layer_circuit(), ["Z0"], inputs=["x0", "x1"], init="gauss")


def test_layer_bad_observable():
    with pytest.raises(ValueError, match="acts on qubit 3"):
        QuantumLayer(_layer_circuit(), ["Z3"], inputs=["x0", "x1"])


def test_layer_wrong_input_width():
    layer = QuantumLayer(_layer_circuit(), ["Z0"], inputs=["x0", "x1"])
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 2\) .* got \(4, 3\)"):
        layer(torch.zeros(4, 3))


def test_initial_state_wrong_size():
    with pytest.raises(ValueError, match=r"initial_state has shape \(3,\); expected \(4,\) or \(B, 4\)"):
        Circuit(2).h(0).state(initial_state=torch.ones(3, dtype=torch.complex64))


def test_initial_state_batch_disagrees_with_theta():
    c = Circuit(1).rx(0, "a")
    with pytest.raises(ValueError, match="initial_state has batch 3, but theta and the gates have batch 2"):
        c.state(torch.zeros(2, 1), initial_state=torch.ones(3, 2, dtype=torch.complex64))
