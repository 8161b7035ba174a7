"""torchquantum in and out: gate conventions, parameter identity, inputs,
values and gradients against torchquantum's own, refusals."""

import sys

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
from qtrain.interop.torchquantum import NAMES  # noqa: E402

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


def _one_gate(tq_name, wires, angles=None, matrix=None, inverse=False, n_wires=None):
    """A module of Hadamard, T and a fixed RY (a state with no zero
    amplitudes), then the gate under test: its angles one Parameter, or a
    fixed matrix."""

    class OneGate(tq.QuantumModule):
        def __init__(self):
            super().__init__()
            self.w = None if angles is None else torch.nn.Parameter(angles)

        def forward(self, qdev):
            for w in range(3):
                tqf.hadamard(qdev, wires=w)
                tqf.t(qdev, wires=w)
            tqf.ry(qdev, wires=1, params=0.4)
            extra = {} if n_wires is None else {"n_wires": n_wires}
            getattr(tqf, tq_name)(qdev, wires=wires, params=matrix if matrix is not None else self.w, inverse=inverse, **extra)

    return OneGate()


N_ANGLES = {"rx": 1, "ry": 1, "rz": 1, "rxx": 1, "ryy": 1, "rzz": 1, "crx": 1, "cry": 1, "crz": 1, "u3": 3, "rot": 3, "p": 1}
TWO_WIRES = ("cnot", "cz", "swap", "rxx", "ryy", "rzz", "crx", "cry", "crz")
EXTRA = {"multirz1": "rz", "multirz2": "rzz", "qubitunitary": "unitary", "qubitunitaryfast": "unitary"}


@pytest.mark.parametrize("tq_name", [name for name in NAMES if name != "u1"] + list(EXTRA))
def test_each_gate_gives_torchquantums_state(tq_name):
    """The name table checked numerically: torchquantum's state and qtrain's
    state of the recorded circuit agree gate by gate (on wires [2, 0], so
    the order of two wires counts), trainable, and fixed and inverted.
    (torchquantum-ng 0.2.0's own u1 fails with a NameError before applying
    anything; its matrix is checked below.)"""
    gen = torch.Generator().manual_seed(sum(map(ord, tq_name)))
    qtrain_name = NAMES.get(tq_name) or EXTRA[tq_name]
    width = 2 if qtrain_name in TWO_WIRES or tq_name in ("multirz2", "qubitunitary", "qubitunitaryfast") else 1
    wires = [2, 0] if width == 2 else [1]
    k = N_ANGLES.get(qtrain_name, 0)
    for inverse in (False, True):
        angles = torch.rand(1, k, generator=gen) * 6 - 3 if k else None
        matrix = None
        if qtrain_name == "unitary":
            matrix = torch.linalg.qr(torch.randn(2**width, 2**width, dtype=torch.complex128, generator=gen))[0].to(torch.complex64)
        module = _one_gate(tq_name.rstrip("12"), wires, angles, matrix, inverse, n_wires=width if tq_name.startswith("multirz") else None)
        if inverse and k:
            module.w.requires_grad_(False)  # an inverted gate goes in with fixed angles (negated)
        circuit = from_torchquantum(module, 3)
        expected = {"sdg": "s", "s": "sdg", "t": "tdg", "tdg": "t", "sx": "unitary"}.get(qtrain_name, qtrain_name) if inverse else qtrain_name
        assert circuit.gate_list()[-1].split()[0] == expected
        assert circuit.n_params == (0 if inverse else k)
        qdev = tq.QuantumDevice(n_wires=3, bsz=1)
        module(qdev)
        theta = theta_from_torchquantum(module, circuit) if circuit.n_params else None
        ours = circuit.state(theta).reshape(-1)
        assert torch.allclose(ours, qdev.get_states_1d().reshape(-1), atol=1e-5), (tq_name, inverse)


OUTSIDE_THE_TABLE = {"cy": 0, "sxdg": 0, "iswap": 0, "ecr": 0, "dcx": 0, "sh": 0, "cu3": 3, "rzx": 1, "xxminyy": 2}


@pytest.mark.parametrize("tq_name", list(OUTSIDE_THE_TABLE))
def test_other_fixed_gates_come_in_as_their_matrix(tq_name):
    """A gate outside the table whose matrix depends on nothing trainable is
    qtrain's unitary with torchquantum's matrix (inverted too); with a
    trainable angle it is refused by name."""
    k = OUTSIDE_THE_TABLE[tq_name]
    width = 1 if tq_name in ("sxdg", "sh") else 2
    wires = [1] if width == 1 else [2, 0]
    gen = torch.Generator().manual_seed(sum(map(ord, tq_name)))
    for inverse in (False, True):
        angles = torch.rand(1, k, generator=gen) * 6 - 3 if k else None
        module = _one_gate(tq_name, wires, angles, None, inverse)
        if k:
            module.w.requires_grad_(False)
        circuit = from_torchquantum(module, 3)
        assert circuit.gate_list()[-1].split()[0] == "unitary" and circuit.n_params == 0
        qdev = tq.QuantumDevice(n_wires=3, bsz=1)
        module(qdev)
        assert torch.allclose(circuit.state().reshape(-1), qdev.get_states_1d().reshape(-1), atol=1e-5), (tq_name, inverse)
    if k:
        with pytest.raises(ValueError, match=rf"operation 7 \('{tq_name}'\): qtrain has no gate .* with trainable angles"):
            from_torchquantum(_one_gate(tq_name, wires, angles), 3)


def test_torchquantums_u1_matrix_is_qtrains_p():
    from torchquantum.functional.u1 import u1_matrix

    angle = torch.tensor([[0.7]])
    assert torch.allclose(u1_matrix(angle), torch.tensor([[1, 0], [0, np.exp(0.7j)]], dtype=torch.complex64))


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

    class Squared(Doubled):
        def forward(self, qdev):
            self.w.data.fill_(1.0)  # w * w == w here: the derivative tells them apart
            tqf.rx(qdev, wires=0, params=self.w * self.w)

    with pytest.raises(ValueError, match=r"computed from trainable values or inputs \(w\)"):
        from_torchquantum(Squared(), 1)
    with pytest.raises(ValueError, match=r"gate 0 \('pauli_rot'\)"):
        to_torchquantum(Circuit(1).pauli_rot(0, "a", "XY"))


def test_an_encoder_and_a_readout_at_the_end():
    """tq.GeneralEncoder's angles are input columns (a 4x4 image, flattened:
    input[0..15]); a readout (MeasureAll) ends the circuit, its basis
    rotations (Hadamards for PauliX) are not gates."""

    class Classifier(tq.QuantumModule):
        def __init__(self):
            super().__init__()
            self.encoder = tq.GeneralEncoder(tq.encoder_op_list_name_dict["4x4_u3rx"])
            self.layer = tq.RandomLayer(n_ops=12, wires=list(range(4)), seed=1)
            self.measure = tq.MeasureAll(tq.PauliX)

        def forward(self, qdev, x):
            self.encoder(qdev, x.reshape(x.shape[0], 16))
            self.layer(qdev)
            return self.measure(qdev)

    torch.manual_seed(2)
    model = Classifier()
    x = torch.rand(3, 4, 4) * 2
    circuit = from_torchquantum(model, 4, x)
    inputs = [name for name in circuit.parameters if name.startswith("input")]
    assert sorted(inputs, key=lambda s: int(s[6:-1])) == [f"input[{j}]" for j in range(16)]
    assert len(circuit.ops) == 8 + 12  # the encoder's 4 u3 and 4 rx, the layer's 12 ops; no readout Hadamards
    expected = model(tq.QuantumDevice(n_wires=4, bsz=3), x)
    expected.sum().backward()
    reference = _grads(model)
    model.zero_grad()
    theta = theta_from_torchquantum(model, circuit, x)
    got = torch.stack([circuit.expval(theta, f"X{w}") for w in range(4)], dim=-1)
    got.sum().backward()
    assert torch.allclose(got, expected, atol=1e-5)
    for name, grad in _grads(model).items():
        assert torch.allclose(grad, reference[name], atol=1e-5), name


def test_exported_with_per_sample_theta_on_a_batched_device():
    rng = np.random.default_rng(3)
    rc = random_circuit(rng, 3, n_gates=20, batch=1, n_names=4, per_sample=False, kinds=TQ_GATES)
    theta = torch.rand(4, rc.circuit.n_params) * 6 - 3
    module = to_torchquantum(rc.circuit)
    assert torch.equal(module.theta.detach(), torch.zeros(rc.circuit.n_params))
    qdev = tq.QuantumDevice(n_wires=3, bsz=4)
    module(qdev, theta)
    assert torch.allclose(qdev.get_states_1d(), rc.circuit.state(theta), atol=1e-5)


def test_measurements_noise_and_trainable_matrices_are_refused_by_name():
    class MidCircuit(tq.QuantumModule):
        def forward(self, qdev):
            tqf.hadamard(qdev, wires=0)
            tq.measure(qdev, n_shots=8)
            tqf.cnot(qdev, wires=[0, 1])

    with pytest.raises(ValueError, match=r"operation 1 \('cnot'\) comes after the measurement 'measure'"):
        from_torchquantum(MidCircuit(), 2)

    class Unitary(tq.QuantumModule):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Parameter(torch.tensor(0.3))

        def forward(self, qdev):
            c, s = torch.cos(self.a), torch.sin(self.a)
            tqf.qubitunitaryfast(qdev, wires=0, params=torch.stack([torch.stack([c, -s]), torch.stack([s, c])]).to(torch.complex64))

    with pytest.raises(ValueError, match=r"operation 0 \('qubitunitaryfast'\): a trainable qubitunitaryfast"):
        from_torchquantum(Unitary(), 1)

    noisy = Model()
    noisy.set_noise_model_tq(tq.NoiseModelTQPhase(std=0.1))
    with pytest.raises(ValueError, match=r"noise model \(NoiseModelTQPhase\)"):
        from_torchquantum(noisy, 3)

    class Inverted(tq.QuantumModule):
        def __init__(self):
            super().__init__()
            self.rx = tq.RX(has_params=True, trainable=True, inverse=True)

        def forward(self, qdev):
            self.rx(qdev, wires=0)

    with pytest.raises(ValueError, match=r"operation 0 \('rx'\): an inverted rx with trainable angles"):
        from_torchquantum(Inverted(), 1)


def test_gates_on_another_device_and_transformed_inputs_are_refused():
    class OwnDevice(tq.QuantumModule):
        def forward(self, qdev):
            own = tq.QuantumDevice(n_wires=2, bsz=1)
            tqf.hadamard(own, wires=0)
            tqf.cnot(own, wires=[0, 1])

    with pytest.raises(ValueError, match=r"applied 2 gate\(s\) to a device other than the one its forward was given"):
        from_torchquantum(OwnDevice(), 2)

    class Scaled(tq.QuantumModule):
        def forward(self, qdev, x):
            tqf.ry(qdev, wires=0, params=np.pi * x[:, 0])

    with pytest.raises(ValueError, match=r"operation 0 \('ry'\): an angle computed from .*\(input\).*transform an input before"):
        from_torchquantum(Scaled(), 1, torch.rand(4, 1))


def test_an_exported_unitary_runs_the_same_in_torchquantum():
    rng = np.random.default_rng(5)
    rc = random_circuit(rng, 3, n_gates=24, batch=1, n_names=3, per_sample=False, kinds=TQ_GATES + ("unitary",))
    assert "unitary" in [op.name for op in rc.circuit.ops]
    theta = torch.tensor(random_theta(rng, rc.circuit, None), dtype=torch.float32)
    qdev = tq.QuantumDevice(n_wires=3, bsz=1)
    to_torchquantum(rc.circuit, theta)(qdev)
    assert torch.allclose(qdev.get_states_1d().reshape(-1), rc.circuit.state(theta).reshape(-1).to(torch.complex64), atol=1e-5)


def test_a_missing_torchquantum_names_the_install(monkeypatch):
    monkeypatch.setattr(interop, "_IMPORTED", None)
    monkeypatch.setitem(sys.modules, "torchquantum", None)  # what an absent package looks like to import
    with pytest.raises(ImportError, match=r'pip install .*"qtrain\[interop\]"'):
        interop.import_torchquantum()
