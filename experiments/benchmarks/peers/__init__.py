"""Peer simulators timed against qtrain on McClean et al.'s random-circuit gradients.

Each adapter takes ``axes`` (L, n, S) in {0: X, 1: Y, 2: Z} and ``angles``
(S, L*n) and computes, with its own library, dE/d theta_00 per circuit
(``grad_first``, shape (S,)) and the full gradient (``grad_all``, shape
(S, n*L)) of E = <Z0 Z1>. Peer libraries are imported only when an adapter is
built or ``available()`` is asked, so this package imports without them.

    python -m experiments.benchmarks.peers.check
"""

from .pennylane_peer import PennyLanePeer
from .qulacs_peer import QulacsPeer
from .tensorcircuit_peer import TensorCircuitPeer
from .torchquantum_peer import TorchQuantumPeer

PEERS = [QulacsPeer, TensorCircuitPeer, PennyLanePeer, TorchQuantumPeer]

__all__ = ["PEERS", "PennyLanePeer", "QulacsPeer", "TensorCircuitPeer", "TorchQuantumPeer"]
