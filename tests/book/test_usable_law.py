"""Chapter 2: the mask survey, the usable-neuron law at its units, and the failure law."""

import numpy as np
import pandas as pd
import pytest
import torch

from prunebook import theory
from prunebook.book.usable import (
    binomial_gof,
    draw_init,
    failure_law,
    law_checks,
    mask_survey,
    usable_counts,
    usable_kind,
)
from prunebook.seeds import numpy_rng


@pytest.fixture(scope="module")
def draws():
    return draw_init(m=10, d=200, mu_norm=4.0, sigma_p=1.0, sigma_0=0.01, networks=4000, full_masks=20, seed=3)


def test_draws_are_seeded_and_counts_follow_the_definition(draws):
    again = draw_init(m=10, d=200, mu_norm=4.0, sigma_p=1.0, sigma_0=0.01, networks=4000, full_masks=20, seed=3)
    assert torch.equal(draws.w1, again.w1) and torch.equal(draws.u_full, again.u_full)
    assert draws.w1.shape == draws.u1.shape == (4000, 2, 10, 1) and draws.u_full.shape == (20, 2, 10, 200)
    counts = usable_counts(draws, 0.6)
    sign = torch.tensor([1.0, -1.0], dtype=torch.float64)[:, None]
    direct = ((draws.u1[..., 0] >= 0.6) & (sign * draws.w1[..., 0] > 0)).sum(-1).numpy()
    assert counts.shape == (4000, 2) and np.array_equal(counts, direct)
    assert (usable_counts(draws, 0.9) <= counts).all(), "nested masks: fewer usable neurons at larger p"


def test_survey_rows_against_the_formulas(draws):
    survey = mask_survey(draws, [0.0, 0.5, 0.9])
    first = survey.iloc[0]
    assert first.keeps_signal == first.neurons and first.noise_dims == 199 and first.predicted_noise_dims == 199
    np.testing.assert_allclose(survey.keeps_signal / survey.neurons, 1 - survey.p, atol=0.01)
    np.testing.assert_allclose(survey.usable / survey.neurons, (1 - survey.p) / 2, atol=0.01)
    np.testing.assert_allclose(survey.noise_dims / survey.predicted_noise_dims, 1, atol=0.02)
    np.testing.assert_allclose(survey.snr / survey.snr_p, 1, atol=0.05)
    np.testing.assert_allclose(survey.predicted_no_usable, theory.prob_no_usable_neuron(survey.p.to_numpy(), 10))


def test_binomial_gof_accepts_the_law_and_rejects_another():
    rng = numpy_rng(4)
    assert binomial_gof(rng.binomial(20, 0.25, size=5000), 20, 0.25) > 1e-3
    assert binomial_gof(rng.binomial(20, 0.30, size=5000), 20, 0.25) < 1e-6
    assert binomial_gof(np.zeros(100, dtype=int), 20, 0.0) == 1.0  # a degenerate law: one cell
    with pytest.raises(ValueError, match="^counts"):
        binomial_gof([0, 21], 20, 0.5)


def test_law_checks_pass_on_the_law_and_catch_a_wrong_count(draws):
    survey = mask_survey(draws, [0.0, 0.5, 0.8, 0.95])
    checks = law_checks(survey, draws)
    assert checks["threshold"] == pytest.approx(0.01 / 4)
    assert checks["units"] == {"neurons": 80000, "banks": 8000, "networks": 4000}
    assert min(checks["keeps"], checks["usable_per_class"], checks["no_usable"]) > checks["threshold"]
    wrong = survey.assign(no_usable=np.round(survey.no_usable * 1.5).astype(int))
    assert law_checks(wrong, draws)["no_usable"] < checks["threshold"]


def _frame(rows):
    return pd.DataFrame(rows, columns=["p", "seed", "test_error", "usable_pos", "usable_neg", "converged"])


def test_failure_law_counts_by_hand():
    df = _frame([
        (0.9, 1, 0.50, 0, 0, True),   # none, failed: caught
        (0.9, 2, 0.01, 0, 0, True),   # none, learned: false alarm
        (0.9, 3, 0.49, 1, 0, True),   # one class, failed: missed
        (0.9, 4, 0.00, 0, 2, False),  # one class, learned, not converged
        (0.5, 5, 0.00, 3, 4, True),   # both
    ])
    assert usable_kind(df).tolist() == ["none", "none", "one class", "one class", "both"]
    law = failure_law(df, m=20).set_index("p")
    row = law.loc[0.9]
    assert (row.networks, row.failures, row.no_usable, row.caught, row.false_alarms, row.missed) == (4, 2, 2, 1, 1, 1)
    assert (row.one_class, row.one_class_failures, row.converged) == (2, 1, 3)
    assert 0 <= row.lo <= row.observed == 0.5 <= row.hi <= 1
    assert row.predicted == pytest.approx(0.95**40)
    from scipy.stats import binomtest

    assert row.pvalue == pytest.approx(binomtest(2, 4, 0.95**40).pvalue)
    assert law.loc[0.5].pvalue == pytest.approx(1.0)
    assert law.loc[0.5].failures == 0 and law.loc[0.5].lo == 0.0
    with pytest.raises(ValueError, match="share seeds"):
        failure_law(pd.concat([df, df.iloc[:1]]), m=20)
    with pytest.raises(ValueError, match="missing column"):
        failure_law(df.drop(columns="converged"), m=20)
