"""torchquantum in and out: gate conventions, parameter identity, inputs,
values and gradients against torchquantum's own, refusals."""

import numpy as np
import pytest
import torch

from qtrain import Circuit
from tests.circuits import FIXED_1Q, FIXED_2Q, MULTI_ANGLE, ROTATIONS, ROTATIONS_2Q, random_circuit, random_theta

interop = pytest.importorskip("qtrain.interop.torchquantum")
try:
    tq, tqf = interop.import_torchquantum()
except ImportError:
    pytest.skip("torchquantum-ng is not installed (the interop extra)", allow_module_level=True)
from torchquantum.measurement import expval_joint_analytical  # noqa: E402

from qtrain.interop import from_torchquantum, theta_from_torchquantum, to_torchquantum  # noqa: E402

TQ_GATES = tuple(k for k in ROTATIONS + MULTI_ANGLE + ROTATIONS_2Q + FIXED_1Q + FIXED_2Q if k != "pauli_rot")
OBSERVABLE = "YXZ"  # torchquantum's string: Y on wire 0, X on wire 1, Z on wire 2
QTRAIN_OBSERVABLE = "Y0 X1 Z2"


class Model(tq.QuantumModule):
    """A model as people write them: op modules with their own Parameters,
    functional gates, one Parameter used twice, an angle encoding of the input."""

    def __init__(self):
        super().__init__()
        self.rx0 = tq.RX(has_params=True, trainable=True)
        self.u3 = tq.U3(has_params=True, trainable=True)
        self.crx = tq.CRX(has_params=True, trainable=True)
        self.rzz = tq.RZZ(has_params=True, trainable=True)
        self.shared = torch.nn.Parameter(torch.tensor(0.4))

    def forward(self, qdev, x=None):
        if x is not None:
            for w in range(3):
                tqf.ry(qdev, wires=w, params=x[:, w])
        self.rx0(qdev, wires=0)
        tqf.rz(qdev, wires=1, params=self.shared)
        self.u3(qdev, wires=2)
        tqf.cnot(qdev, wires=[0, 1])
        self.crx(qdev, wires=[1, 2])
        tqf.sdg(qdev, wires=1, inverse=True)
        tqf.rx(qdev, wires=2, params=self.shared)
        self.rzz(qdev, wires=[0, 2])
        tqf.phaseshift(qdev, wires=0, params=0.3)
        tqf.hadamard(qdev, wires=0)


def _tq_value(model, x=None):
    qdev = tq.QuantumDevice(n_wires=3, bsz=1 if x is None else x.shape[0])
    model(qdev) if x is None else model(qdev, x)
    return expval_joint_analytical(qdev, OBSERVABLE)


def _grads(model):
    return {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("with_input", [False, True])
def test_an_imported_model_gives_torchquantums_values_and_gradients(with_input):
    torch.manual_seed(0)
    model = Model()
    x = torch.rand(5, 3) * 3 if with_input else None
    args = (x,) if with_input else ()
    circuit = from_torchquantum(model, 3, *args)
    assert "shared" in circuit.parameters and circuit.slot_params.count(circuit.parameters.index("shared")) == 2
    assert ("input[2]" in circuit.parameters) == with_input and "u3.params[1]" in circuit.parameters
    assert [line.split()[0] for line in circuit.gate_list()][-5:] == ["s", "rx", "rzz", "p", "h"]  # sdg inverted is s

    expected = _tq_value(model, x)
    expected.sum().backward()
    reference = _grads(model)
    model.zero_grad()
    theta = theta_from_torchquantum(model, circuit, *args)
    got = circuit.expval(theta, QTRAIN_OBSERVABLE)
    got.sum().backward()
    assert torch.allclose(got, expected.reshape(-1), atol=1e-5)
    for name, grad in _grads(model).items():
        assert torch.allclose(grad, reference[name], atol=1e-5), name
    assert max(g.abs().max() for g in reference.values()) > 1e-2


@pytest.mark.parametrize("seed", [0, 1])
def test_an_exported_circuit_runs_the_same_in_torchquantum(seed):
    rng = np.random.default_rng(seed)
    rc = random_circuit(rng, 3, n_gates=30, batch=1, n_names=3, per_sample=False, kinds=TQ_GATES)
    theta = torch.tensor(random_theta(rng, rc.circuit, None), dtype=torch.float32)
    module = to_torchquantum(rc.circuit, theta)
    value = _tq_value(module)
    value.sum().backward()
    ours = theta.clone().requires_grad_(True)
    mine = rc.circuit.expval(ours, QTRAIN_OBSERVABLE)
    mine.sum().backward()
    assert torch.allclose(value.reshape(-1), mine, atol=1e-5)
    assert torch.allclose(module.theta.grad, ours.grad, atol=1e-5)
    back = from_torchquantum(module, 3)  # and in again: the same gates, theta's elements as parameters
    assert [line.split()[0] for line in back.gate_list()] == [line.split()[0] for line in rc.circuit.gate_list()]
    assert torch.allclose(back.expval(theta_from_torchquantum(module, back), QTRAIN_OBSERVABLE), mine, atol=1e-5)


def test_what_qtrain_cannot_express_is_refused_by_name():
    class Controlled(tq.QuantumModule):
        def forward(self, qdev):
            tqf.cswap(qdev, wires=[0, 1, 2])

    with pytest.raises(ValueError, match=r"operation 0 \('cswap'\)"):
        from_torchquantum(Controlled(), 3)

    class Doubled(tq.QuantumModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(0.3))

        def forward(self, qdev):
            tqf.rx(qdev, wires=0, params=2 * self.w)

    with pytest.raises(ValueError, match=r"computed from trainable values or inputs \(w\)"):
        from_torchquantum(Doubled(), 1)
    with pytest.raises(ValueError, match=r"gate 0 \('pauli_rot'\)"):
        to_torchquantum(Circuit(1).pauli_rot(0, "a", "XY"))
