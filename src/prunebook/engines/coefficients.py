r"""GD in coefficient space for many networks at once: the fast engine, on either of two bases.

Every GD step adds to ``w_{j,r} ⊙ m_{j,r}`` a combination of the masked training patches, so the
state of a network is a coefficient matrix c [2, m, w] on a list of basis vectors v_a (zero-padded
to a width w that is a multiple of 4), and one Gram matrix per neuron, K_{ab} = <v_a ⊙ m, v_b ⊙ m>,
gives all pre-activations: h = h^{(0)} + K c. A step costs O(m w^2) instead of the weights
engine's O(m n d). Which basis vector each patch of each sample is, is an index table
``cols [B, n, P]``; with it the output is f_i = (1/m) sum_p D_{cols[i, p]}, where
D_a = sum_{j,r} j sigma(h_{j,r,a}), and GD adds lr j / (n m) sigma'(h_{j,r,a}) sum_{(i,p): cols[i,p]=a}
y_i sigmoid(-y_i f_i) to c_{j,r,a}.

- :func:`signal_noise_basis`, the ``"coefficients"`` engine: data of the two-patch model,
  v = (mu, xi_1, ..., xi_n, -mu); the signal patch of sample i is y_i mu, one of the two signal
  columns, so w = n + 2 (padded) whatever the dimension, and (gamma, rho) can be read off c;
- :func:`patch_basis`, the ``"gram"`` engine: any data, every patch of every sample its own basis
  vector, w = n P (padded); for data that are not of the signal-noise form (chapter 6's digits).

:func:`prunebook.engines.reference.reference_step` is the same step written plainly for one
network; the tests check that both give the same trajectory. :mod:`prunebook.engines.flow`
integrates the gradient flow on the same operators.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from prunebook.activation import relu_power
from prunebook.conventions import class_signs, error_from_margins
from prunebook.decomposition import PatchSplit, gram_matrices
from prunebook.engines import coefficient_kernel
from prunebook.engines.guard import Recorder, guarded_steps
from prunebook.engines.threads import kernel_threads
from prunebook.network import mean_logistic_loss
from prunebook.result import TrainResult, record_steps

__all__ = [
    "basis_width", "bytes_per_network", "Basis", "signal_noise_basis", "patch_basis", "operators",
    "CoefficientSystem", "build_system", "evaluate", "update", "run",
]

#: On the CPU, run the compiled kernel (:mod:`prunebook.engines.coefficient_kernel`) when numba is
#: available; False forces the torch path everywhere (the tests compare the two).
USE_KERNEL = True

#: Gram matrices of one chunk of networks stay below this many bytes, so that they remain in the
#: CPU's last-level cache across the steps of the chunk (the per-step cost is dominated by reading K)
CACHE_BYTES = 24 * 2**20


def basis_width(columns: int) -> int:
    """Width of a basis of ``columns`` vectors, zero-padded to a multiple of 4: aligned rows make
    the small batched matmuls much faster. The signal-noise basis has n + 2 columns."""
    return -(-columns // 4) * 4


def bytes_per_network(d: int, n: int, m: int, element_size: int, patches: int | None = None) -> int:
    """Peak memory of one network in :func:`run` (inputs, basis, Gram, per-step temporaries, records).

    ``patches=None`` is the signal-noise basis (n + 2 columns); an integer P the patch basis (n P).
    """
    width = basis_width(n + 2 if patches is None else n * patches)
    elements = (patches or 2) * n * d + 4 * 2 * m * d + width * d  # X, W0/M/W, basis vectors
    elements += 2 * 2 * m * width**2 + 8 * 2 * m * width + 2 * 2 * m * n  # Gram, temporaries, records
    return elements * element_size


class Basis(NamedTuple):
    """The basis vectors of a batch of networks and where each patch of each sample sits in it."""

    V: torch.Tensor  #: [B, w, d], zero rows past the last column
    cols: torch.Tensor  #: [B, n, P] (int64): the column of patch p of sample i
    signal_noise: bool  #: True: columns (mu, xi_1, ..., xi_n, -mu), so gamma and rho can be read off c


def signal_noise_basis(split: PatchSplit, y: torch.Tensor, bs: torch.Size, dtype: torch.dtype) -> Basis:
    """(mu, xi_1, ..., xi_n, -mu) per network, for data of the two-patch model (``split``)."""
    d = split.mu.shape[-1]
    n = y.shape[-1]
    mu = split.mu.expand(*bs, d).reshape(-1, 1, d).to(dtype)
    xi = split.xi.expand(*bs, n, d).reshape(-1, n, d).to(dtype)
    B = mu.shape[0]
    width = basis_width(n + 2)
    V = torch.cat([mu, xi, -mu, mu.new_zeros(B, width - n - 2, d)], dim=1)
    y_flat = y.expand(*bs, n).reshape(-1, n)
    signal_col = torch.where(y_flat > 0, 0, n + 1)
    noise_col = torch.arange(1, n + 1, device=y.device).expand(B, n)
    return Basis(V, torch.stack([signal_col, noise_col], dim=-1).to(torch.int64), True)


def patch_basis(X: torch.Tensor, bs: torch.Size, dtype: torch.dtype) -> Basis:
    """Every patch of every sample its own column, a = p n + i, for data of any form."""
    n, P, d = X.shape[-3:]
    Xp = X.expand(*bs, n, P, d).reshape(-1, n, P, d).to(dtype).transpose(1, 2)  # [B, P, n, d]
    B = Xp.shape[0]
    width = basis_width(n * P)
    V = torch.cat([Xp.reshape(B, P * n, d), Xp.new_zeros(B, width - n * P, d)], dim=1)
    cols = (torch.arange(P, device=X.device) * n + torch.arange(n, device=X.device)[:, None]).expand(B, n, P)
    return Basis(V, cols.to(torch.int64), False)


def operators(W0: torch.Tensor, M: torch.Tensor, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gram matrices K [B, 2, m, w, w] and initial pre-activations h0 = <w0 ⊙ m, v_a> [B, 2, m, w]."""
    B = V.shape[0]
    two, m, d = W0.shape[-3:]
    W_flat = W0.reshape(B, two, m, d)
    M_flat = M.expand(*W0.shape).reshape(B, two, m, d)
    K = gram_matrices(V, M_flat)
    h0 = ((W_flat * M_flat).reshape(B, two * m, d) @ V.mT).reshape(B, two, m, V.shape[1])
    return K, h0


class CoefficientSystem(NamedTuple):
    """The fixed operators of a batch of B networks (all built once, before the first step)."""

    K: torch.Tensor  #: Gram matrices, [B * 2m, w, w]
    h0: torch.Tensor  #: initial pre-activations <w0 ⊙ m, v_a>, [B * 2m, 1, w]
    to_margins: torch.Tensor  #: P [B, w, n + 1]: -margins = D @ P, last column their sum (a checksum)
    to_weights: torch.Tensor  #: Q [B, n + 1, w]: per-column GD weights = sigmoid(-margins) @ Q
    signs: torch.Tensor  #: the class signs j, shaped [1, 2, 1]
    sqnorm: torch.Tensor  #: ||v_a ⊙ m||^2, [B, 2, m, w]
    q: float


def build_system(K: torch.Tensor, h0: torch.Tensor, cols: torch.Tensor, y: torch.Tensor, *, q: float,
                 lr: float) -> CoefficientSystem:
    """Operators for networks with Gram matrices K [B, 2, m, w, w], h0 [B, 2, m, w], the column table
    cols [B, n, P] and labels y [B, n]. Both sums over samples are fixed linear maps, P and Q."""
    B, two, m, width = h0.shape
    n, patches = cols.shape[-2:]
    y_float = y.to(h0.dtype)
    rows = torch.arange(B, device=y.device)[:, None, None].expand(B, n, patches)
    samples = torch.arange(n, device=y.device)[None, :, None].expand(B, n, patches)
    yy = y_float[:, :, None].expand(B, n, patches)
    P = y_float.new_zeros(B, width, n + 1)
    P.index_put_((rows, cols, samples), -yy / m, accumulate=True)
    P[..., n] = P[..., :n].sum(-1)
    Q = y_float.new_zeros(B, n + 1, width)
    Q.index_put_((rows, samples, cols), lr * q * yy / (n * m), accumulate=True)
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


def read_records(g: torch.Tensor, n: int, names) -> dict[str, torch.Tensor]:
    """gamma and rho from g = c ||v_a ⊙ m||^2 [..., 2, m, w] on the signal-noise basis:
    gamma = g_0 - g_{n+1} (the +mu and -mu columns), rho_i = g_i."""
    out = {}
    if "gamma" in names:
        out["gamma"] = g[..., 0] - g[..., n + 1]
    if "rho" in names:
        out["rho"] = g[..., 1 : n + 1].contiguous()
    return out


def _run_chunk(system: CoefficientSystem, n: int, *, steps: int, names, every: int, check_every=None):
    B, width = system.to_margins.shape[0], system.to_margins.shape[1]
    two, m = 2, system.K.shape[0] // (2 * B)
    recorder = Recorder(names, record_steps(steps, every))

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
            values.update(read_records(c * system.sqnorm, n, names))
        recorder.add(**values)

    c0 = system.h0.new_zeros(B, two, m, width)
    c, diverged = guarded_steps(c0, evaluate_, update_, record, recorder, steps=steps, batch_ndim=1,
                                check_every=check_every)
    return c, diverged, recorder.stacked()


def _run_kernel(K, h0, cols, y, n, *, q, lr, steps, names, every):
    """All networks through the compiled CPU kernel; returns (c, diverged, histories) like the torch path."""
    dtype = h0.dtype
    with kernel_threads():
        loss, error, coef, c, diverged, _ = coefficient_kernel.run_networks(
            K.contiguous().numpy(), h0.contiguous().numpy(), cols.contiguous().numpy(), y.to(dtype).contiguous().numpy(),
            lr=lr, q=q, steps=steps, record_at=record_steps(steps, every),
            want_error="train_error" in names, want_coefficients=bool(names & {"gamma", "rho"}),
        )
    hist = {"loss": torch.from_numpy(loss)}
    if error is not None:
        hist["train_error"] = torch.from_numpy(error)
    if coef is not None:
        hist.update(read_records(torch.from_numpy(coef), n, names))  # coef = c * ||v_a ⊙ m||^2, [T, B, 2, m, w]
    return torch.from_numpy(c), torch.from_numpy(diverged), hist


def use_kernel(t: torch.Tensor) -> bool:
    """Whether the compiled CPU kernel runs for tensors like ``t`` (CPU, float32 or float64, numba present)."""
    return t.device.type == "cpu" and USE_KERNEL and coefficient_kernel.AVAILABLE


def run(W0, M, basis: Basis, y, *, q, lr, steps, names, every, check_every=None, engine="coefficients") -> TrainResult:
    """GD in coefficient space; called by :func:`prunebook.train` with validated, expanded inputs.

    Networks are independent, so the batch is cut into chunks whose Gram matrices fit in cache and
    each chunk runs all its steps before the next starts; results are identical to one big batch.
    """
    bs = W0.shape[:-3]
    two, m, d = W0.shape[-3:]
    n = y.shape[-1]
    W_flat = W0.reshape(-1, two, m, d)
    M_flat = M.expand(*bs, two, m, d).reshape(-1, two, m, d)
    y_flat = y.expand(*bs, n).reshape(-1, n)
    B = W_flat.shape[0]
    V = basis.V
    width = V.shape[1]
    K, h0 = operators(W_flat, M_flat, V)
    if use_kernel(W0):
        c, diverged, hist = _run_kernel(K, h0, basis.cols, y_flat, n, q=q, lr=lr, steps=steps, names=names, every=every)
    else:
        per_network = 2 * m * width**2 * W0.element_size()
        chunk = max(1, min(B, CACHE_BYTES // per_network)) if W0.device.type == "cpu" else max(B, 1)
        parts = []
        for s in range(0, B, chunk):
            system = build_system(K[s : s + chunk], h0[s : s + chunk], basis.cols[s : s + chunk], y_flat[s : s + chunk],
                                  q=q, lr=lr)
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
        times=lr * torch.tensor(times, dtype=torch.float64),
        loss=unflat(hist["loss"], T),
        train_error=unflat(hist["train_error"], T) if "train_error" in hist else None,
        gamma=unflat(hist["gamma"], T) if "gamma" in hist else None,
        rho=unflat(hist["rho"], T) if "rho" in hist else None,
        diverged=unflat(diverged),
        engine=engine,
    )
