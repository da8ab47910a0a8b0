"""Chapters 1 and 2: silent and stuck samples, the stuck-sample heuristic, the fitting table."""

import math

import numpy as np
import pytest
import torch

from prunebook.book.fitting import fit_table, prob_stuck, silent_samples
from prunebook.experiment import Setting, build_batch, run
from prunebook.seeds import network_seeds
from prunebook.stats import wilson_interval


def _hand_network():
    """d = 3, m = 1; sample 0 (y = +1) is seen by the class +1 neuron through its noise patch,
    sample 1 (y = +1) by nothing of class +1, sample 2 (y = -1) by the class -1 neuron's signal patch."""
    W = torch.tensor([[[0.0, 1.0, 0.0]], [[-1.0, 0.0, 0.0]]], dtype=torch.float64)  # [2, 1, 3]
    M = torch.ones_like(W)
    mu = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    xi = torch.tensor([[0.0, 2.0, 0.0], [0.0, -1.0, 1.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    y = torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    X = torch.stack([y[:, None] * mu, xi], dim=1)
    return W, M, X, y


def test_silent_samples_by_hand():
    W, M, X, y = _hand_network()
    assert silent_samples(W, M, X, y).tolist() == [False, True, False]
    # the mask decides too: pruning the class +1 neuron's coordinate 2 silences sample 0
    M2 = M.clone()
    M2[0, 0, 1] = 0
    assert silent_samples(W, M2, X, y).tolist() == [True, True, False]
    # leading batch dimensions broadcast
    batch = silent_samples(torch.stack([W, -W]), M, X, y)
    assert batch.shape == (2, 3) and batch[0].tolist() == [False, True, False]
    assert batch[1].tolist() == [True, False, True]  # -W: class +1 sees sample 1's noise, class -1 nothing
    with pytest.raises(ValueError, match="^y"):
        silent_samples(W, M, X, y[:2])


@pytest.mark.parametrize("m, n, d, p", [(3, 20, 60, 0.0), (2, 12, 60, 0.7)])
def test_prob_stuck_matches_initializations(m, n, d, p):
    """Independent initializations (one seed each), a 99.9% Wilson interval around the heuristic."""
    nets = 3000
    W0, M, ds = build_batch(Setting(d=d, n=n, m=m), [p] * nets, network_seeds(5, nets), dtype=torch.float64)
    hits = int(silent_samples(W0, M, ds.X, ds.y).any(-1).sum())
    lo, hi = wilson_interval(hits, nets, level=0.999)
    assert lo <= prob_stuck(m, n, p) <= hi, (hits / nets, prob_stuck(m, n, p))


def test_prob_stuck_shape():
    assert prob_stuck(1, 1) == pytest.approx(0.25)  # one sample, one neuron: wrong sign and silent noise
    values = [prob_stuck(m, 50) for m in range(1, 21)]
    assert all(a > b for a, b in zip(values, values[1:])), "wider networks: fewer stuck samples"
    assert prob_stuck(20, 50) == pytest.approx(50 * 4.0**-20, rel=1e-3), "about n 4^-m"
    assert prob_stuck(8, 50, 0.9) > prob_stuck(8, 50, 0.5) > prob_stuck(8, 50), "pruning makes them likelier"
    assert 0 <= prob_stuck(2, 200, 0.99) <= 1
    with pytest.raises(ValueError, match="^p"):
        prob_stuck(4, 10, 1.0)


def test_fit_table_on_narrow_networks():
    """Narrow dense networks on the flow: stuck samples exist; every network that did not converge
    stalls at a whole number of ln 2 / n, one for each sample it left at f = 0."""
    setting = Setting(d=200, n=20, m=2, mu_norm=4.0, dynamics="flow", t_end=300.0, stop_loss=1e-2)
    nets = 48
    out = fit_table(run(setting, [0.0] * nets, network_seeds(2, nets)))
    for col in ("stuck", "stuck_fitted", "unfitted", "stalled", "loss_units"):
        assert col in out
    assert (out.stuck_fitted <= out.stuck).all() and (out.stalled >= out.stuck - out.stuck_fitted).all()
    assert (out.unfitted <= out.stalled).all()
    assert out.stuck.sum() > 0 and out.stuck_fitted.sum() > 0, "m = 2: stuck samples, some rescued"
    assert (out.stuck > out.stuck_fitted).any(), "and some never fitted"
    assert (out.converged == (out.unfitted == 0) & (out.final_loss < 1e-2)).all()
    stalled = out[~out.converged]
    assert len(stalled) > 0 and (stalled.stalled >= 1).all()
    np.testing.assert_allclose(stalled.loss_units, stalled.stalled, atol=0.15)
    assert (out[out.converged].stalled == 0).all()
    assert np.allclose(out.loss_units * math.log(2) / 20, out.final_loss)


def test_outcome_summary_by_hand():
    import pandas as pd

    from prunebook.book.fitting import outcome_summary

    df = pd.DataFrame({"mu_norm": [2.0, 2.0, 8.0, 8.0, 8.0], "test_error": [0.5, 0.48, 0.0, 0.3, 0.01],
                       "converged": [True, True, True, False, True], "stuck": [0, 1, 0, 2, 0]})
    out = outcome_summary(df, "mu_norm").set_index("mu_norm")
    assert out.loc[2.0].tolist() == [2, 2, 0, 0.49, 1]
    assert out.loc[8.0].tolist() == [3, 2, 2, 0.01, 1]
    assert "with_stuck" not in outcome_summary(df.drop(columns="stuck"), "mu_norm")
    with pytest.raises(ValueError, match="missing column"):
        outcome_summary(df, "p")
