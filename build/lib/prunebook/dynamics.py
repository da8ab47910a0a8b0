r"""The signal-noise decomposition and GD in coefficient space (DESIGN section 2).

Every GD step adds to ``w_{j,r} ⊙ m_{j,r}`` a combination of ``mu ⊙ m_{j,r}`` and the
``xi_i ⊙ m_{j,r}``, so for all t

.. math::

    w^{(t)}_{j,r} \odot m_{j,r} = w^{(0)}_{j,r} \odot m_{j,r}
      + \gamma^{(t)}_{j,r} \frac{\mu \odot m_{j,r}}{\|\mu \odot m_{j,r}\|^2}
      + \sum_{i=1}^n \rho^{(t)}_{j,r,i} \frac{\xi_i \odot m_{j,r}}{\|\xi_i \odot m_{j,r}\|^2}.

Write v_0 = mu ⊙ m and v_i = xi_i ⊙ m (per neuron) and K_{ab} = <v_a, v_b> for their
(n+1) x (n+1) Gram matrix. With coefficients c (so that gamma = c_0 K_00 and rho_i = c_i K_ii), all
pre-activations are h = h^{(0)} + K c, where h^{(0)}_a = <w^{(0)} ⊙ m, v_a>: the signal patch of
sample i gives y_i h_0, the noise patch h_i. GD on c is therefore exact at O(m n^2) per step.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from prunebook._checks import check_binary, check_finite, check_tensor
from prunebook.network import _signs, _softplus_loss, activation, activation_derivative

__all__ = ["PatchSplit", "split_patches", "SignalNoiseBasis", "decompose", "reconstruct", "train_coefficients"]

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
    if not torch.allclose(signal, mu[..., None, :].expand_as(signal), rtol=1e-6, atol=0):
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


def _gram(V: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """K[..., j, r, a, b] = sum_k M[..., j, r, k] V[..., a, k] V[..., b, k]; O(m n^2 d) work at most.

    Three paths, chosen per network: a mask that keeps everything gives V V^T once for all neurons;
    masks that keep at most 40% of the coordinates gather each neuron's kept columns (padding
    zeroed), so the cost falls with 1 - p; otherwise one batched matmul per neuron, (V ⊙ m_r) V^T.
    Temporaries stay near ``_GRAM_CHUNK_ELEMENTS`` elements.
    """
    bs = V.shape[:-2]
    n1, d = V.shape[-2:]
    two, m = M.shape[-3:-1]
    Vf = V.reshape(-1, n1, d)
    Mf = M.reshape(-1, two * m, d)
    K = Vf.new_empty(Vf.shape[0], two * m, n1, n1)
    kept = Mf.sum(-1)
    most = kept.amax(-1)
    full = torch.nonzero(kept.amin(-1) == d).flatten().tolist()
    sparse = torch.nonzero(most <= 0.4 * d).flatten().tolist()
    dense = sorted(set(range(Vf.shape[0])) - set(full) - set(sparse))
    if full:
        K[full] = (Vf[full] @ Vf[full].mT)[:, None]
    per = max(1, _GRAM_CHUNK_ELEMENTS // (two * m * n1 * d))
    for s in range(0, len(sparse), per):
        rows = sparse[s : s + per]
        v, mk = Vf[rows], Mf[rows]
        vals, idx = torch.topk(mk, max(int(most[rows].max()), 1), dim=-1, sorted=False)  # kept coordinates first
        Vg = torch.gather(v[:, None].expand(-1, two * m, -1, -1), 3, idx[:, :, None, :].expand(-1, -1, n1, -1))
        Vg = Vg * vals[:, :, None, :]  # zero the padding (coordinates the mask drops)
        K[rows] = Vg @ Vg.mT
    per = max(1, _GRAM_CHUNK_ELEMENTS // (n1 * d))
    for s in range(0, len(dense), per):
        rows = dense[s : s + per]
        v, mk = Vf[rows], Mf[rows]
        vt = v.mT
        K[rows] = torch.stack([(v * mk[:, r, None, :]) @ vt for r in range(two * m)], dim=1)
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
        self.K = _gram(self.V, self.M)  # [..., 2, m, n+1, n+1]
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
        check_finite(name, t)
    check_binary("M", M)
    if M.shape[-3:] != W.shape[-3:]:
        raise ValueError(f"M: last three dimensions {tuple(M.shape[-3:])} must equal W's {tuple(W.shape[-3:])}")
    basis = SignalNoiseBasis(M, mu, xi, dtype=W.dtype)
    Mf = M.to(W.dtype)
    c = basis.coefficients((W - W0) * Mf)
    return basis.gamma_rho(c)


def reconstruct(
    W0: torch.Tensor, M: torch.Tensor, mu: torch.Tensor, xi: torch.Tensor, gamma: torch.Tensor, rho: torch.Tensor
) -> torch.Tensor:
    """The right-hand side of the decomposition: W0 ⊙ M + gamma v_0 / ||v_0||^2 + sum_i rho_i v_i / ||v_i||^2."""
    basis = SignalNoiseBasis(M, mu, xi, dtype=W0.dtype)
    g = torch.cat([gamma[..., None], rho], dim=-1)
    c = torch.where(basis.sqnorm > 0, g / basis.sqnorm.clamp_min(torch.finfo(W0.dtype).tiny), torch.zeros_like(g))
    return W0 * M.to(W0.dtype) + basis.combine(c)


#: Gram matrices of one chunk of networks stay below this many bytes, so that they remain in the
#: CPU's cache across the steps of the chunk (per-step cost is dominated by reading K)
_CACHE_BYTES = 8 * 2**20


def _activation_and_derivative(z: torch.Tensor, q: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigma(z), sigma'(z)) sharing one power: max(z,0)^q and q max(z,0)^(q-1)."""
    r = torch.relu(z)
    if q == 1:
        return r, (z > 0).to(z.dtype)
    rq1 = r if q == 2 else r.pow(q - 1)
    return rq1 * r, q * rq1


def train_coefficients(W0, M, split: PatchSplit, y, *, q, lr, steps, names, every):
    """GD in coefficient space; called by :func:`prunebook.train` with validated, expanded inputs.

    Networks are independent, so the batch is cut into chunks whose Gram matrices fit in cache and
    each chunk runs all its steps before the next starts; results are identical to one big batch.
    """
    from prunebook.train import TrainResult, record_steps

    bs = W0.shape[:-3]
    two, m, d = W0.shape[-3:]
    n = y.shape[-1]
    Wf = W0.reshape(-1, two, m, d)
    Mf = M.expand(*bs, two, m, d).reshape(-1, two, m, d)
    muf = split.mu.expand(*bs, d).reshape(-1, d)
    xif = split.xi.expand(*bs, n, d).reshape(-1, n, d)
    yf = y.expand(*bs, n).reshape(-1, n)
    B = Wf.shape[0]
    per_network = 2 * m * (n + 1) ** 2 * W0.element_size()
    if W0.device.type == "cpu":
        chunk = max(1, min(B, _CACHE_BYTES // per_network))
    else:  # on an accelerator the whole batch goes at once
        chunk = max(B, 1)
    basis = SignalNoiseBasis(Mf, muf, xif, dtype=W0.dtype)  # the Gram matrices of the whole batch at once
    h0 = basis.inner(Wf * Mf)  # [B, 2, m, n+1]
    parts = [
        _coefficient_chunk(basis, h0, slice(s, s + chunk), yf[s : s + chunk], q=q, lr=lr, steps=steps, names=names,
                           every=every)
        for s in range(0, B, chunk)
    ]
    W_final = Wf + basis.combine(torch.cat([p.pop("c") for p in parts]))
    times = record_steps(steps, every)
    hist = {k: torch.cat([p[k] for p in parts], dim=1) for k in parts[0] if k != "diverged"}

    def unflat(t, lead=()):
        return t.reshape((*lead, *bs, *t.shape[len(lead) + 1 :]))

    return TrainResult(
        W=unflat(W_final),
        steps=torch.tensor(times),
        loss=unflat(hist["loss"], (len(times),)),
        train_error=unflat(hist["train_error"], (len(times),)) if "train_error" in hist else None,
        gamma=unflat(hist["gamma"], (len(times),)) if "gamma" in hist else None,
        rho=unflat(hist["rho"], (len(times),)) if "rho" in hist else None,
        diverged=unflat(torch.cat([p["diverged"] for p in parts])),
        engine="coefficients",
    )


def _coefficient_chunk(basis: SignalNoiseBasis, h0_all, rows: slice, y, *, q, lr, steps, names, every) -> dict:
    """GD in coefficient space for the networks ``rows`` of a flat batch; returns c and histories."""
    from prunebook.train import record_steps

    dtype = h0_all.dtype
    sqnorm = basis.sqnorm[rows]
    n1 = basis.K.shape[-1]
    n1p = -(-n1 // 4) * 4  # pad to a multiple of 4: aligned rows make the small matmuls much faster
    K = torch.nn.functional.pad(basis.K[rows], (0, n1p - n1, 0, n1p - n1)).reshape(-1, n1p, n1p)  # symmetric
    h0 = h0_all[rows]  # [B, 2, m, n+1]
    h0p = torch.nn.functional.pad(h0, (0, n1p - n1)).reshape(-1, 1, n1p)
    c = torch.zeros_like(h0)
    cp = torch.zeros(h0.shape[:-1] + (n1p,), dtype=dtype, device=h0.device)  # padded copy of c
    yf = y.to(dtype)
    yb = yf[:, None, None, :]  # [B, 1, 1, n]
    n = y.shape[-1]
    m = h0.shape[-2]
    y_over_m = yf / m  # margins = y_i (F_+1 - F_-1) with the 1/m of F folded in
    # dL/df_i = -y_i sigmoid(-y_i f_i) / n; the signal patch of sample i contributes y_i times it:
    # weight = sigmoid(-margins) repeated for both patches, times (-1/n, -y_i/n)
    const = torch.cat([torch.full_like(yf, -1.0 / n), -yf / n], dim=-1)[:, None, None, :]  # [B, 1, 1, 2n]
    neg_step = -lr * _signs(h0)[:, None, None] / m  # [2, 1, 1]: -eta * j / m
    at = set(record_steps(steps, every))
    hist: dict[str, list[torch.Tensor]] = {k: [] for k in names}
    diverged = torch.zeros(h0.shape[0], dtype=torch.bool, device=h0.device)

    for t in range(steps + 1):
        # h0 + K c per neuron, computed as h0 + c^T K (K is symmetric) in one fused batched matmul
        h = torch.baddbmm(h0p, cp.reshape(-1, 1, n1p), K).reshape(cp.shape)[..., :n1]
        # pre-activations of both patches side by side, [B, 2, m, 2n]: the signal patch of sample i
        # is y_i <w ⊙ m, mu ⊙ m>, its noise patch <w ⊙ m, xi_i ⊙ m>
        z = torch.cat([yb * h[..., :1], h[..., 1:]], dim=-1)
        act, der = _activation_and_derivative(z, q)
        Fj = act.reshape(*act.shape[:-1], 2, n).sum(dim=(-3, -2))  # m F_j, summed over neurons and patches
        margins = (Fj[:, 0] - Fj[:, 1]) * y_over_m
        if t in at:
            hist["loss"].append(_softplus_loss(margins))
            if "train_error" in names:
                hist["train_error"].append((margins <= 0).to(dtype).mean(-1))
            if names & {"gamma", "rho"}:
                g = c * sqnorm  # gamma = c_0 ||mu ⊙ m||^2, rho_i = c_i ||xi_i ⊙ m||^2
                if "gamma" in names:
                    hist["gamma"].append(g[..., 0])
                if "rho" in names:
                    hist["rho"].append(g[..., 1:])
        if t == steps:
            break
        prod = der * (torch.sigmoid(-margins).repeat(1, 2)[:, None, None, :] * const)
        grad_c = torch.cat([prod[..., :n].sum(-1, keepdim=True), prod[..., n:]], dim=-1)  # dL/dc up to eta j / m
        c_new = torch.addcmul(c, neg_step, grad_c)
        # one reduction per network: a sum is non-finite iff some entry is (inf or nan)
        diverged |= ~torch.isfinite(c_new.sum(dim=(1, 2, 3)) + margins.sum(-1))
        c = torch.where(diverged[:, None, None, None], c, c_new)
        cp[..., :n1] = c

    out = {k: torch.stack(v) for k, v in hist.items()}
    out["c"] = c
    out["diverged"] = diverged
    return out
