"""The named internal API that several modules share: pre-activations, output, loss, conventions, seeds."""

import math

import numpy as np
import pytest
import torch

import prunebook as pb
from prunebook import conventions, network, seeds
from prunebook.activation import activation, activation_derivative, relu_power

from conftest import small_problem


def test_preactivations_and_output_match_the_definition():
    W0, M, ds = small_problem(n=5, d=9, m=3, p=0.4)
    Weff = W0 * M
    Z = network.preactivations(Weff, ds.X)
    assert Z.shape == (5, 2, 2, 3)
    torch.testing.assert_close(Z, torch.einsum("jrk,npk->npjr", Weff, ds.X), rtol=1e-14, atol=1e-14)
    f = network.output_from_preactivations(Z, 3)
    want = (Z.clamp(min=0) ** 3 * torch.tensor([1.0, -1.0], dtype=Z.dtype)[:, None]).sum(dim=(1, 2, 3)) / 3
    torch.testing.assert_close(f, want, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(f, pb.forward(W0, M, ds.X, 3))


def test_mean_logistic_loss_is_exact_for_any_margin():
    margins = torch.tensor([[-800.0, -30.0, 0.0, 30.0, 800.0]], dtype=torch.float64)
    want = [800.0, 30.0 + math.log1p(math.exp(-30)), math.log(2), math.log1p(math.exp(-30)), 0.0]
    torch.testing.assert_close(network.logistic(margins)[0], torch.tensor(want, dtype=torch.float64), rtol=1e-15, atol=0)
    assert network.mean_logistic_loss(margins).shape == (1,)
    assert float(network.mean_logistic_loss(margins)) == pytest.approx(sum(want) / 5, rel=1e-15)


def test_validate_inputs_names_the_argument_and_returns_the_batch_shape():
    W0, M, ds = small_problem()
    bs, q = network.validate_inputs(W0.expand(4, *W0.shape), M, ds.X, ds.y, 3)
    assert bs == (4,) and q == 3.0
    with pytest.raises(ValueError, match="^y:"):
        network.validate_inputs(W0, M, ds.X, ds.y * 2, 3)
    with pytest.raises(ValueError, match="^q:"):
        network.validate_inputs(W0, M, ds.X, None, 0.5)


def test_class_signs_and_error_from_margins():
    like = torch.zeros(3, dtype=torch.float32)
    s = conventions.class_signs(like)
    assert s.tolist() == [1.0, -1.0] and s.dtype == torch.float32
    assert conventions.CLASS_SIGNS == (1.0, -1.0)
    m = torch.tensor([[1.0, 0.0, -1.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
    assert conventions.error_from_margins(m).tolist() == [0.5, 0.0]  # a tie (margin 0) is an error


@pytest.mark.parametrize("q", [1, 2, 2.5, 3, 4])
def test_activation_and_derivative_against_autograd(q):
    z = torch.linspace(-2, 2, 41, dtype=torch.float64)
    z = z[z != 0].requires_grad_(True)
    (g,) = torch.autograd.grad(activation(z, q).sum(), z)
    torch.testing.assert_close(activation_derivative(z.detach(), q), g, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(activation(z.detach(), q), z.detach().clamp(min=0) ** q, rtol=1e-12, atol=0)
    r, rq1 = relu_power(torch.tensor([0.0, -1.0, 2.0], dtype=torch.float64), q)
    assert r.tolist() == [0.0, 0.0, 2.0] and rq1[0] == 0 and rq1[1] == 0  # sigma'(0) = 0 for every q, ReLU included


def test_stream_seeds_are_distinct_and_streams_independent():
    streams = [s for s in seeds.STREAMS]
    values = {seeds.stream_seed(s, st, k) for s in range(50) for st in streams for k in range(3)}
    assert len(values) == 50 * len(streams) * 3, "no two (seed, stream, index) share a seed"
    # draws of two streams of the same seed are uncorrelated
    a = torch.randn(20000, generator=seeds.generator(seeds.stream_seed(3, "data")), dtype=torch.float64)
    b = torch.randn(20000, generator=seeds.generator(seeds.stream_seed(3, "init")), dtype=torch.float64)
    assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 4 / math.sqrt(20000)
    with pytest.raises(ValueError, match="^stream:"):
        seeds.stream_seed(0, "dat")
    with pytest.raises(ValueError, match="^seed:"):
        seeds.stream_seed(-1, "data")


def test_network_seeds_blocks_never_overlap():
    a = seeds.network_seeds(0, 10)
    b = seeds.network_seeds(0, 10, start=100)
    c = seeds.network_seeds(1, 10)
    assert a == list(range(10)) and not set(a) & set(b) and not set(a) & set(c)
    with pytest.raises(ValueError, match="^count:"):
        seeds.network_seeds(0, seeds.SEED_BLOCK + 1)


def test_masks_are_nested_across_p():
    """The same seed thresholds the same uniforms: a weight kept at p is kept at every smaller p."""
    ps = [0.0, 0.3, 0.7, 0.9, 0.99]
    masks = [pb.random_mask((2, 5, 300), p, seed=seeds.stream_seed(4, "mask")) for p in ps]
    for small_p, big_p in zip(masks, masks[1:]):
        assert bool((big_p <= small_p).all())
    kept = [float(M.mean()) for M in masks]
    np.testing.assert_allclose(kept, [1 - p for p in ps], atol=0.02)
    from prunebook.experiment import Setting, build

    s = Setting(d=200, n=5, m=4)
    W_a, M_a, d_a = build(s, 0.5, 7)
    W_b, M_b, d_b = build(s, 0.9, 7)
    assert torch.equal(W_a, W_b) and torch.equal(d_a.X, d_b.X) and bool((M_b <= M_a).all())
