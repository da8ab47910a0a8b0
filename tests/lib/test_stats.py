"""prunebook.stats additions: Holm's multiplicity adjustment."""

import numpy as np
import pytest

from prunebook.stats import holm


def test_holm_matches_a_hand_worked_family():
    # m = 4, sorted 0.01, 0.02, 0.03, 0.5: multipliers 4, 3, 2, 1 -> 0.04, 0.06, 0.06 (monotone), 0.5
    got = holm([0.03, 0.5, 0.01, 0.02])
    np.testing.assert_allclose(got, [0.06, 0.5, 0.04, 0.06])
    # with alpha = 0.05 only the smallest survives, although three raw p-values are below 0.05
    assert (got < 0.05).tolist() == [False, False, True, False]


def test_holm_caps_at_one_and_keeps_single_tests():
    np.testing.assert_allclose(holm([0.4, 0.6, 0.9]), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(holm([0.3]), [0.3])
    adj = holm(np.linspace(0.001, 0.2, 18))
    assert np.all(adj >= np.linspace(0.001, 0.2, 18)) and np.all(np.diff(adj) >= 0)


@pytest.mark.parametrize("bad", [[], [0.1, np.nan], [1.2], [[0.1, 0.2]], [-0.1]])
def test_holm_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="^pvalues:"):
        holm(bad)
