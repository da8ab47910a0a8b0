r"""GD in coefficient space, written plainly for one network: the reference that chapter 3 shows.

By the decomposition (:mod:`prunebook.decomposition`), neuron r of class j has weights

.. math::

    w^{(t)}_{j,r} \odot m_{j,r} = w^{(0)}_{j,r} \odot m_{j,r}
      + \gamma^{(t)}_{j,r} \frac{\mu \odot m_{j,r}}{\|\mu \odot m_{j,r}\|^2}
      + \sum_i \rho^{(t)}_{j,r,i} \frac{\xi_i \odot m_{j,r}}{\|\xi_i \odot m_{j,r}\|^2},

so every inner product the network needs comes from the Gram matrix K of the masked vectors
(mu ⊙ m, xi_1 ⊙ m, ..., xi_n ⊙ m), and one GD step on the weights is exactly

.. math::

    \gamma_{j,r} \leftarrow \gamma_{j,r} - \frac{\eta j}{nm} \sum_i \ell'_i\,
        \sigma'(\langle w_{j,r} \odot m_{j,r}, y_i\mu\rangle)\, \|\mu \odot m_{j,r}\|^2, \qquad
    \rho_{j,r,i} \leftarrow \rho_{j,r,i} - \frac{\eta j y_i}{nm}\, \ell'_i\,
        \sigma'(\langle w_{j,r} \odot m_{j,r}, \xi_i\rangle)\, \|\xi_i \odot m_{j,r}\|^2 .

:func:`reference_step` is that step, line by line; :mod:`prunebook.engines.coefficients` is the
same computation arranged for speed (tested equal).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from prunebook.activation import activation, activation_derivative
from prunebook.conventions import class_signs

__all__ = ["Inner", "inner_products", "reference_step", "reference_run"]


class Inner(NamedTuple):
    """What one network needs, for the basis v = (mu ⊙ m, xi_1 ⊙ m, ..., xi_n ⊙ m) of each neuron."""

    h0: torch.Tensor  #: <w0 ⊙ m, v_a>, [2, m, n + 1]
    K: torch.Tensor  #: Gram matrices <v_a, v_b>, [2, m, n + 1, n + 1]


def inner_products(W0: torch.Tensor, M: torch.Tensor, mu: torch.Tensor, xi: torch.Tensor) -> Inner:
    """h0 and K for one network: W0, M [2, m, d], mu [d], xi [n, d]."""
    V = torch.cat([mu[None], xi])  # [n + 1, d]
    M = M.to(W0.dtype)
    return Inner(h0=torch.einsum("jrk,ak->jra", W0 * M, V), K=torch.einsum("jrk,ak,bk->jrab", M, V, V))


def reference_step(gamma, rho, inner: Inner, y, *, q: float, lr: float):
    """One GD step of one network in (gamma [2, m], rho [2, m, n]) coordinates; returns the new pair."""
    n, m = y.shape[0], gamma.shape[1]
    j = class_signs(gamma)[:, None]  # [2, 1]
    sqnorm = torch.diagonal(inner.K, dim1=-2, dim2=-1)  # ||v_a||^2, [2, m, n + 1]
    coef = torch.cat([gamma[..., None], rho], dim=-1)
    c = torch.where(sqnorm > 0, coef / sqnorm.where(sqnorm > 0, 1), 0)  # weight of v_a itself
    h = inner.h0 + (c[..., None, :] @ inner.K)[..., 0, :]  # <w_t ⊙ m, v_a>, [2, m, n + 1]
    on_signal = y[:, None, None] * h[..., 0]  # <w ⊙ m, y_i mu>, [n, 2, m]
    on_noise = h[..., 1:].permute(2, 0, 1)  # <w ⊙ m, xi_i>, [n, 2, m]
    F = (activation(on_signal, q) + activation(on_noise, q)).sum(-1) / m  # F_j(x_i), [n, 2]
    f = F[:, 0] - F[:, 1]
    dloss = -torch.sigmoid(-y * f)  # l'_i, [n]
    rate = lr * j / (n * m)
    gamma_new = gamma - rate * (dloss[:, None, None] * activation_derivative(on_signal, q)).sum(0) * sqnorm[..., 0]
    rho_new = rho - rate[..., None] * (y * dloss) * activation_derivative(on_noise, q).permute(1, 2, 0) * sqnorm[..., 1:]
    return gamma_new, rho_new


def reference_run(W0, M, mu, xi, y, *, q: float, lr: float, steps: int):
    """``steps`` reference steps from gamma = rho = 0; returns the final (gamma, rho)."""
    inner = inner_products(W0, M, mu, xi)
    gamma = W0.new_zeros(W0.shape[:2])
    rho = W0.new_zeros(*W0.shape[:2], y.shape[0])
    for _ in range(steps):
        gamma, rho = reference_step(gamma, rho, inner, y.to(W0.dtype), q=q, lr=lr)
    return gamma, rho
