r"""The fast engine: full-batch GD in coefficient space for many networks at once.

Every GD step adds to ``w_{j,r} ⊙ m_{j,r}`` a combination of the masked signal and noise vectors
(:mod:`prunebook.decomposition`), so the state of a network is its coefficient matrix c [2, m, w]
on the vectors v = (mu, xi_1, ..., xi_n, -mu), zero-padded to a width w that is a multiple of 4.
The signal patch of sample i is y_i mu, i.e. +mu or -mu, so every patch of every sample is one of
the v_a, and one Gram matrix per neuron, K_{ab} = <v_a ⊙ m, v_b ⊙ m>, gives all pre-activations:
h = h^{(0)} + K c. A step costs O(m w^2) instead of the weights engine's O(m n d).

:func:`prunebook.dynamics.reference_step` is the same step written plainly for one network; the
tests check that both give the same trajectory.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from prunebook import coefficient_kernel
from prunebook.activation import relu_power
from prunebook.conventions import class_signs, error_from_margins
from prunebook.decomposition import PatchSplit, gram_matrices
from prunebook.guard import Recorder, guarded_steps
from prunebook.network import mean_logistic_loss
from prunebook.result import TrainResult, record_steps

__all__ = ["basis_width", "bytes_per_network", "CoefficientSystem", "build_system", "evaluate", "update", "run"]

#: On the CPU, run the compiled kernel (:mod:`prunebook.coefficient_kernel`) when numba is available;
#: False forces the torch path everywhere (the tests compare the two).
USE_KERNEL = True

#: Gram matrices of one chunk of networks stay below this many bytes, so that they remain in the
#: CPU's last-level cache across the steps of the chunk (the per-step cost is dominated by reading K)
CACHE_BYTES = 24 * 2**20


def basis_width(n: int) -> int:
    """Rows of the engine's basis (mu, xi_1..xi_n, -mu), zero-padded to a multiple of 4: aligned rows
    make the small batched matmuls much faster."""
    return -(-(n + 2) // 4) * 4


def bytes_per_network(d: int, n: int, m: int, element_size: int) -> int:
    """Peak memory of one network in :func:`run` (inputs, basis, Gram, per-step temporaries, records)."""
    width = basis_width(n)
    elements = 2 * n * d + 4 * 2 * m * d + width * d  # X, W0/M/W, basis vectors
    elements += 2 * 2 * m * width**2 + 8 * 2 * m * width + 2 * 2 * m * n  # Gram, temporaries, records
    return elements * element_size


class CoefficientSystem(NamedTuple):
    """The fixed operators of a batch of B networks (all built once, before the first step)."""

    K: torch.Tensor  #: Gram matrices, [B * 2m, w, w]
    h0: torch.Tensor  #: initial pre-activations <w0 ⊙ m, v_a>, [B * 2m, 1, w]
    to_margins: torch.Tensor  #: P [B, w, n + 1]: -margins = D @ P, last column their sum (a checksum)
    to_weights: torch.Tensor  #: Q [B, n + 1, w]: per-column GD weights = sigmoid(-margins) @ Q
    signs: torch.Tensor  #: the class signs j, shaped [1, 2, 1]
    sqnorm: torch.Tensor  #: ||v_a ⊙ m||^2, [B, 2, m, w]
    q: float


def build_system(K: torch.Tensor, h0: torch.Tensor, y: torch.Tensor, *, q: float, lr: float) -> CoefficientSystem:
    """Operators for networks with Gram matrices K [B, 2, m, w, w], h0 [B, 2, m, w] and labels y [B, n].

    With D_a = sum_{j,r} j sigma(h_{j,r,a}) (the output on patch v_a, times m), the margins are
    y_i (D_{sig(i)} + D_{xi_i}) / m, where sig(i) is the column of y_i mu, and GD adds to c_{j,r,a}
    the amount lr j / (n m) sum_{patches of sample i equal to v_a} y_i sigmoid(-margin_i) sigma'(h_{j,r,a}).
    Both sums over samples are fixed linear maps, P and Q.
    """
    B, two, m, width = h0.shape
    n = y.shape[-1]
    mu_col, neg_col = 0, n + 1
    y_float = y.to(h0.dtype)
    signal_col = torch.where(y > 0, mu_col, neg_col)  # [B, n]
    rows = torch.arange(B, device=y.device)[:, None]
    samples = torch.arange(n, device=y.device)
    P = y_float.new_zeros(B, width, n + 1)
    P[rows, signal_col, samples] = -y_float / m
    P[:, 1 + samples, samples] = -y_float / m
    P[..., n] = P[..., :n].sum(-1)
    Q = y_float.new_zeros(B, n + 1, width)
    Q[rows, samples, signal_col] = lr * q * y_float / (n * m)
    Q[:, samples, 1 + samples] = lr * q * y_float / (n * m)
    return CoefficientSystem(
        K=K.reshape(B * two * m, width, width),
        h0=h0.reshape(B * two * m, 1, width),
        to_margins=P,
        to_weights=Q,
        signs=class_signs(h0).reshape(1, two, 1),
        sqnorm=torch.diagonal(K, dim1=-2, dim2=-1),
        q=q,
    )


def evaluate(c: torch.Tensor, system: CoefficientSystem) -> tuple[torch.Tensor, torch.Tensor]:
    """Pure: (sigma'(h)/q [B, 2, m, w], -margins [B, 1, n + 1] with their sum last) at coefficients c."""
    B, two, m, width = c.shape
    h = torch.baddbmm(system.h0, c.reshape(-1, 1, width), system.K).reshape(B, two, m, width)
    r, derivative = relu_power(h, system.q)
    S = (r * derivative).sum(-2)  # sum over neurons of sigma(h), [B, 2, w]
    return derivative, torch.bmm((S[:, 0] - S[:, 1])[:, None], system.to_margins)


def update(c: torch.Tensor, derivative: torch.Tensor, neg_margins: torch.Tensor, system: CoefficientSystem) -> torch.Tensor:
    """Pure: the coefficients after one GD step."""
    weights = torch.bmm(torch.sigmoid(neg_margins), system.to_weights) * system.signs  # [B, 2, w]
    return c.addcmul(derivative, weights[:, :, None, :])


def _run_chunk(system: CoefficientSystem, n: int, *, steps: int, names, every: int, check_every=None):
    B, width = system.to_margins.shape[0], system.to_margins.shape[1]
    two, m = 2, system.K.shape[0] // (2 * B)
    recorder = Recorder(names, record_steps(steps, every))
    mu_col, neg_col = 0, n + 1

    def evaluate_(c):
        derivative, neg = evaluate(c, system)
        return (derivative, neg), neg[:, 0, n]

    def update_(c, aux):
        return update(c, *aux, system)

    def record(t, c, aux):
        margins = -aux[1][:, 0, :n]
        values = {"loss": mean_logistic_loss(margins)}
        if "train_error" in names:
            values["train_error"] = error_from_margins(margins)
        if names & {"gamma", "rho"}:
            g = c * system.sqnorm  # gamma = (c_0 - c_{n+1}) ||mu ⊙ m||^2, rho_i = c_i ||xi_i ⊙ m||^2
            if "gamma" in names:
                values["gamma"] = g[..., mu_col] - g[..., neg_col]
            if "rho" in names:
                values["rho"] = g[..., 1 : n + 1]
        recorder.add(**values)

    c0 = system.h0.new_zeros(B, two, m, width)
    c, diverged = guarded_steps(c0, evaluate_, update_, record, recorder, steps=steps, batch_ndim=1,
                                check_every=check_every)
    return c, diverged, recorder.stacked()


def _run_kernel(K, h0, y, n, *, q, lr, steps, names, every):
    """All networks through the compiled CPU kernel; returns (c, diverged, histories) like the torch path."""
    dtype = h0.dtype
    signal_col = torch.where(y > 0, 0, n + 1).numpy().astype("int64")
    loss, error, coef, c, diverged, _ = coefficient_kernel.run_networks(
        K.contiguous().numpy(), h0.contiguous().numpy(), signal_col, y.to(dtype).contiguous().numpy(),
        lr=lr, q=q, steps=steps, record_at=record_steps(steps, every),
        want_error="train_error" in names, want_coefficients=bool(names & {"gamma", "rho"}),
    )
    hist = {"loss": torch.from_numpy(loss)}
    if error is not None:
        hist["train_error"] = torch.from_numpy(error)
    if coef is not None:
        g = torch.from_numpy(coef)  # c * ||v_a ⊙ m||^2, [T, B, 2, m, w]
        if "gamma" in names:
            hist["gamma"] = g[..., 0] - g[..., n + 1]
        if "rho" in names:
            hist["rho"] = g[..., 1 : n + 1].contiguous()
    return torch.from_numpy(c), torch.from_numpy(diverged), hist


def run(W0, M, split: PatchSplit, y, *, q, lr, steps, names, every, check_every=None) -> TrainResult:
    """GD in coefficient space; called by :func:`prunebook.train` with validated, expanded inputs.

    Networks are independent, so the batch is cut into chunks whose Gram matrices fit in cache and
    each chunk runs all its steps before the next starts; results are identical to one big batch.
    """
    bs = W0.shape[:-3]
    two, m, d = W0.shape[-3:]
    n = y.shape[-1]
    W_flat = W0.reshape(-1, two, m, d)
    M_flat = M.expand(*bs, two, m, d).reshape(-1, two, m, d)
    mu = split.mu.expand(*bs, d).reshape(-1, 1, d).to(W0.dtype)
    xi = split.xi.expand(*bs, n, d).reshape(-1, n, d).to(W0.dtype)
    y_flat = y.expand(*bs, n).reshape(-1, n)
    B = W_flat.shape[0]
    width = basis_width(n)
    V = torch.cat([mu, xi, -mu, mu.new_zeros(B, width - n - 2, d)], dim=1)  # [B, width, d]
    K = gram_matrices(V, M_flat)  # [B, 2, m, width, width]
    h0 = ((W_flat * M_flat).reshape(B, two * m, d) @ V.mT).reshape(B, two, m, width)  # <w0 ⊙ m, v_a>
    if W0.device.type == "cpu" and USE_KERNEL and coefficient_kernel.AVAILABLE:
        c, diverged, hist = _run_kernel(K, h0, y_flat, n, q=q, lr=lr, steps=steps, names=names, every=every)
    else:
        per_network = 2 * m * width**2 * W0.element_size()
        chunk = max(1, min(B, CACHE_BYTES // per_network)) if W0.device.type == "cpu" else max(B, 1)
        parts = []
        for s in range(0, B, chunk):
            system = build_system(K[s : s + chunk], h0[s : s + chunk], y_flat[s : s + chunk], q=q, lr=lr)
            parts.append(_run_chunk(system, n, steps=steps, names=names, every=every, check_every=check_every))
        c = torch.cat([p[0] for p in parts])
        diverged = torch.cat([p[1] for p in parts])
        hist = {k: torch.cat([p[2][k] for p in parts], dim=1) for k in parts[0][2]}
    W_final = W_flat + (c.reshape(B, two * m, width) @ V).reshape(B, two, m, d) * M_flat
    times = record_steps(steps, every)

    def unflat(t, lead=()):
        return t.reshape((*lead, *bs, *t.shape[len(lead) + 1 :]))

    T = (len(times),)
    return TrainResult(
        W=unflat(W_final),
        steps=torch.tensor(times),
        loss=unflat(hist["loss"], T),
        train_error=unflat(hist["train_error"], T) if "train_error" in hist else None,
        gamma=unflat(hist["gamma"], T) if "gamma" in hist else None,
        rho=unflat(hist["rho"], T) if "rho" in hist else None,
        diverged=unflat(diverged),
        engine="coefficients",
    )
