"""qtrain's noisy circuits against an independent dense Kraus reference
(`tests/noise_reference.py`, which shares no code with qtrain), and against
PennyLane's default.mixed where it is installed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain.noise import NoiseModel
from tests import noise_reference as ref

TOL = 1e-10
N = 3
#: ry, rz, cz, crx, u3, h, cnot, rot; "a", "b", "c", "e" each used twice (shared parameters)
GATES = [
    ("ry", (0,), ("a",)),
    ("rz", (1,), ("b",)),
    ("h", (2,), ()),
    ("cz", (0, 1), ()),
    ("crx", (1, 2), ("c",)),
    ("u3", (2,), ("d", 0.4, "a")),
    ("cnot", (2, 0), ()),
    ("rot", (1,), ("b", "e", -0.3)),
    ("ry", (2,), ("c",)),
    ("crx", (2, 0), ("e",)),
]
OBS = "Z0 Z1 + 0.5 X2 - 0.3 Y0 Z2 + 0.7 Y1 + 0.4 X0 X1 Y2"

UNIFORM = {"amplitude_damping": 0.12, "phase_damping": 0.09, "bit_flip": 0.05, "phase_flip": 0.07, "depolarizing": 0.06}
MODELS = {
    **{name: {name: rate} for name, rate in UNIFORM.items()},
    "readout": {"readout": 0.04},
    "readout_per_qubit": {"readout": {0: 0.03, 2: 0.08}, "depolarizing": 0.02},
    "all": {**UNIFORM, "readout": 0.03},
    "per_qubit": {
        "amplitude_damping": {1: 0.2, 2: 0.05},
        "phase_damping": {0: 0.1},
        "bit_flip": {2: 0.06},
        "phase_flip": {0: 0.03, 1: 0.08},
        "depolarizing": {0: 0.04, 2: 0.1},
        "readout": {1: 0.05},
    },
    "per_gate": {
        "amplitude_damping": {"crx": 0.15, "h": 0.3},
        "phase_damping": {"cz": 0.2},
        "bit_flip": {"cnot": 0.07, "u3": 0.05},
        "phase_flip": {"rot": 0.1},
        "depolarizing": {"ry": 0.05, "crx": 0.03},
    },
    "mixed_kinds": {"amplitude_damping": {"cz": 0.1, "cnot": 0.2}, "depolarizing": {1: 0.08}, "bit_flip": 0.02, "readout": 0.01},
}


def circuit(gates=GATES, n=N) -> Circuit:
    c = Circuit(n)
    for name, qubits, args in gates:
        c.add(name, qubits if len(qubits) > 1 else qubits[0], (args if len(args) > 1 else args[0]) if args else None)
    assert list(c.parameters) == ref.parameter_names(gates)
    return c


def thetas(gates=GATES, batch=3, seed=7) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, size=(batch, len(ref.parameter_names(gates))))


def reference_values(theta, noise, gates=GATES, n=N, obs=OBS) -> np.ndarray:
    return np.array([ref.noisy_expval(gates, row, n, obs, noise) for row in theta])


# ---- 1. values -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(MODELS))
def test_density_values_match_reference(key):
    noise = MODELS[key]
    theta = thetas()
    c = circuit()
    expected = reference_values(theta, noise)
    got = c.expval(torch.tensor(theta), OBS, noise=NoiseModel(**noise))
    assert got.shape == (3,) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=TOL)
    got = c.expval(torch.tensor(theta), OBS, noise=NoiseModel(**noise), method="density")
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=TOL)
    # the noise must actually matter (else the comparison proves nothing about channels)
    assert np.abs(expected - reference_values(theta, {})).max() > 1e-3


def test_channel_order_matters_and_is_followed():
    """Amplitude damping then bit flip on the same qubit differs from the reverse order."""
    theta = thetas()
    noise = {"amplitude_damping": 0.3, "bit_flip": 0.2}
    c = circuit()
    got = c.expval(torch.tensor(theta), "Z0 + Z1 + Z2", noise=NoiseModel(**noise)).numpy()
    expected = reference_values(theta, noise, obs="Z0 + Z1 + Z2")
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
    # the reverse order, by hand in the reference, differs: so the test can tell orders apart
    rho_rev = []
    for row in theta:
        rho = np.zeros((8, 8), dtype=complex)
        rho[0, 0] = 1
        for name, qubits, angles in ref.bind(GATES, row):
            u = ref.embed(ref.gate_matrix(name, angles), qubits, N)
            rho = u @ rho @ u.conj().T
            for q in qubits:
                rho = ref.apply_channel(rho, ref.kraus("bit_flip", 0.2), q, N)
                rho = ref.apply_channel(rho, ref.kraus("amplitude_damping", 0.3), q, N)
        rho_rev.append(ref.expval(rho, "Z0 + Z1 + Z2"))
    assert np.abs(np.array(rho_rev) - expected).max() > 1e-3


# ---- 2. density matrices ---------------------------------------------------------------------


@pytest.mark.parametrize("key", ["all", "per_qubit", "per_gate"])
def test_density_matrix_matches_reference(key):
    noise = {k: v for k, v in MODELS[key].items() if k != "readout"}
    theta = thetas()
    rho = circuit().density_matrix(torch.tensor(theta), noise=NoiseModel(**noise))
    assert rho.shape == (3, 8, 8) and rho.dtype == torch.complex128
    for b, row in enumerate(theta):
        expected = ref.density_matrix(ref.bind(GATES, row), N, noise)
        np.testing.assert_allclose(rho[b].numpy(), expected, rtol=0, atol=TOL)


# ---- 3. gradients ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["all", "per_qubit", "per_gate", "amplitude_damping"])
def test_gradients_match_reference_finite_differences(key):
    noise = MODELS[key]
    theta = thetas(seed=11)
    c = circuit()
    model = NoiseModel(**noise)
    expected = np.array([ref.finite_difference_grad(GATES, row, N, OBS, noise, step=1e-6) for row in theta])
    values, grads = c.value_and_grad(torch.tensor(theta), OBS, noise=model)
    assert grads.shape == (3, c.n_params)
    np.testing.assert_allclose(values.numpy(), reference_values(theta, noise), rtol=0, atol=TOL)
    np.testing.assert_allclose(grads.numpy(), expected, rtol=0, atol=1e-7)

    t = torch.tensor(theta, requires_grad=True)
    c.expval(t, OBS, noise=model).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), expected, rtol=0, atol=1e-7)


# ---- 4. trajectories -------------------------------------------------------------------------

T = 4000
SPLIT = 16  # standard errors from SPLIT independent seeds of T // SPLIT trajectories each


def _trajectory_check(estimate, exact, runs, name):
    """`estimate` (one run of T trajectories) and the mean of `runs` (SPLIT runs of
    T // SPLIT) within 5 standard errors of `exact`; the standard error of a mean of T
    trajectories is std(runs) / sqrt(SPLIT). Entries that no trajectory can move (a
    gradient that is exactly 0 in every trajectory) get a rounding floor of 1e-12."""
    runs = np.stack(runs)
    se = runs.std(axis=0, ddof=1) / np.sqrt(SPLIT)
    assert np.any(se > 1e-6), f"{name}: different seeds gave identical estimates"
    for label, value in (("one run", estimate), ("split runs", runs.mean(axis=0))):
        err = np.abs(value - exact)
        assert np.all(err <= 5 * se + 1e-12), f"{name} {label}: |error| {err} > 5 standard errors {5 * se}"


@pytest.mark.parametrize(
    "noise",
    [
        {"depolarizing": 0.08, "bit_flip": 0.05, "phase_damping": 0.1},
        {"amplitude_damping": 0.15},
        {"amplitude_damping": 0.1, "depolarizing": 0.05, "phase_flip": {"cz": 0.1}},
    ],
    ids=["pauli", "amplitude_damping", "amplitude_damping_mixed"],
)
def test_trajectory_values_within_standard_errors(noise):
    theta = thetas(seed=3)
    c = circuit()
    model = NoiseModel(**noise)
    t = torch.tensor(theta)
    exact = reference_values(theta, noise)
    estimate = c.expval(t, OBS, noise=model, trajectories=T, seed=5).numpy()
    assert estimate.shape == (3,)
    again = c.expval(t, OBS, noise=model, trajectories=T, seed=5).numpy()
    np.testing.assert_array_equal(estimate, again)  # same seed, same numbers
    runs = [c.expval(t, OBS, noise=model, trajectories=T // SPLIT, seed=100 + s).numpy() for s in range(SPLIT)]
    _trajectory_check(estimate, exact, runs, "values")
    # the noise moves the value by many standard errors, so a noiseless estimate would fail
    noiseless = reference_values(theta, {})
    se = np.stack(runs).std(axis=0, ddof=1) / np.sqrt(SPLIT)
    assert np.abs(noiseless - exact).max() > 10 * se.max()


def test_trajectory_gradient_within_standard_errors():
    noise = {"depolarizing": 0.08, "bit_flip": 0.05, "phase_damping": 0.1}
    theta = thetas(seed=4)
    c = circuit()
    model = NoiseModel(**noise)
    t = torch.tensor(theta)
    exact_values, exact_grads = (x.numpy() for x in c.value_and_grad(t, OBS, noise=model))
    np.testing.assert_allclose(exact_values, reference_values(theta, noise), rtol=0, atol=TOL)
    values, grads = c.value_and_grad(t, OBS, noise=model, trajectories=T, seed=9)
    assert grads.shape == exact_grads.shape
    runs = [c.value_and_grad(t, OBS, noise=model, trajectories=T // SPLIT, seed=200 + s) for s in range(SPLIT)]
    _trajectory_check(values.numpy(), exact_values, [v.numpy() for v, _ in runs], "values")
    _trajectory_check(grads.numpy(), exact_grads, [g.numpy() for _, g in runs], "gradients")
    with pytest.raises(ValueError, match="amplitude damping"):  # jumps depend on the state: values only
        c.value_and_grad(t, OBS, noise=NoiseModel(amplitude_damping=0.1), trajectories=16, seed=1)


# ---- 5. light cone ---------------------------------------------------------------------------

#: the observable acts on qubits 2, 3: the light cone is qubits 1, 2, 3, which the
#: engine may renumber, so per-qubit rates and readout must follow the renumbering
LC_GATES = [
    ("ry", (3,), ("a",)),
    ("h", (1,), ()),
    ("ry", (1,), ("b",)),
    ("cnot", (1, 2), ()),  # qubit 1's last contact with the observable's qubits 2, 3
    ("cz", (3, 2), ()),
    ("u3", (2,), ("c", "a", 0.2)),
    ("h", (0,), ()),
    ("crx", (0, 1), ("d",)),  # this gate and the ones on 0, 1 below are outside the light cone
    ("rot", (0,), ("f", "b", "c")),
    ("rz", (1,), ("f",)),
    ("ry", (2,), ("e",)),
]
LC_OBS = "Z3 Z2 + 0.5 X2 - 0.4 Y3"
LC_PER_QUBIT = {
    "amplitude_damping": {1: 0.2, 2: 0.05, 3: 0.12},
    "phase_damping": {0: 0.1, 3: 0.06},
    "bit_flip": {1: 0.06},
    "phase_flip": {2: 0.03, 3: 0.08},
    "depolarizing": {0: 0.04, 2: 0.1},
    "readout": {2: 0.05, 3: 0.02},
}


@pytest.mark.parametrize("key", ["all", "per_qubit", "per_gate"])
def test_light_cone_is_exact_under_noise(key):
    noise = LC_PER_QUBIT if key == "per_qubit" else MODELS[key]
    theta = thetas(LC_GATES, seed=5)
    c = circuit(LC_GATES, 4)
    model = NoiseModel(**noise)
    t = torch.tensor(theta)
    on = c.expval(t, LC_OBS, noise=model, light_cone=True)
    off = c.expval(t, LC_OBS, noise=model, light_cone=False)
    np.testing.assert_allclose(on.numpy(), off.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(on.numpy(), reference_values(theta, noise, LC_GATES, 4, LC_OBS), rtol=0, atol=TOL)
    (v_on, g_on), (v_off, g_off) = (c.value_and_grad(t, LC_OBS, noise=model, light_cone=flag) for flag in (True, False))
    np.testing.assert_allclose(v_on.numpy(), v_off.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(g_on.numpy(), g_off.numpy(), rtol=0, atol=1e-12)
    # "d" and "f" act only outside the light cone
    names = ref.parameter_names(LC_GATES)
    assert np.abs(g_off.numpy()[:, [names.index("d"), names.index("f")]]).max() < 1e-12
    expected = np.array([ref.finite_difference_grad(LC_GATES, row, 4, LC_OBS, noise) for row in theta])
    np.testing.assert_allclose(g_on.numpy(), expected, rtol=0, atol=1e-7)


# ---- 6. PennyLane default.mixed --------------------------------------------------------------


def test_matches_pennylane_default_mixed():
    qml = pytest.importorskip("pennylane")
    gates = [
        ("ry", (0,), ("a",)),
        ("ry", (1,), ("b",)),
        ("rz", (0,), ("c",)),
        ("cz", (0, 1), ()),
        ("crx", (1, 2), ("a",)),
        ("ry", (2,), ("d",)),
        ("crx", (2, 0), ("b",)),
        ("rz", (1,), ("d",)),
    ]
    noise = {"amplitude_damping": 0.11, "phase_damping": 0.07, "bit_flip": 0.04, "phase_flip": 0.06, "depolarizing": 0.05}
    channels = {
        "amplitude_damping": qml.AmplitudeDamping,
        "phase_damping": qml.PhaseDamping,
        "bit_flip": qml.BitFlip,
        "phase_flip": qml.PhaseFlip,
        "depolarizing": qml.DepolarizingChannel,
    }
    ops = {"ry": qml.RY, "rz": qml.RZ, "crx": qml.CRX}
    obs_terms = [(1.0, {0: "Z", 1: "Z"}), (0.5, {2: "X"}), (-0.3, {0: "Y", 2: "Z"})]
    obs_text = "Z0 Z1 + 0.5 X2 - 0.3 Y0 Z2"
    pl_obs = {"X": qml.PauliX, "Y": qml.PauliY, "Z": qml.PauliZ}
    dev = qml.device("default.mixed", wires=3)

    def body(row):
        for name, qubits, angles in ref.bind(gates, row):
            if name == "cz":
                qml.CZ(wires=list(qubits))
            else:
                ops[name](angles[0], wires=list(qubits) if len(qubits) > 1 else qubits[0])
            for q in qubits:
                for channel in ref.CHANNEL_ORDER:
                    channels[channel](noise[channel], wires=q)

    @qml.qnode(dev)
    def expvals(row):
        body(row)
        out = []
        for _, factors in obs_terms:
            op = None
            for q, p in factors.items():
                op = pl_obs[p](q) if op is None else op @ pl_obs[p](q)
            out.append(qml.expval(op))
        return out

    @qml.qnode(dev)
    def rho(row):
        body(row)
        return qml.density_matrix(wires=[0, 1, 2])

    theta = thetas(gates, seed=6)
    c = circuit(gates)
    model = NoiseModel(**noise)
    got_values = c.expval(torch.tensor(theta), obs_text, noise=model).numpy()
    got_rho = c.density_matrix(torch.tensor(theta), noise=model).numpy()
    for b, row in enumerate(theta):
        pl_values = np.array([float(v) for v in expvals(row)])
        pl_value = sum(coeff * v for (coeff, _), v in zip(obs_terms, pl_values))
        pl_rho = np.asarray(rho(row))
        # the reference agrees with PennyLane (so both conventions are PennyLane's) ...
        np.testing.assert_allclose(ref.density_matrix(ref.bind(gates, row), N, noise), pl_rho, rtol=0, atol=TOL)
        # ... and so does qtrain
        np.testing.assert_allclose(got_rho[b], pl_rho, rtol=0, atol=TOL)
        np.testing.assert_allclose(got_values[b], pl_value, rtol=0, atol=TOL)
