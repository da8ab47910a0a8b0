"""prunebook.book.margins: the signal and noise parts of the test margin, against d-dimensional samples."""

import pytest
import torch

from prunebook import forward, sample_data
from prunebook.evaluate import test_statistics
from prunebook.experiment import Setting, run
from prunebook.book.margins import output_parts


@pytest.fixture(scope="module")
def trained():
    return run(Setting(d=300, n=20, m=6, steps=150, mu_norm=8.0), [0.0, 0.6], [3, 3], n_test=4000)


def test_parts_match_the_margins_of_d_dimensional_samples(trained):
    parts = output_parts(trained.result.W, trained.M, trained.data.mu, q=3.0, n_test=20_000, seed=1)
    for b in range(2):
        ds = sample_data(20_000, trained.data.mu[b], sigma_p=1.0, seed=7)
        f = forward(trained.result.W[b], trained.M[b], ds.X, 3.0).double()
        pos, neg = ds.y > 0, ds.y < 0
        # the signal patch alone: s_y exactly (zero noise patch)
        X0 = ds.X.clone()
        X0[:, 1] = 0
        f0 = forward(trained.result.W[b], trained.M[b], X0, 3.0).double()
        torch.testing.assert_close(f0[pos], parts.signal_pos[b].expand(int(pos.sum())), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(f0[neg], parts.signal_neg[b].expand(int(neg.sum())), rtol=1e-5, atol=1e-6)
        noise = f - f0  # N(xi), the same law for both classes
        se = noise.std() / 20_000**0.5
        assert abs(noise.mean() - parts.noise_mean[b]) < 5 * se * 2**0.5
        assert abs(noise.std() / parts.noise_std[b] - 1) < 0.05
        margin_pos, margin_neg = f[pos], -f[neg]
        assert abs(margin_pos.mean() - (parts.signal_pos[b] + parts.noise_mean[b])) < 6 * se
        assert abs(margin_neg.mean() - (-parts.signal_neg[b] - parts.noise_mean[b])) < 6 * se


def test_z_is_the_worse_class_and_tracks_the_per_class_error():
    # a network that learned the signal (mu = 8) and one that memorized (mu = 3), same sizes
    base = Setting(d=300, n=20, m=6, steps=150)
    r = run([base.with_(mu_norm=8.0), base.with_(mu_norm=3.0)], [0.0, 0.0], [3, 2], n_test=4000)
    parts = output_parts(r.result.W, r.M, r.data.mu, q=3.0)
    torch.testing.assert_close(parts.z, torch.minimum(parts.z_pos, parts.z_neg))
    stats = test_statistics(r.result.W, r.M, r.data.mu, q=3.0, n_test=4000, seed=[5, 5])
    # far on the right side in both classes: no mistake; a class whose margin is negative: errs often
    assert parts.z[0] > 10 and stats.error_pos[0] < 0.01 and stats.error_neg[0] < 0.01
    worse = int(torch.argmin(torch.stack([parts.z_pos[1], parts.z_neg[1]])))
    assert parts.z[1] < 0 and [stats.error_pos[1], stats.error_neg[1]][worse] > 0.5


def test_bad_input_is_named(trained):
    W, M, mu = trained.result.W, trained.M, trained.data.mu
    with pytest.raises(ValueError, match="^M:"):
        output_parts(W, M[:, :, :3], mu, q=3.0)
    with pytest.raises(ValueError, match="^M:"):
        output_parts(W, M * 0.5, mu, q=3.0)
    with pytest.raises(ValueError, match="^mu:"):
        output_parts(W, M, mu[:1], q=3.0)
    with pytest.raises(ValueError, match="^n_test:"):
        output_parts(W, M, mu, q=3.0, n_test=10)
    with pytest.raises(ValueError, match="^W:"):
        output_parts(W[0], M, mu, q=3.0)


def test_init_scale_ratio_is_the_initialization_prediction():
    from prunebook.book.margins import init_scale_ratio

    assert abs(init_scale_ratio(0.0, 0.75, 3.0) - 8.0) < 1e-12  # (1 / 0.25)^(3/2)
    assert abs(init_scale_ratio(0.5, 0.5, 4.0) - 1.0) < 1e-12
    with pytest.raises(ValueError, match="p_from"):
        init_scale_ratio(0.0, 1.0, 3.0)


def test_learned_part_is_zero_untrained_and_the_whole_response_from_zero(trained):
    from prunebook.book.margins import learned_output_parts

    W, W0, M, mu = trained.result.W, trained.W0, trained.M, trained.data.mu
    same = learned_output_parts(W0, W0, M, mu, q=3.0, seed=2)
    whole0 = output_parts(W0, M, mu, q=3.0, seed=2)
    assert torch.all(same.noise_std < 1e-6 * whole0.noise_std)  # nothing learned, no learned response
    whole = output_parts(W, M, mu, q=3.0, seed=2, n_test=40_000)
    from_zero = learned_output_parts(W, torch.zeros_like(W0), M, mu, q=3.0, seed=5, n_test=40_000)
    torch.testing.assert_close(from_zero.signal_pos, whole.signal_pos)
    assert torch.all((from_zero.noise_std / whole.noise_std - 1).abs() < 0.05)
    learned = learned_output_parts(W, W0, M, mu, q=3.0, seed=2)
    assert torch.all(learned.noise_std > 0)
    with pytest.raises(ValueError, match="W0"):
        learned_output_parts(W, W0[:1], M, mu, q=3.0)


def test_wrong_side_is_the_per_class_test_error():
    from prunebook.book.margins import wrong_side

    base = Setting(d=300, n=20, m=6, steps=150)
    r = run([base.with_(mu_norm=8.0), base.with_(mu_norm=3.0)], [0.0, 0.0], [1, 1], n_test=20_000)
    pos, neg = wrong_side(r.result.W, r.M, r.data.mu, q=3.0, n_test=20_000, seed=3)
    assert torch.all((pos - torch.as_tensor(r.test.error_pos)).abs() < 0.03)
    assert torch.all((neg - torch.as_tensor(r.test.error_neg)).abs() < 0.03)
    assert pos[1] + neg[1] > 0.5  # the memorizing network errs, the learning one hardly
    with pytest.raises(ValueError, match="n_test"):
        wrong_side(r.result.W, r.M, r.data.mu, q=3.0, n_test=10)
