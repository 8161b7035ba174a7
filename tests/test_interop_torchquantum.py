"""torchquantum in and out: gate conventions, parameter identity, inputs,
values and gradients against torchquantum's own, refusals."""

import importlib.util
import re
import sys

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain.errors import UsageError
from qtrain.interop import torchquantum as interop  # qtrain's own module: a failure to import it fails these tests
from tests.circuits import FIXED_1Q, FIXED_2Q, MULTI_ANGLE, MULTI_ANGLE_2Q, ROTATIONS, ROTATIONS_2Q, random_circuit, random_theta
from tests.test_interop_tracing import REFUSED, STRUCTURAL

if importlib.util.find_spec("torchquantum") is None:  # only the optional peer's absence skips
    pytest.skip("torchquantum-ng is not installed (the interop extra)", allow_module_level=True)
tq, tqf = interop.import_torchquantum()
from torchquantum.measurement import expval_joint_analytical  # noqa: E402

from qtrain.interop import from_torchquantum, theta_from_torchquantum, to_torchquantum  # noqa: E402
from qtrain.interop.torchquantum import NAMES  # noqa: E402

TQ_GATES = tuple(k for k in ROTATIONS + MULTI_ANGLE + ROTATIONS_2Q + MULTI_ANGLE_2Q + FIXED_1Q + FIXED_2Q if k != "pauli_rot")
SHARED_ONLY = ("cp", "cu3", "cu")  # exported through torchquantum's cu3 and cu, which fail on per-sample angles
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


N_ANGLES = {"rx": 1, "ry": 1, "rz": 1, "rxx": 1, "ryy": 1, "rzz": 1, "crx": 1, "cry": 1, "crz": 1, "u3": 3, "rot": 3, "p": 1,
            "cu3": 3, "cu": 4, "rzx": 1}
TWO_WIRES = ("cnot", "cz", "swap", "rxx", "ryy", "rzz", "crx", "cry", "crz", "cu3", "cu", "rzx")
#: torchquantum-ng 0.2.0's own u1, cu1 and cp fail with a NameError before applying anything
BROKEN_IN_TORCHQUANTUM = ("u1", "cu1", "cp")
EXTRA = {"multirz1": "rz", "multirz2": "rzz", "qubitunitary": "unitary", "qubitunitaryfast": "unitary"}


@pytest.mark.parametrize("tq_name", [name for name in NAMES if name not in BROKEN_IN_TORCHQUANTUM] + list(EXTRA))
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


OUTSIDE_THE_TABLE = {"cy": 0, "sxdg": 0, "iswap": 0, "ecr": 0, "dcx": 0, "sh": 0, "crot": 3, "xxminyy": 2}


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
        with pytest.raises(ValueError, match=rf"gate 7 {tq_name}: qtrain has no gate .* with trainable angles"):
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
    # names: the Parameter's qualified name and the element's own index (u3's params are (1, 3)); input columns input[j]
    assert ("input[2]" in circuit.parameters) == with_input and "u3.params[0,1]" in circuit.parameters
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
    rc = random_circuit(rng, 3, n_gates=60, batch=1, n_names=3, per_sample=False, kinds=TQ_GATES)
    theta = torch.tensor(random_theta(rng, rc.circuit, None), dtype=torch.float32)
    module = to_torchquantum(rc.circuit, theta)
    value = _tq_value(module)
    value.sum().backward()
    ours = theta.clone().requires_grad_(True)
    mine = rc.circuit.expval(ours, QTRAIN_OBSERVABLE)
    mine.sum().backward()
    assert torch.allclose(value.reshape(-1), mine, atol=1e-5)
    assert torch.allclose(module.theta.grad, ours.grad, atol=1e-5)
    assert {"cp", "cu3", "cu", "rzx"} <= {op.name for op in rc.circuit.ops}
    back = from_torchquantum(module, 3)  # and in again: the same gates (cp as cu3(0, 0, a)), theta's elements as parameters
    assert [line.split()[0] for line in back.gate_list()] == [{"cp": "cu3"}.get(n, n) for n in (line.split()[0] for line in rc.circuit.gate_list())]
    assert torch.allclose(back.expval(theta_from_torchquantum(module, back), QTRAIN_OBSERVABLE), mine, atol=1e-5)


def test_what_qtrain_cannot_express_is_refused_by_name():
    class Controlled(tq.QuantumModule):
        def forward(self, qdev):
            tqf.cswap(qdev, wires=[0, 1, 2])

    with pytest.raises(ValueError, match=r"gate 0 cswap: qtrain has no gate"):
        from_torchquantum(Controlled(), 3)

    class Doubled(tq.QuantumModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(0.3))

        def forward(self, qdev):
            tqf.rx(qdev, wires=0, params=2 * self.w)

    with pytest.raises(ValueError, match=r"gate 0 rx: its angle is w \* 2; qtrain maps an angle to a parameter only as"):
        from_torchquantum(Doubled(), 1)

    class Squared(Doubled):
        def forward(self, qdev):
            self.w.data.fill_(1.0)  # w * w == w here: the derivative tells them apart
            tqf.rx(qdev, wires=0, params=self.w * self.w)

    with pytest.raises(ValueError, match=r"gate 0 rx: its angle is w \* w; "):
        from_torchquantum(Squared(), 1)
    with pytest.raises(ValueError, match=r"gate 0 \('pauli_rot'\)"):
        to_torchquantum(Circuit(1).pauli_rot(0, "a", "XY"))


def test_an_encoder_and_a_readout_at_the_end():
    """tq.GeneralEncoder's angles are input elements, named by their own
    index in a sample (a 4x4 image, flattened inside forward: input[0,0] to
    input[3,3]); a readout (MeasureAll) ends the circuit, its basis
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
    assert sorted(inputs) == [f"input[{i},{j}]" for i in range(4) for j in range(4)]
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
    rc = random_circuit(rng, 3, n_gates=20, batch=1, n_names=4, per_sample=False, kinds=tuple(k for k in TQ_GATES if k not in SHARED_ONLY))
    theta = torch.rand(4, rc.circuit.n_params) * 6 - 3
    module = to_torchquantum(rc.circuit)
    assert torch.equal(module.theta.detach(), torch.zeros(rc.circuit.n_params))
    qdev = tq.QuantumDevice(n_wires=3, bsz=4)
    module(qdev, theta)
    assert torch.allclose(qdev.get_states_1d(), rc.circuit.state(theta), atol=1e-5)
    with pytest.raises(ValueError, match=r"cu3 goes out as torchquantum's cu3, whose matrix fails on per-sample angles"):
        to_torchquantum(Circuit(2).add("cu3", (0, 1), ("a", "b", "c")))(tq.QuantumDevice(n_wires=2, bsz=4), theta[:, :3])


def test_measurements_noise_and_trainable_matrices_are_refused_by_name():
    class MidCircuit(tq.QuantumModule):
        def forward(self, qdev):
            tqf.hadamard(qdev, wires=0)
            tq.measure(qdev, n_shots=8)
            tqf.cnot(qdev, wires=[0, 1])

    with pytest.raises(ValueError, match=r"gate 1 cnot comes after the measurement 'measure'"):
        from_torchquantum(MidCircuit(), 2)

    class Unitary(tq.QuantumModule):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Parameter(torch.tensor(0.3))

        def forward(self, qdev):
            c, s = torch.cos(self.a), torch.sin(self.a)
            tqf.qubitunitaryfast(qdev, wires=0, params=torch.stack([torch.stack([c, -s]), torch.stack([s, c])]).to(torch.complex64))

    with pytest.raises(ValueError, match=r"gate 0 qubitunitaryfast: a trainable qubitunitaryfast"):
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

    with pytest.raises(ValueError, match=r"gate 0 rx: an inverted rx with trainable angles"):
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

    with pytest.raises(ValueError, match=r"gate 0 ry: its angle is input\[0\] \* 3.14159; .*transform an input before"):
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


class _OneAngle(tq.QuantumModule):
    """rx on wire 0 with an angle computed from the Parameter w by `angle`."""

    def __init__(self, angle, w):
        super().__init__()
        self.angle, self.w = angle, torch.nn.Parameter(w)

    def forward(self, qdev):
        tqf.hadamard(qdev, wires=0)
        tqf.rx(qdev, wires=0, params=self.angle(self.w))


@pytest.mark.parametrize("case, angle, point, expression, op", REFUSED, ids=[c[0] for c in REFUSED])
def test_a_computed_angle_is_refused_naming_what_computes_it(case, angle, point, expression, op):
    refusal = "qtrain maps an angle to a parameter only as the parameter itself"
    message = rf"gate 1 rx: its angle is {re.escape(expression)}; {refusal} \({op} is"
    with pytest.raises(UsageError, match=message):
        from_torchquantum(_OneAngle(angle, torch.full((3,), point)), 1)


@pytest.mark.parametrize("case, angle, index", STRUCTURAL, ids=[c[0] for c in STRUCTURAL])
def test_an_angle_moved_by_structural_steps_is_its_element(case, angle, index):
    module = _OneAngle(angle, torch.arange(1, 7, dtype=torch.float32).reshape(2, 3) / 7)
    circuit = from_torchquantum(module, 1)
    assert circuit.gate_list()[1] == f"rx 0 w[{index[0]},{index[1]}]"
    qdev = tq.QuantumDevice(n_wires=1, bsz=1)
    module(qdev)
    ours = circuit.state(theta_from_torchquantum(module, circuit)).reshape(-1)
    assert torch.allclose(ours, qdev.get_states_1d().reshape(-1), atol=1e-6)


def test_parameter_names_are_qualified_with_the_elements_own_index():
    class QLayer(tq.QuantumModule):
        def __init__(self):
            super().__init__()
            self.u3_0 = tq.U3(has_params=True, trainable=True)
            self.grid = torch.nn.Parameter(torch.rand(2, 3))
            self.frozen = torch.nn.Parameter(torch.tensor(0.7), requires_grad=False)

        def forward(self, qdev):
            self.u3_0(qdev, wires=0)
            tqf.ry(qdev, wires=1, params=self.grid[1, 2])
            tqf.rz(qdev, wires=1, params=torch.sin(self.frozen))  # no trainable value: a constant

    class Model(tq.QuantumModule):
        def __init__(self):
            super().__init__()
            self.q_layer = QLayer()

        def forward(self, qdev, x):
            tqf.rx(qdev, wires=0, params=x[:, 1])
            self.q_layer(qdev)

    torch.manual_seed(3)
    model, x = Model(), torch.rand(4, 2)
    circuit = from_torchquantum(model, 2, x)
    u3 = tuple(f"q_layer.u3_0.params[0,{j}]" for j in range(3))  # tq.U3's params are (1, 3)
    assert circuit.parameters == ("input[1]", *u3, "q_layer.grid[1,2]")
    assert circuit.gate_list()[-1] == f"rz 1 {float(torch.sin(model.q_layer.frozen))!r}"
    qdev = tq.QuantumDevice(n_wires=2, bsz=4)
    model(qdev, x)
    assert torch.allclose(circuit.state(theta_from_torchquantum(model, circuit, x)), qdev.get_states_1d(), atol=1e-6)


class _OwnDeviceClassifier(tq.QuantumModule):
    """The form of torchquantum's own examples: forward(x) creates its device."""

    def __init__(self, n_wires=4):
        super().__init__()
        self.n_wires = n_wires
        self.encoder = tq.GeneralEncoder(tq.encoder_op_list_name_dict["4x4_ryzxy"])
        self.q_layer = tq.RandomLayer(n_ops=10, wires=list(range(4)), seed=2)
        self.measure = tq.MeasureAll(tq.PauliZ)

    def forward(self, x, use_qiskit=False):
        qdev = tq.QuantumDevice(n_wires=self.n_wires, bsz=x.shape[0], device=x.device, record_op=True)
        self.encoder(qdev, x.view(x.shape[0], 16))
        self.q_layer(qdev)
        return self.measure(qdev)


def test_a_model_that_creates_its_own_device_is_read():
    torch.manual_seed(4)
    model, x = _OwnDeviceClassifier(), torch.rand(3, 4, 4)
    circuit = from_torchquantum(model, 4, x)
    assert len(circuit.ops) == 16 + 10 and circuit.n_qubits == 4
    expected = model(x)
    got = torch.stack([circuit.expval(theta_from_torchquantum(model, circuit, x), f"Z{w}") for w in range(4)], dim=-1)
    assert torch.allclose(got, expected, atol=1e-5)
    with pytest.raises(ValueError, match="n_wires=3, but the device the module's forward creates has 4 wires"):
        from_torchquantum(model, 3, x)

    class TwoDevices(tq.QuantumModule):
        def forward(self, x):
            for _ in range(2):
                tqf.rx(tq.QuantumDevice(n_wires=1, bsz=x.shape[0]), wires=0, params=x[:, 0])

    with pytest.raises(ValueError, match=r"applied 1 gate\(s\) to a second device"):
        from_torchquantum(TwoDevices(), 1, torch.rand(2, 1))


def test_theta_of_a_circuit_without_parameters_is_empty():
    class Fixed(tq.QuantumModule):
        def forward(self, qdev, x=None):
            tqf.hadamard(qdev, wires=0)
            tqf.rx(qdev, wires=0, params=0.3)

    circuit = from_torchquantum(Fixed(), 1)
    assert circuit.n_params == 0
    theta = theta_from_torchquantum(Fixed(), circuit)
    assert theta.shape == (0,)
    assert torch.allclose(circuit.expval(theta, "Z0"), circuit.expval(None, "Z0"))
    assert theta_from_torchquantum(Fixed(), circuit, torch.rand(5, 2)).shape == (5, 0)


@pytest.mark.parametrize("layer, gate", [("U3CU3Layer0", "cu3"), ("CU3Layer0", "cu3"), ("FarhiLayer0", "rzx")])
def test_torchquantums_trainable_cu3_and_rzx_layers(layer, gate):
    """The layers torchquantum's examples train: their cu3 and rzx gates come in
    as qtrain's, each angle its own Parameter element; values and gradients as torchquantum's."""
    torch.manual_seed(5)
    arch = {"n_wires": 3, "n_blocks": 2}
    model = getattr(tq.layer, layer)(arch)
    circuit = from_torchquantum(model, 3)
    assert gate in {op.name for op in circuit.ops} and "unitary" not in {op.name for op in circuit.ops}
    assert circuit.n_params == sum(p.numel() for p in model.parameters())
    expected = _tq_value(model)
    expected.sum().backward()
    reference = _grads(model)
    model.zero_grad()
    got = circuit.expval(theta_from_torchquantum(model, circuit), QTRAIN_OBSERVABLE)
    got.sum().backward()
    assert torch.allclose(got, expected.reshape(-1), atol=1e-5)
    for name, grad in _grads(model).items():
        assert torch.allclose(grad, reference[name], atol=1e-5), name
