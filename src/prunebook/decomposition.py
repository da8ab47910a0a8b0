r"""The signal-noise decomposition of a pruned network's weights (analysis; the engines are elsewhere).

Every GD step adds to ``w_{j,r} ⊙ m_{j,r}`` a combination of ``mu ⊙ m_{j,r}`` and the
``xi_i ⊙ m_{j,r}``, so for all t

.. math::

    w^{(t)}_{j,r} \odot m_{j,r} = w^{(0)}_{j,r} \odot m_{j,r}
      + \gamma^{(t)}_{j,r} \frac{\mu \odot m_{j,r}}{\|\mu \odot m_{j,r}\|^2}
      + \sum_{i=1}^n \rho^{(t)}_{j,r,i} \frac{\xi_i \odot m_{j,r}}{\|\xi_i \odot m_{j,r}\|^2}.

Write v_0 = mu ⊙ m and v_i = xi_i ⊙ m (per neuron) and K_{ab} = <v_a, v_b> for their
(n+1) x (n+1) Gram matrix. With coefficients c (so that gamma = c_0 K_00 and rho_i = c_i K_ii), all
pre-activations are h = h^{(0)} + K c, where h^{(0)}_a = <w^{(0)} ⊙ m, v_a>: the signal patch of
sample i gives y_i h_0, the noise patch h_i. GD on c is therefore exact at O(m n^2) per step:
:mod:`prunebook.dynamics` writes that step plainly for one network, and
:mod:`prunebook.engines.coefficients` runs it fast for many.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from prunebook._checks import check_binary, check_finite, check_floating, check_tensor

__all__ = ["PatchSplit", "split_patches", "gram_matrices", "SignalNoiseBasis", "decompose", "reconstruct"]

#: cap on the elements of the temporaries used to build Gram matrices (about 256 MB in float64)
_GRAM_CHUNK_ELEMENTS = 2**25


class PatchSplit(NamedTuple):
    mu: torch.Tensor  #: [batch..., d]
    xi: torch.Tensor  #: [batch..., n, d]


def split_patches(X: torch.Tensor, y: torch.Tensor) -> PatchSplit:
    """Recover (mu, xi) from two-patch data X[..., i] = (y_i mu, xi_i); raises if X is not of that form."""
    check_tensor("X", X, ndim_min=3)
    if X.shape[-2] != 2:
        raise ValueError(f"X: the signal-noise decomposition needs exactly 2 patches per sample, got shape {tuple(X.shape)}")
    signal = X[..., 0, :] * y.to(X.dtype)[..., None]  # y_i * (y_i mu) = mu for every i
    mu = signal[..., 0, :]
    # |signal - mu| <= 1e-6 |mu| entrywise (NaN fails), as one reduction
    if not bool(((signal - mu[..., None, :]).abs() - 1e-6 * mu[..., None, :].abs()).amax() <= 0):
        raise ValueError("X: patch 0 must be y_i * mu with one signal vector mu shared by all samples")
    return PatchSplit(mu, X[..., 1, :])


def _expand(M: torch.Tensor, mu: torch.Tensor, xi: torch.Tensor, dtype: torch.dtype):
    check_tensor("mu", mu, ndim_min=1)
    check_tensor("xi", xi, ndim_min=2)
    check_tensor("M", M, ndim_min=3)
    d = M.shape[-1]
    if mu.shape[-1] != d or xi.shape[-1] != d:
        raise ValueError(f"xi: mu [..., d] and xi [..., n, d] must match the mask's d = {d}")
    try:
        bs = torch.broadcast_shapes(M.shape[:-3], mu.shape[:-1], xi.shape[:-2])
    except RuntimeError as exc:
        raise ValueError("xi: batch dimensions of M, mu and xi do not broadcast") from exc
    lead = torch.broadcast_shapes(mu.shape[:-1], xi.shape[:-2])
    V = torch.cat([mu[..., None, :].expand(*lead, 1, d), xi.expand(*lead, *xi.shape[-2:])], dim=-2)
    return bs, V.expand(*bs, *V.shape[-2:]).to(dtype), M.to(dtype).expand(*bs, *M.shape[-3:])


def gram_matrices(V: torch.Tensor, M: torch.Tensor, method: str | None = None) -> torch.Tensor:
    """K[..., j, r, a, b] = sum_k M[..., j, r, k] V[..., a, k] V[..., b, k] for a binary mask M.

    ``method="gather"`` (the default on CPU) works network by network on the smaller side of each
    mask: where a network keeps at most half its weights it gathers each neuron's kept coordinates,
    A_r = V[:, kept_r], and K_r = A_r A_r^T; otherwise it gathers the dropped ones and subtracts,
    K_r = V V^T - A_r A_r^T. The work is O(m n^2 min(p, 1 - p) d), so dense and heavily pruned
    networks are both cheap. ``method="matmul"`` (the default on accelerators) does one batched
    product (V ⊙ m_r) V^T per neuron, O(m n^2 d) with no data-dependent shapes.
    """
    if method is None:
        method = "gather" if V.device.type == "cpu" else "matmul"
    bs = V.shape[:-2]
    n1, d = V.shape[-2:]
    two, m = M.shape[-3:-1]
    V_flat = V.reshape(-1, n1, d)
    M_flat = M.reshape(-1, two * m, d)
    B = V_flat.shape[0]
    K = V_flat.new_empty(B, two * m, n1, n1)
    if method == "matmul":
        per = max(1, _GRAM_CHUNK_ELEMENTS // (n1 * d))
        for s in range(0, B, per):
            v, mk = V_flat[s : s + per], M_flat[s : s + per]
            K[s : s + per] = torch.stack([(v * mk[:, r, None, :]) @ v.mT for r in range(two * m)], dim=1)
        return K.reshape(*bs, two, m, n1, n1)
    if method != "gather":
        raise ValueError(f"method: must be 'gather' or 'matmul', got {method!r}")
    kept = M_flat.sum(-1)  # [B, 2m]
    use_kept = (kept.sum(-1) <= two * m * d / 2).tolist()
    side_count = torch.where(torch.tensor(use_kept, device=V.device)[:, None], kept, d - kept).amax(-1).tolist()
    coords = torch.arange(d, device=V.device).expand(two * m, d)
    zero_row = V_flat.new_zeros(1, n1)
    for b in range(B):
        keep = use_kept[b]
        side = M_flat[b] != 0 if keep else M_flat[b] == 0  # [2m, d]: the coordinates to gather
        count = int(side_count[b])
        if count == 0:
            K[b] = 0 if keep else (V_flat[b] @ V_flat[b].mT)
            continue
        # column of each coordinate in its neuron's gathered list; the rest go to a spare slot
        slot = torch.where(side, torch.cumsum(side, -1) - 1, count)
        idx = torch.full((two * m, count + 1), d, dtype=torch.long, device=V.device)  # d: a zero row
        idx.scatter_(-1, slot, coords)
        A = torch.cat([V_flat[b].mT, zero_row]).index_select(0, idx[:, :count].reshape(-1)).reshape(two * m, count, n1)
        AtA = A.mT @ A
        K[b] = AtA if keep else (V_flat[b] @ V_flat[b].mT) - AtA
    return K.reshape(*bs, two, m, n1, n1)


class SignalNoiseBasis:
    """The per-neuron vectors {mu ⊙ m, xi_i ⊙ m}, their Gram matrix and its pseudo-inverse.

    Built once per (mask, data); :meth:`coefficients` then decomposes any weight change.
    Where the vectors are linearly dependent (heavy pruning, (1 - p) d < n + 1) the coefficients are
    not unique and the minimum-norm ones are returned; the identity still holds.
    """

    def __init__(self, M: torch.Tensor, mu: torch.Tensor, xi: torch.Tensor, *, dtype: torch.dtype | None = None):
        dtype = dtype or mu.dtype
        self.batch_shape, self.V, self.M = _expand(M, mu, xi, dtype)
        self.K = gram_matrices(self.V, self.M)  # [..., 2, m, n+1, n+1]
        self.sqnorm = torch.diagonal(self.K, dim1=-2, dim2=-1)  # ||v_a||^2, [..., 2, m, n+1]
        norm = self.sqnorm.sqrt()
        inv = torch.where(norm > 0, 1 / norm.clamp_min(torch.finfo(dtype).tiny), torch.zeros_like(norm))
        self._inv_norm = inv
        self._pinv: torch.Tensor | None = None  # computed on first use: training never needs it

    @property
    def normalized_gram_pinv(self) -> torch.Tensor:
        """Pseudo-inverse of the Gram matrix of the unit vectors v_a / ||v_a|| (zero vectors dropped)."""
        if self._pinv is None:
            inv = self._inv_norm
            Kn = self.K * inv[..., :, None] * inv[..., None, :]  # unit diagonal (or 0 for a zero vector)
            self._pinv = torch.linalg.pinv(Kn, hermitian=True)
        return self._pinv

    def inner(self, Weff: torch.Tensor) -> torch.Tensor:
        """<Weff_{j,r}, v_a> for masked weights Weff [..., 2, m, d], as [..., 2, m, n+1]."""
        two, m, d = Weff.shape[-3:]
        h = self.V @ Weff.reshape(*Weff.shape[:-3], two * m, d).mT  # [..., n+1, 2m]
        return h.mT.reshape(*h.shape[:-2], two, m, h.shape[-2])

    def coefficients(self, delta_eff: torch.Tensor) -> torch.Tensor:
        """c with delta_eff = sum_a c_a v_a (per neuron), [..., 2, m, n+1]."""
        b = self.inner(delta_eff) * self._inv_norm
        a = (self.normalized_gram_pinv @ b[..., None])[..., 0]
        return a * self._inv_norm

    def gamma_rho(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(gamma [..., 2, m], rho [..., 2, m, n]) from coefficients c."""
        g = c * self.sqnorm
        return g[..., 0], g[..., 1:]

    def combine(self, c: torch.Tensor) -> torch.Tensor:
        """sum_a c_a v_a ⊙ m as weights [..., 2, m, d]."""
        two, m, n1 = c.shape[-3:]
        out = c.reshape(*c.shape[:-3], two * m, n1) @ self.V
        return out.reshape(*out.shape[:-2], two, m, out.shape[-1]) * self.M


def decompose(
    W: torch.Tensor, W0: torch.Tensor, M: torch.Tensor, mu: torch.Tensor, xi: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(gamma [..., 2, m], rho [..., 2, m, n]) such that, exactly as written (no class sign folded in),

    W ⊙ M = W0 ⊙ M + gamma (mu ⊙ M) / ||mu ⊙ M||^2 + sum_i rho_i (xi_i ⊙ M) / ||xi_i ⊙ M||^2.

    A neuron whose mask drops all of mu has gamma = 0. Plot j * gamma for the paper's sign convention.
    """
    check_tensor("W", W, ndim_min=3)
    check_tensor("W0", W0, ndim_min=3)
    if W0.shape[-3:] != W.shape[-3:]:
        raise ValueError(f"W0: last three dimensions {tuple(W0.shape[-3:])} must equal W's {tuple(W.shape[-3:])}")
    for name, t in (("W", W), ("W0", W0), ("mu", mu), ("xi", xi)):
        check_tensor(name, t, ndim_min=1)
        check_floating(name, t)
        check_finite(name, t)
    check_binary("M", M)
    if M.shape[-3:] != W.shape[-3:]:
        raise ValueError(f"M: last three dimensions {tuple(M.shape[-3:])} must equal W's {tuple(W.shape[-3:])}")
    basis = SignalNoiseBasis(M, mu, xi, dtype=W.dtype)
    c = basis.coefficients((W - W0) * M.to(W.dtype))
    return basis.gamma_rho(c)


def reconstruct(
    W0: torch.Tensor, M: torch.Tensor, mu: torch.Tensor, xi: torch.Tensor, gamma: torch.Tensor, rho: torch.Tensor
) -> torch.Tensor:
    """The right-hand side of the decomposition: W0 ⊙ M + gamma v_0 / ||v_0||^2 + sum_i rho_i v_i / ||v_i||^2."""
    basis = SignalNoiseBasis(M, mu, xi, dtype=W0.dtype)
    g = torch.cat([gamma[..., None], rho], dim=-1)
    c = torch.where(basis.sqnorm > 0, g / basis.sqnorm.clamp_min(torch.finfo(W0.dtype).tiny), torch.zeros_like(g))
    return W0 * M.to(W0.dtype) + basis.combine(c)
