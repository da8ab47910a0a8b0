"""Pruning criteria: each score against an independent float64 computation; masks keep exact counts."""

import math

import numpy as np

import pytest
import torch

import prunebook as pb
from prunebook import criteria as cr

from conftest import small_problem


@pytest.fixture
def prob():
    W0, _, ds = small_problem(n=8, d=15, m=4, sigma_0=0.7)
    return W0, ds


def test_snip_equals_closed_form_gradient_times_weight(prob):
    W0, ds = prob
    ones = torch.ones_like(W0)
    g = pb.gradient(W0, ones, ds.X, ds.y, 3)  # closed form, mean loss, float64
    torch.testing.assert_close(cr.snip_scores(W0, ds.X, ds.y, 3), (g * W0).abs(), rtol=1e-10, atol=1e-12)


def test_grasp_hessian_gradient_product_matches_finite_differences(prob):
    W0, ds = prob
    ones = torch.ones_like(W0)

    def grad(W):  # closed form, mean loss, float64
        return pb.gradient(W, ones, ds.X, ds.y, 3)

    g = grad(W0)
    u, norm = g / g.norm(), g.norm()  # central difference along the unit direction of g
    eps = 1e-5
    Hg = (grad(W0 + eps * u) - grad(W0 - eps * u)) / (2 * eps) * norm
    torch.testing.assert_close(cr.grasp_scores(W0, ds.X, ds.y, 3), -(Hg * W0), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("q", [1.0, 2.0, 3.0])
def test_synflow_closed_form_and_conservation(prob, q):
    W0, _ = prob
    M = pb.random_mask(W0.shape, 0.4, seed=3, dtype=torch.float64)
    scores = cr.synflow_scores(W0, M, q, patches=2)
    m = W0.shape[-2]
    s = (W0.abs() * M).sum(-1, keepdim=True)  # all-ones input: each neuron's pre-activation
    expected = 2 * q / m * (W0.abs() * M) * s ** (q - 1)
    torch.testing.assert_close(scores, expected, rtol=1e-10, atol=1e-12)
    # conservation: R is homogeneous of degree q in the first layer, so the scores sum to q R
    R = cr._synflow_R(W0.abs() * M, 2, q)
    assert float(scores.sum()) == pytest.approx(q * float(R), rel=1e-10)
    # and per neuron: the scores of a neuron's incoming weights sum to q times its share of R
    per_neuron = scores.sum(-1)
    torch.testing.assert_close(per_neuron, q * 2 * s[..., 0] ** q / m, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("per", ["neuron", "global"])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.9, 0.99])
@pytest.mark.parametrize("name", cr.CRITERIA)
def test_masks_keep_exact_counts(prob, name, p, per):
    W0, ds = prob
    M = cr.criterion_mask(name, W0, p, X=ds.X, y=ds.y, q=3, per=per, rounds=10, seed=1)
    assert set(M.unique().tolist()) <= {0.0, 1.0}
    d, m = W0.shape[-1], W0.shape[-2]
    if per == "neuron":
        assert bool((M.sum(-1) == round((1 - p) * d)).all())
    else:
        assert int(M.sum()) == round((1 - p) * 2 * m * d)


def test_mask_from_scores_keeps_the_best_and_breaks_ties_by_position():
    scores = torch.tensor([[[1.0, 5.0, 3.0, 5.0]]]).expand(2, 1, 4).clone()
    M = cr.mask_from_scores(scores, 0.5)
    assert M[0, 0].tolist() == [0.0, 1.0, 0.0, 1.0]
    ties = cr.mask_from_scores(torch.ones(2, 1, 4), 0.5)
    assert ties[0, 0].tolist() == [1.0, 1.0, 0.0, 0.0]


def test_synflow_per_neuron_ranks_like_magnitude(prob):
    """Within a neuron SynFlow's score is |w| times a neuron constant: per-neuron masks coincide."""
    W0, _ = prob
    for p in (0.3, 0.8):
        assert torch.equal(cr.criterion_mask("synflow", W0, p, rounds=20), cr.criterion_mask("magnitude", W0, p))


@pytest.mark.parametrize("p", [1.0, -0.1, math.nan, 2])
def test_bad_sparsity_rejected(prob, p):
    W0, ds = prob
    with pytest.raises(ValueError, match="^p:"):
        cr.mask_from_scores(W0.abs(), p)
    with pytest.raises(ValueError, match="^p:"):
        cr.criterion_mask("magnitude", W0, p)


def test_bad_criterion_arguments(prob):
    W0, ds = prob
    with pytest.raises(ValueError, match="^name:"):
        cr.criterion_mask("lottery", W0, 0.5)
    with pytest.raises(ValueError, match="^X:"):
        cr.criterion_mask("snip", W0, 0.5)
    with pytest.raises(ValueError, match="^seed:"):
        cr.criterion_mask("random", W0, 0.5)
    with pytest.raises(ValueError, match="^per:"):
        cr.mask_from_scores(W0.abs(), 0.5, per="layer")
    with pytest.raises(ValueError, match="^scores:"):
        cr.mask_from_scores(W0.abs() * math.nan, 0.5)


# ---- scores once per network, masks on a grid, GraSP against its definition ----

from prunebook.experiment import Setting, build_batch, grid  # noqa: E402


@pytest.fixture
def batch():
    s = Setting(d=40, n=8, m=3, steps=5)
    seeds = [3, 7, 11]
    W0, _, data = build_batch(s, [0.0] * 3, seeds, dtype=torch.float64)
    return W0, data, seeds


@pytest.mark.parametrize("name", ["random", "magnitude", "snip", "grasp"])
def test_scores_once_give_the_masks_of_batch_masks(batch, name):
    W0, data, seeds = batch
    ps = [0.5, 0.9]
    gp, gs = grid(ps, seeds)
    reps = [seeds.index(s) for s in gs]
    expected = cr.batch_masks(name, W0[reps], data.X[reps], data.y[reps], gp, gs, q=3)
    scores = cr.criterion_scores(name, W0, X=data.X, y=data.y, q=3, seeds=seeds)
    assert scores.shape == W0.shape
    assert torch.equal(cr.grid_masks(scores, ps), expected)


def test_grid_masks_are_nested_and_p_major(batch):
    W0, _, _ = batch
    masks = cr.grid_masks(W0.abs(), [0.3, 0.6, 0.9]).reshape(3, *W0.shape)
    assert bool((masks[1] <= masks[0]).all()) and bool((masks[2] <= masks[1]).all())
    assert masks[2].sum(-1).eq(4).all() and masks[0].sum(-1).eq(28).all()
    with pytest.raises(ValueError, match="^ps:"):
        cr.grid_masks(W0.abs(), [])


def test_criterion_scores_rejects_bad_requests(batch):
    W0, data, seeds = batch
    with pytest.raises(ValueError, match="^name:"):
        cr.criterion_scores("synflow", W0)
    with pytest.raises(ValueError, match="^name:"):
        cr.criterion_scores("lottery", W0)
    with pytest.raises(ValueError, match="^seeds:"):
        cr.criterion_scores("random", W0, seeds=seeds[:2])
    with pytest.raises(ValueError, match="^X:"):
        cr.criterion_scores("snip", W0)
    with pytest.raises(ValueError, match="^X:"):
        cr.criterion_scores("grasp", W0, X=data.X[:2], y=data.y[:2])


@pytest.mark.parametrize("index", [0, 3, -1])
def test_coordinate_kept_equals_the_masks(batch, index):
    W0, data, seeds = batch
    ps = [0.0, 0.3, 0.5, 0.9, 0.975]
    for name in ("random", "magnitude", "snip", "grasp"):
        scores = cr.criterion_scores(name, W0, X=data.X, y=data.y, seeds=seeds)
        kept = cr.coordinate_kept(scores, ps, index=index)
        assert kept.shape == (len(ps), *W0.shape[:-1])
        for k, p in enumerate(ps):
            assert torch.equal(kept[k], cr.mask_from_scores(scores, p)[..., index] > 0), (name, p)
    ties = torch.ones(2, 1, 4)  # all equal: the lowest positions are kept first
    assert cr.coordinate_kept(ties, [0.5], index=1).all() and not cr.coordinate_kept(ties, [0.5], index=2).any()
    with pytest.raises(ValueError, match="^index:"):
        cr.coordinate_kept(ties, [0.5], index=4)
    with pytest.raises(ValueError, match="^p:"):
        cr.coordinate_kept(ties, [1.0])


def test_grasp_masks_raise_the_gradient_norm_at_initialization(batch):
    """GraSP's definition: remove the weights whose removal reduces the gradient norm least. Its
    masks must start training with a larger gradient than random masks of the same budget, and
    the opposite rule (keep the highest S) with a smaller one; a flipped sign fails here."""
    from prunebook.network import loss_and_gradient

    W0, data, seeds = batch
    W0, X, y = W0.double(), data.X.double(), data.y.double()

    def grad_sq(scores, p):
        M = cr.mask_from_scores(scores, p)
        return loss_and_gradient(W0, M, X, y, 3.0)[1].pow(2).sum((-3, -2, -1))

    S = cr.grasp_scores(W0, X, y, 3)
    random_scores = cr.criterion_scores("random", W0, seeds=seeds).double()
    for p in (0.3, 0.6):
        grasp_mask = cr.criterion_mask("grasp", W0[0], p, X=X[0], y=y[0])
        assert torch.equal(grasp_mask, cr.mask_from_scores(-S[0], p))
        assert bool((grad_sq(-S, p) > grad_sq(random_scores, p)).all()), p
        assert bool((grad_sq(S, p) < grad_sq(random_scores, p)).all()), p
        assert grasp_mask.sum() == round((1 - p) * W0.shape[-1]) * W0.shape[-2] * 2
