"""Pruning-at-initialization criteria for the book's network, and masks from scores.

Scores for the first-layer weights W [..., 2, m, d] at initialization:

- magnitude: |w| (keep the highest);
- SNIP (Lee et al., 2019): |g ⊙ w|, g the gradient of the training loss of the *dense* network
  (keep the highest);
- GraSP (Wang et al., 2020): S = -(H g) ⊙ w, H the Hessian of the loss (Hessian-gradient product by
  double backprop). Removing weight k changes the squared gradient norm by about 2 S_k to first
  order, so removing the highest S removes the weights whose removal reduces the gradient norm
  least (raises it most): GraSP's rule, and the authors' implementation. The mask keeps the lowest
  S (tested: GraSP's masks start training with a larger gradient than random masks);
- SynFlow (Tanaka et al., 2020): |w ⊙ dR/dw| with R the output of the network with every weight
  (the fixed second layer included) replaced by its absolute value, on an all-ones input; data-free
  and iterative, pruning to the target in ``rounds`` steps on an exponential schedule (keep the
  highest).

Masks keep an exact count: ``round((1 - p) * d)`` weights per neuron (``per="neuron"``, the
default: the same budget as random pruning gives each neuron in expectation) or
``round((1 - p) * 2 m d)`` in the whole layer (``per="global"``).

For comparisons on many seeds: :func:`criterion_scores` computes a one-shot criterion's scores
once per network, :func:`grid_masks` turns them into the masks of a (p, seed) grid, and
:func:`coordinate_kept` says which neurons keep a coordinate (the signal) at every p without
building the masks. (Chapter 5's paired tests of criteria live in ``prunebook.book.criteria_study``.)
"""

from __future__ import annotations

import torch

from prunebook._checks import check_fraction, check_positive_int, check_q, check_tensor
from prunebook.activation import activation
from prunebook.network import mean_logistic_loss, output_from_preactivations, preactivations
from prunebook.seeds import generator, stream_seed

__all__ = [
    "CRITERIA", "magnitude_scores", "snip_scores", "grasp_scores", "synflow_scores", "mask_from_scores", "criterion_mask",
    "batch_masks", "criterion_scores", "grid_masks", "coordinate_kept",
]

CRITERIA = ("random", "magnitude", "snip", "grasp", "synflow")


def _summed_loss(W, X, y, q):
    """The training loss of the unpruned network (summed over a batch of networks), for autograd."""
    return mean_logistic_loss(y.to(W.dtype) * output_from_preactivations(preactivations(W, X), q)).sum()


def magnitude_scores(W: torch.Tensor) -> torch.Tensor:
    check_tensor("W", W, ndim_min=3)
    return W.abs()


def snip_scores(W: torch.Tensor, X: torch.Tensor, y: torch.Tensor, q: float = 3) -> torch.Tensor:
    """|g ⊙ w| with g = dL/dW of the dense network on (X, y)."""
    q = check_q(q)
    Wg = W.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_summed_loss(Wg, X, y, q), Wg)
    return (g * W).abs()


def grasp_scores(W: torch.Tensor, X: torch.Tensor, y: torch.Tensor, q: float = 3) -> torch.Tensor:
    """-(H g) ⊙ w, with H g computed by differentiating g · stop_gradient(g)."""
    q = check_q(q)
    Wg = W.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_summed_loss(Wg, X, y, q), Wg, create_graph=True)
    (Hg,) = torch.autograd.grad((g * g.detach()).sum(), Wg)
    return -(Hg * W)


def _synflow_R(W_abs_masked: torch.Tensor, patches: int, q: float) -> torch.Tensor:
    ones = torch.ones(*W_abs_masked.shape[:-3], 1, patches, W_abs_masked.shape[-1], dtype=W_abs_masked.dtype,
                      device=W_abs_masked.device)
    Z = preactivations(W_abs_masked, ones)  # [..., 1, P, 2, m], all >= 0
    m = Z.shape[-1]
    return activation(Z, q).sum(dim=(-4, -3, -2, -1)) / m  # |second layer| = 1/m for both classes


def synflow_scores(W: torch.Tensor, M: torch.Tensor | None = None, q: float = 3, patches: int = 2) -> torch.Tensor:
    """One round of SynFlow scores |w ⊙ dR/dw| under mask M (all ones if None)."""
    q = check_q(q)
    Mf = torch.ones_like(W) if M is None else M.to(W.dtype)
    Wa = (W.abs() * Mf).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(_synflow_R(Wa, patches, q).sum(), Wa)
    return (g * Wa).detach()


def mask_from_scores(scores: torch.Tensor, p: float, *, per: str = "neuron") -> torch.Tensor:
    """Binary mask keeping exactly round((1 - p) * count) highest-scoring weights per neuron or globally.

    Ties are broken by position (a stable sort), so equal scores give a deterministic mask.
    """
    check_tensor("scores", scores, ndim_min=3)
    p = check_fraction("p", p)
    if per not in ("neuron", "global"):
        raise ValueError(f"per: must be 'neuron' or 'global', got {per!r}")
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("scores: contain NaN or infinite entries")
    flat = scores.flatten(-3) if per == "global" else scores
    n_keep = round((1 - p) * flat.shape[-1])
    order = torch.sort(flat, dim=-1, descending=True, stable=True).indices
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep.scatter_(-1, order[..., :n_keep], True)
    return keep.reshape(scores.shape).to(scores.dtype)


def criterion_mask(
    name: str, W0: torch.Tensor, p: float, *, X=None, y=None, q: float = 3, per: str = "neuron",
    rounds: int = 100, seed: int | None = None,
) -> torch.Tensor:
    """The mask of criterion ``name`` (one of CRITERIA) at pruning fraction p.

    "random" draws exact-count random scores from ``seed``; SNIP and GraSP need the data (X, y);
    SynFlow prunes iteratively: round k keeps the fraction (1 - p)^(k / rounds).
    """
    if name not in CRITERIA:
        raise ValueError(f"name: must be one of {CRITERIA}, got {name!r}")
    p = check_fraction("p", p)
    if name in ("snip", "grasp") and (X is None or y is None):
        raise ValueError(f"X: the {name} criterion needs the training data (X, y)")
    if name == "random":
        if seed is None:
            raise ValueError("seed: random pruning needs a seed")
        g = generator(seed)
        return mask_from_scores(torch.rand(W0.shape, generator=g, dtype=torch.float64).to(W0.dtype), p, per=per)
    if name == "magnitude":
        return mask_from_scores(magnitude_scores(W0), p, per=per)
    if name == "snip":
        return mask_from_scores(snip_scores(W0, X, y, q), p, per=per)
    if name == "grasp":
        return mask_from_scores(-grasp_scores(W0, X, y, q), p, per=per)  # GraSP keeps the lowest S
    rounds = check_positive_int("rounds", rounds)
    M = torch.ones_like(W0)
    for k in range(1, rounds + 1):
        frac = (1 - p) ** (k / rounds)
        scores = synflow_scores(W0, M, q)
        scores = torch.where(M > 0, scores, torch.full_like(scores, -1.0))  # pruned weights stay pruned
        M = mask_from_scores(scores, 1 - frac, per=per)
    return M


def batch_masks(
    name: str, W0: torch.Tensor, X: torch.Tensor, y: torch.Tensor, ps, seeds, *, q: float = 3,
    per: str = "neuron", rounds: int = 100,
) -> torch.Tensor:
    """Masks of criterion ``name`` for a batch of networks: W0 [B, 2, m, d], X [B, n, P, d], y [B, n].

    Network b is pruned to ``ps[b]``; "random" draws its scores from ``seeds[b]``'s mask stream.
    """
    if not (len(ps) == len(seeds) == W0.shape[0] == X.shape[0] == y.shape[0]):
        raise ValueError("ps: need one pruning fraction and one seed per network in the batch")
    return torch.stack([
        criterion_mask(name, W0[b], ps[b], X=X[b], y=y[b], q=q, per=per, rounds=rounds,
                       seed=stream_seed(int(seeds[b]), "mask"))
        for b in range(len(ps))
    ])


# ---- scores computed once per network, masks on a grid, and paired comparisons of criteria ----


def criterion_scores(name: str, W0: torch.Tensor, *, X=None, y=None, q: float = 3, seeds=None) -> torch.Tensor:
    """Scores [B, 2, m, d] whose highest entries the one-shot criterion ``name`` keeps, for B networks.

    The scores do not depend on p, so ``mask_from_scores(scores, p)`` gives the criterion's mask at
    every p from one computation (equal to :func:`batch_masks`). "random" draws each network's
    scores from its seed's mask stream (``seeds``, one per network); SNIP and GraSP use the data
    (X [B, n, P, d], y [B, n]); GraSP's scores are negated, since it keeps the lowest S. SynFlow is
    iterative (its mask at p is not a threshold of one score): use :func:`criterion_mask`.
    """
    if name not in CRITERIA:
        raise ValueError(f"name: must be one of {CRITERIA}, got {name!r}")
    if name == "synflow":
        raise ValueError("name: SynFlow prunes iteratively, so it has no single score; use criterion_mask")
    check_tensor("W0", W0, ndim=4)
    if name == "random":
        if seeds is None or len(seeds) != W0.shape[0]:
            raise ValueError("seeds: random pruning needs one seed per network")
        return torch.stack([torch.rand(W0.shape[1:], generator=generator(stream_seed(int(s), "mask")),
                                       dtype=torch.float64).to(W0.dtype) for s in seeds])
    if name == "magnitude":
        return magnitude_scores(W0)
    if X is None or y is None:
        raise ValueError(f"X: the {name} criterion needs the training data (X, y)")
    if X.shape[0] != W0.shape[0] or y.shape[0] != W0.shape[0]:
        raise ValueError("X: need the training data of every network, [B, n, P, d] and [B, n]")
    return snip_scores(W0, X, y, q) if name == "snip" else -grasp_scores(W0, X, y, q)


def grid_masks(scores: torch.Tensor, ps, *, per: str = "neuron") -> torch.Tensor:
    """Masks for the networks of ``grid(ps, seeds)`` (p-major) from per-seed scores [S, 2, m, d]: [len(ps) S, 2, m, d].

    The masks of one seed are nested across p (a weight kept at p is kept at every smaller p).
    """
    ps = list(ps)
    if not ps:
        raise ValueError("ps: need at least one pruning fraction")
    return torch.cat([mask_from_scores(scores, p, per=per) for p in ps])


def coordinate_kept(scores: torch.Tensor, ps, *, index: int = 0) -> torch.Tensor:
    """Whether each neuron's mask keeps input coordinate ``index``, at every p of ``ps``: bool [len(ps), ..., 2, m].

    The same as ``mask_from_scores(scores, p)[..., index] > 0`` for each p (per-neuron budget, ties
    broken by position), from one pass over the scores instead of a sort per p: the coordinate is
    kept when fewer than round((1 - p) d) weights of its neuron rank above it. For the sparse
    signal (coordinate 0) this says which neurons keep the signal.
    """
    check_tensor("scores", scores, ndim_min=3)
    d = scores.shape[-1]
    if not -d <= index < d:
        raise ValueError(f"index: must address one of the d = {d} coordinates, got {index}")
    index %= d
    s = scores[..., index : index + 1]
    positions = torch.arange(d, device=scores.device)
    above = (scores > s) | ((scores == s) & (positions < index))  # ranked before the coordinate
    rank = above.sum(-1)
    budgets = [round((1 - check_fraction("p", p)) * d) for p in ps]
    if not budgets:
        raise ValueError("ps: need at least one pruning fraction")
    return torch.stack([rank < k for k in budgets])
