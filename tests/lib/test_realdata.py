"""The digits helpers: validation splits and the noisy-digits bridge."""

import pytest
import torch

from prunebook.realdata import add_noise_patch, digits_binary, digits_networks, digits_parts, digits_split


def test_digits_split_extends_digits_binary():
    train, val, test = digits_split(300, 100, seed=4)
    tr_only, _ = digits_binary(300, seed=4)
    assert torch.equal(train.X, tr_only.X) and torch.equal(train.y, tr_only.y)
    assert val.X.shape == (100, 1, 64) and test.X.shape == (1797 - 400, 1, 64)
    rows = torch.cat([train.X, val.X, test.X])[:, 0]
    assert len(torch.unique(rows, dim=0)) >= 1797 - 20  # (a few digits images are duplicates)
    assert float(train.X.mean(0).abs().max()) < 1e-6 and float(val.X.mean(0).abs().max()) > 1e-3
    with pytest.raises(ValueError, match="^n_val:"):
        digits_split(1000, 797, seed=0)
    with pytest.raises(ValueError, match="^n_val:"):
        digits_split(100, 0, seed=0)


def test_noise_patch_is_the_model_form():
    train, _, _ = digits_split(200, 50, seed=1)
    noisy = add_noise_patch(train, 500, 0.3, seed=9)
    assert noisy.X.shape == (200, 2, 564)
    assert torch.equal(noisy.X[:, 0, :64], train.X[:, 0]) and bool((noisy.X[:, 0, 64:] == 0).all())
    assert bool((noisy.X[:, 1, :64] == 0).all())  # the noise is orthogonal to every image
    assert abs(float(noisy.X[:, 1, 64:].std()) / 0.3 - 1) < 0.02
    assert torch.equal(add_noise_patch(train, 500, 0.3, seed=9).X, noisy.X)
    assert not torch.equal(add_noise_patch(train, 500, 0.3, seed=10).X, noisy.X)
    assert torch.equal(noisy.xi, noisy.X[:, 1]) and torch.equal(noisy.y, train.y)
    with pytest.raises(ValueError, match="^ds:"):
        add_noise_patch(noisy, 10, 1.0, seed=0)
    with pytest.raises(ValueError, match="^extra_dims:"):
        add_noise_patch(train, 0, 1.0, seed=0)
    with pytest.raises(ValueError, match="^sigma:"):
        add_noise_patch(train, 10, -1.0, seed=0)


def test_digits_networks_share_data_per_seed_and_nest_masks():
    net = digits_networks(60, 40, [0.0, 0.5, 0.9, 0.5], [5, 5, 5, 6], m=3, sigma_0=0.1, extra_dims=100,
                          noise_sigma=0.5, n_test=70)
    assert net.W0.shape == net.M.shape == (4, 2, 3, 164)
    assert net.train.X.shape == (4, 60, 2, 164) and net.val.X.shape == (4, 40, 2, 164)
    assert net.test.X.shape == (4, 70, 2, 164)
    assert torch.equal(net.train.X[0], net.train.X[2]) and not torch.equal(net.train.X[1], net.train.X[3])
    assert torch.equal(net.W0[0], net.W0[1])
    assert bool((net.M[2] <= net.M[1]).all()) and bool((net.M[1] <= net.M[0]).all())
    plain = digits_networks(60, 40, [0.5], [5], m=3, sigma_0=0.1)
    assert plain.train.X.shape == (1, 60, 1, 64) and plain.test.X.shape == (1, 1797 - 100, 1, 64)
    assert torch.equal(plain.train.X[0], digits_split(60, 40, seed=5)[0].X)
    with pytest.raises(ValueError, match="^seeds:"):
        digits_networks(60, 40, [0.5], [5, 6], m=3, sigma_0=0.1)
    with pytest.raises(ValueError, match="^p:"):
        digits_networks(60, 40, [1.0], [5], m=3, sigma_0=0.1)


def test_digits_parts_set_aside_a_rotation_split():
    parts = digits_parts(300, 100, seed=4, n_rotation=200)
    train, val, test = digits_split(300, 100, seed=4)
    assert torch.equal(parts.train.X, train.X) and torch.equal(parts.val.X, val.X)  # the same first images
    assert parts.rotation.X.shape == (200, 1, 64) and parts.test.X.shape == (1797 - 600, 1, 64)
    assert torch.equal(torch.cat([parts.rotation.X, parts.test.X]), test.X)  # carved from the old test set
    assert digits_parts(300, 100, seed=4).rotation is None
    with pytest.raises(ValueError, match="^n_rotation:"):
        digits_parts(1000, 500, seed=0, n_rotation=297)
    with pytest.raises(ValueError, match="^n_rotation:"):
        digits_parts(100, 50, seed=0, n_rotation=-1)


def test_class_mean_rotation_concentrates_the_class_difference():
    from prunebook.realdata import class_mean_rotation, rotate_pixels

    train, val, _ = digits_split(300, 100, seed=2, dtype=torch.float64)
    H = class_mean_rotation(train)
    torch.testing.assert_close(H @ H.T, torch.eye(64, dtype=torch.float64), atol=1e-12, rtol=0)
    rot = rotate_pixels(train, H)
    diff = rot.X[rot.y > 0, 0].mean(0) - rot.X[rot.y < 0, 0].mean(0)
    assert float(diff[0]) > 0 and float(diff[1:].abs().max()) < 1e-10  # all of it on the first pixel
    torch.testing.assert_close(rot.X.norm(dim=-1), train.X.norm(dim=-1))  # a rotation: norms kept
    torch.testing.assert_close(rotate_pixels(val, H).X, val.X @ H.T)
    with pytest.raises(ValueError, match="^train:"):
        class_mean_rotation(train._replace(y=torch.ones_like(train.y)))
    with pytest.raises(ValueError, match="^H:"):
        rotate_pixels(train, torch.eye(3))


def test_concentrated_networks_use_a_held_out_rotation_and_the_same_images():
    from prunebook.realdata import class_mean_rotation

    kw = dict(m=2, sigma_0=0.1, n_rotation=250, dtype=torch.float64)
    rot = digits_networks(300, 100, [0.0], [2], concentrate=True, **kw)
    pix = digits_networks(300, 100, [0.0], [2], **kw)
    held_out = digits_parts(300, 100, seed=2, n_rotation=250, dtype=torch.float64).rotation
    H = class_mean_rotation(held_out)
    torch.testing.assert_close(rot.rotation[0], H)
    assert pix.rotation is None
    for a, b in ((rot.train, pix.train), (rot.val, pix.val), (rot.test, pix.test)):
        torch.testing.assert_close(a.X, b.X @ H.T)  # the same images, rotated: the views are paired
    # estimated on held-out images, the direction does not put all of the training difference on pixel 1
    X = rot.train.X[0, :, 0]
    diff = X[rot.train.y[0] > 0].mean(0) - X[rot.train.y[0] < 0].mean(0)
    assert 0.5 < float(diff[0] ** 2 / diff.pow(2).sum()) < 1 - 1e-3
    with pytest.raises(ValueError, match="^n_rotation:"):
        digits_networks(300, 100, [0.0], [2], m=2, sigma_0=0.1, concentrate=True)
