r"""The masked two-layer network of the book (chapter 2 of the book defines it).

.. math::

    f(W, x) = F_{+1}(x) - F_{-1}(x), \qquad
    F_j(x) = \frac1m \sum_{r=1}^m \sum_{p} \sigma(\langle w_{j,r} \odot m_{j,r}, x^{(p)} \rangle),
    \qquad \sigma(z) = \max(z, 0)^q .

Shapes: ``W`` and ``M`` are ``[..., 2, m, d]`` (index 0 of the class axis is class +1),
``X`` is ``[..., n, P, d]`` (``P`` patches; the data model uses ``P = 2``), ``y`` is ``[..., n]``.
Leading batch dimensions broadcast, so one call evaluates many networks, each on its own data.
"""

from __future__ import annotations

import torch

from prunebook._checks import (
    check_binary,
    check_device,
    check_finite,
    check_labels,
    check_positive,
    check_positive_int,
    check_q,
    check_tensor,
)
from prunebook.activation import activation, relu_power
from prunebook.conventions import class_signs, error_from_margins
from prunebook.seeds import resolve_generator

__all__ = [
    "batch_shape",
    "validate_inputs",
    "preactivations",
    "output_from_preactivations",
    "logistic",
    "mean_logistic_loss",
    "forward",
    "gradient",
    "loss",
    "classification_error",
    "loss_and_gradient",
    "loss_and_unmasked_gradient",
    "init_weights",
]

def batch_shape(W: torch.Tensor, M: torch.Tensor, X: torch.Tensor, y: torch.Tensor | None = None) -> torch.Size:
    """Validate shapes of a (W, M, X[, y]) quadruple and return the broadcast batch shape."""
    check_tensor("W", W, ndim_min=3)
    check_tensor("M", M, ndim_min=3)
    check_tensor("X", X, ndim_min=3)
    if not W.is_floating_point():
        raise TypeError(f"W: expected a floating-point tensor, got {W.dtype}")
    if not X.is_floating_point():
        raise TypeError(f"X: expected a floating-point tensor, got {X.dtype}")
    if X.dtype != W.dtype:
        raise TypeError(f"X: dtype {X.dtype} differs from W's {W.dtype}; cast one of them explicitly")
    if W.shape[-3] != 2:
        raise ValueError(f"W: the class axis (third from last) must have size 2, got shape {tuple(W.shape)}")
    if M.shape[-3:] != W.shape[-3:]:
        raise ValueError(f"M: last three dimensions {tuple(M.shape[-3:])} must equal W's {tuple(W.shape[-3:])}")
    d = W.shape[-1]
    if X.shape[-1] != d:
        raise ValueError(f"X: last dimension {X.shape[-1]} must equal the input dimension d = {d} of W")
    if W.shape[-2] < 1 or d < 1 or X.shape[-3] < 1 or X.shape[-2] < 1:
        raise ValueError("W: m, d, n and the number of patches must all be at least 1")
    for name, t in (("M", M), ("X", X)):
        if t.device != W.device:
            raise ValueError(f"{name}: on device {t.device} but W is on {W.device}")
    shapes = [W.shape[:-3], M.shape[:-3], X.shape[:-3]]
    if y is not None:
        check_tensor("y", y, ndim_min=1)
        if y.shape[-1] != X.shape[-3]:
            raise ValueError(f"y: last dimension {y.shape[-1]} must equal the number of samples n = {X.shape[-3]} in X")
        if y.device != W.device:
            raise ValueError(f"y: on device {y.device} but W is on {W.device}")
        shapes.append(y.shape[:-1])
    try:
        return torch.broadcast_shapes(*shapes)
    except RuntimeError as exc:
        raise ValueError(f"X: leading (batch) dimensions of W, M, X and y do not broadcast: {shapes}") from exc


def validate_inputs(W, M, X, y, q) -> tuple[torch.Size, float]:
    """Check (W, M, X, y, q) as every public function of the network does; (batch shape, q as float).

    ``y`` may be None. Raises before any work: shapes, dtypes, devices, a binary mask, finite
    weights and inputs, labels in {-1, +1}, q >= 1.
    """
    bs = batch_shape(W, M, X, y)
    q = check_q(q)
    check_binary("M", M)
    check_finite("W", W)
    check_finite("X", X)
    if y is not None:
        check_labels("y", y)
    return bs, q


def preactivations(Weff: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """<w_{j,r} ⊙ m_{j,r}, x_i^(p)> as [..., n, P, 2, m] (one batched matmul)."""
    n, P, d = X.shape[-3:]
    m = Weff.shape[-2]
    Z = X.reshape(*X.shape[:-3], n * P, d) @ Weff.reshape(*Weff.shape[:-3], 2 * m, d).mT
    return Z.reshape(*Z.shape[:-2], n, P, 2, m)


def output_from_preactivations(Z: torch.Tensor, q: float) -> torch.Tensor:
    """f = F_{+1} - F_{-1} from pre-activations Z [..., n, P, 2, m], shape [..., n]."""
    m = Z.shape[-1]
    Fj = activation(Z, q).sum(dim=(-3, -1)) / m  # [..., n, 2]
    return Fj[..., 0] - Fj[..., 1]


def forward(W: torch.Tensor, M: torch.Tensor, X: torch.Tensor, q: float = 3) -> torch.Tensor:
    """Network output f(W ⊙ M, x_i) for every sample, shape ``[..., n]``."""
    validate_inputs(W, M, X, None, q)
    return output_from_preactivations(preactivations(W * M.to(W.dtype), X), float(q))


def logistic(margins: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(-margin)) per sample, exact and overflow-free for any margin.

    (``torch.nn.functional.softplus`` switches to the identity past ``threshold=20``, a relative
    error of about 2e-9; ``logaddexp`` has none.)
    """
    return torch.logaddexp(torch.zeros((), dtype=margins.dtype, device=margins.device), -margins)


def mean_logistic_loss(margins: torch.Tensor) -> torch.Tensor:
    """Mean over samples (the last axis) of log(1 + exp(-margin))."""
    return logistic(margins).mean(dim=-1)


def loss(W: torch.Tensor, M: torch.Tensor, X: torch.Tensor, y: torch.Tensor, q: float = 3) -> torch.Tensor:
    """Mean logistic loss (1/n) sum_i log(1 + exp(-y_i f(W, x_i))), shape ``[...]``."""
    validate_inputs(W, M, X, y, q)
    f = output_from_preactivations(preactivations(W * M.to(W.dtype), X), float(q))
    return mean_logistic_loss(y.to(f.dtype) * f)


def classification_error(
    W: torch.Tensor, M: torch.Tensor, X: torch.Tensor, y: torch.Tensor, q: float = 3
) -> torch.Tensor:
    """Fraction of samples with y_i f(x_i) <= 0 (a tie counts as an error), shape ``[...]``."""
    validate_inputs(W, M, X, y, q)
    f = output_from_preactivations(preactivations(W * M.to(W.dtype), X), float(q))
    return error_from_margins(y.to(f.dtype) * f)


def loss_and_gradient(
    W: torch.Tensor, M: torch.Tensor, X: torch.Tensor, y: torch.Tensor, q: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unchecked fast path used by training: (loss [...], dL/dW [..., 2, m, d], margins [..., n]).

    ``M`` must already have W's dtype. The gradient of the mean logistic loss is

    .. math::

        \\frac{\\partial L}{\\partial w_{j,r}} = \\frac{s_j}{m} \\sum_i \\ell'_i
        \\sum_p \\sigma'(\\langle w_{j,r} \\odot m_{j,r}, x_i^{(p)} \\rangle)\\, x_i^{(p)} \\odot m_{j,r},
        \\qquad \\ell'_i = -\\frac{y_i}{n}\\,\\mathrm{sigmoid}(-y_i f_i),

    with s_{+1} = 1, s_{-1} = -1.
    """
    loss_t, G, margins = loss_and_unmasked_gradient(W * M, X, y, q)
    return loss_t, G * M, margins


def loss_and_unmasked_gradient(
    Weff: torch.Tensor, X: torch.Tensor, y: torch.Tensor, q: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unchecked: (loss, dL/dW before masking, margins) at the masked weights ``Weff`` = W ⊙ M.

    The gradient with respect to W is this times M (pruned weights get none); the weights engine
    applies the mask in its update, in one pass.
    """
    n, P, d = X.shape[-3:]
    m = Weff.shape[-2]
    Z = preactivations(Weff, X)  # [..., n, P, 2, m]
    r, rq1 = relu_power(Z, q)
    sigma = r if q == 1 else r * rq1
    F = sigma.sum(dim=(-3, -1)) / m  # [..., n, 2]
    f = F[..., 0] - F[..., 1]
    y_float = y.to(f.dtype)
    margins = y_float * f
    dL_df = -y_float * torch.sigmoid(-margins) / n  # [..., n]
    scale = (1.0 if q == 1 else q) / m
    coef = rq1 * (dL_df[..., :, None, None, None] * (class_signs(Weff)[:, None] * scale))
    G = coef.reshape(*coef.shape[:-4], n * P, 2 * m).mT @ X.reshape(*X.shape[:-3], n * P, d)
    return mean_logistic_loss(margins), G.reshape(*G.shape[:-2], 2, m, d), margins


def gradient(W: torch.Tensor, M: torch.Tensor, X: torch.Tensor, y: torch.Tensor, q: float = 3) -> torch.Tensor:
    """Closed-form gradient dL/dW of the mean logistic loss, shape ``[batch..., 2, m, d]``.

    Pruned entries (M = 0) get exactly zero gradient. Equal to autograd's gradient
    (tested in float64 to relative 1e-10).
    """
    bs, q = validate_inputs(W, M, X, y, q)
    _, G, _ = loss_and_gradient(W, M.to(W.dtype), X, y, q)
    return G.expand(*bs, *W.shape[-3:])


def init_weights(
    m: int,
    d: int,
    sigma_0: float,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Initial weights W0 of shape [2, m, d] with i.i.d. N(0, sigma_0^2) entries (drawn in float64)."""
    m = check_positive_int("m", m)
    d = check_positive_int("d", d)
    sigma_0 = check_positive("sigma_0", sigma_0)
    device = check_device("device", device)
    g = resolve_generator(generator, seed)
    W = torch.randn(2, m, d, generator=g, dtype=torch.float64) * sigma_0
    return W.to(dtype=dtype, device=device)
