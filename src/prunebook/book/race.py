r"""Chapter 4: the race heuristics tested on trained networks, and what the initialization predicts.

Chapter 3 derives two heuristics for the race between signal learning and noise memorization
(the book's own, not the paper's):

- the *statistic* n SNR_p^q against a constant C, which has to be fitted on runs;
- the *race ratio* R (:func:`prunebook.book.stages.stage1_race`): from the initial weights, mask
  and data alone, the median sample's first noise blow-up time over the first usable neuron's
  signal blow-up time; the signal wins when R > 1, a threshold with no fitted constant.

This module computes R for every row of a sweep table (:func:`race_ratios`, rebuilding each
network's initialization from its seed exactly as the sweep did), scores rules of the form
"predicted success" against the runs with a bootstrap over seeds (:func:`rule_scores`), and gives
a constant threshold on a statistic (:func:`fit_constant_rule`); the boundary a rule implies is
drawn with :func:`prunebook.book.boundary.boundary_per_row` and
:func:`prunebook.book.boundary.scaling_slope` (``outcome=`` the rule's prediction), so that the slope
the runs show can be set beside the slope R predicts without any training. It also holds
two checks a network's initialization decides: the training samples that can never be fitted
(:func:`stuck_samples`) and, at a large step, the wrong-sign neurons that jump across zero in their
first step (:func:`first_step_overshoot`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from prunebook.book.boundary import success
from prunebook._checks import check_q
from prunebook.conventions import SUCCESS_ERROR, class_signs
from prunebook.experiment import Setting, build
from prunebook.pruning import mask_uniforms
from prunebook.seeds import stream_seed
from prunebook.stats import LEVEL, bootstrap_seeds
from prunebook.book.stages import blowup_time

__all__ = ["race_ratio", "race_ratios", "stuck_samples", "first_step_overshoot", "rule_scores",
           "rule_difference", "fit_constant_rule"]


def _require(df: pd.DataFrame, *columns: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError("df: expected a pandas DataFrame (a sweep table)")
    for col in columns:
        if col not in df.columns:
            raise ValueError(f"df: missing column {col!r}")


def _networks(df: pd.DataFrame):
    """Yield (row positions, W0, M, data, setting) for the networks of ``df``'s rows, rebuilt from
    their settings and seeds as :func:`prunebook.experiment.run` builds them: the rows sharing a
    (setting, seed) share their data and initial weights W0 [2, m, d], drawn once, and differ only
    in their masks u >= p, M [P, 2, m, d] (float64; data unbatched)."""
    _require(df, "p", "seed")
    ps = df["p"].to_numpy(float)
    groups: dict[tuple, list[int]] = {}
    for k, rec in enumerate(df.to_dict("records")):
        groups.setdefault((Setting.from_record(rec), int(rec["seed"])), []).append(k)
    for (setting, seed), idx in groups.items():
        W0, _, data = build(setting, float(ps[idx[0]]), seed, dtype=torch.float64)
        u = mask_uniforms(W0.shape, seed=stream_seed(seed, "mask"))
        M = torch.stack([(u >= p).to(torch.float64) for p in ps[idx]])
        yield idx, W0, M, data, setting


def _per_network(df: pd.DataFrame, fn) -> np.ndarray:
    """``fn(W0, M, data, setting)`` -> [P] for every network of ``df`` (see :func:`_networks`)."""
    out = np.empty(len(df))
    for idx, W0, M, data, setting in _networks(df):
        out[idx] = np.asarray(fn(W0, M, data, setting), float)
    return out


def race_ratio(W0: torch.Tensor, M: torch.Tensor, mu: torch.Tensor, xi: torch.Tensor, y: torch.Tensor, *,
               q: float) -> torch.Tensor:
    """:func:`prunebook.book.stages.stage1_race`'s ratio R for one initialization W0 [2, m, d] and its
    data (mu [d], xi [n, d], y [n]) under P masks M [P, 2, m, d], by matrix products: R [P]."""
    q = check_q(q)
    if q <= 2:
        raise ValueError(f"q: the race ratio needs q > 2, got {q!r}")
    P, _, m, d = M.shape
    n = y.shape[-1]
    j = class_signs(W0)
    Wm = W0 * M
    signal_overlap = j[:, None] * (Wm @ mu)  # [P, 2, m]
    kept_signal = M @ mu**2  # ||mu ⊙ m||^2
    n_j = torch.stack([(y > 0).sum(), (y < 0).sum()]).to(W0.dtype)
    signal_rate = q * kept_signal * n_j[:, None] / (2 * n * m)
    noise_overlap = (Wm.reshape(P * 2 * m, d) @ xi.T).reshape(P, 2, m, n)
    noise_rate = (M.reshape(P * 2 * m, d) @ (xi**2).T).reshape(P, 2, m, n) * q / (2 * n * m)
    usable = (kept_signal > 0) & (signal_overlap > 0)
    t_signal = torch.where(usable, blowup_time(signal_rate, signal_overlap, q), math.inf).flatten(-2).amin(-1)
    own = (j[:, None, None] * y) > 0  # [2, 1, n]: neuron bank j can memorize sample i
    t_noise = torch.where(own & (noise_overlap > 0), blowup_time(noise_rate, noise_overlap, q), math.inf)
    return t_noise.flatten(-3, -2).amin(-2).median(dim=-1).values / t_signal


def race_ratios(df: pd.DataFrame) -> np.ndarray:
    """Chapter 3's race ratio R of every network in a sweep table (one value per row).

    Each network is rebuilt from its row (setting, p, seed) exactly as the sweep built it; R uses
    only its initial weights, mask and training data (no training). R = 0 where the network has no
    usable neuron (no signal blow-up), and R > 1 predicts that the signal wins the race.
    """
    return _per_network(df, lambda W0, M, data, s: race_ratio(W0, M, data.mu, data.xi, data.y, q=s.q).numpy())


def stuck_samples(df_or_W0, M=None, X=None, y=None) -> np.ndarray:
    """Training samples that no neuron of their own class is active on at initialization.

    With sigma'(0) = 0 such a sample gets no gradient towards its class: the neurons of its class
    are silent on it, and those of the other class are pushed off it, so its output goes to 0 and
    its loss to ln 2 (ln 2 / n of the training loss), unless the updates driven by the *other*
    samples turn a neuron of its class on. The converse also happens: those updates can switch off
    the neurons of a sample's class before they fit it, so a sample can stall at output 0 during
    training without being flagged here (chapter 4 counts both). Called with a sweep table it
    rebuilds each row's network and returns the count per row; called with (W0, M, X, y) of shapes
    [..., 2, m, d], [..., 2, m, d], [..., n, 2, d], [..., n] it returns the counts [...].
    """
    if isinstance(df_or_W0, pd.DataFrame):
        return _per_network(df_or_W0, lambda W0, M_, data, _: stuck_samples(W0, M_, data.X, data.y))
    W0 = df_or_W0
    if M is None or X is None or y is None:
        raise ValueError("M: give W0, M, X and y, or a sweep table alone")
    m, d = W0.shape[-2], W0.shape[-1]
    n, patches = X.shape[-3], X.shape[-2]
    A = (W0 * M.to(W0.dtype)).flatten(-3, -2)  # [..., 2m, d]
    pre = A @ X.to(W0.dtype).flatten(-3, -2).mT  # [..., 2m, n * patches]
    pre = pre.unflatten(-2, (2, m)).unflatten(-1, (n, patches))  # [..., 2, m, n, patches]
    active = (pre > 0).any(-1).any(-2)  # [..., 2, n]: some neuron of class j is active on sample i
    own = (y.to(W0.dtype).unsqueeze(-2) * class_signs(W0)[:, None]) > 0  # [..., 2, n]
    return (own & ~active).any(-2).sum(-1).numpy()


def first_step_overshoot(df: pd.DataFrame, lr: float) -> np.ndarray:
    """Per row of a sweep table: whether some *wrong-sign* neuron (it keeps the signal coordinate but
    j <w0 ⊙ m, mu> < 0) jumps across zero in the first step of GD with step ``lr``.

    At initialization f is about 0, so l' is about -1/2, and a wrong-sign neuron of class j is active
    only on the signal patches of the n_{-j} samples of the other class; its overlap x moves by
    lr q |x|^(q-1) ||mu ⊙ m||^2 n_{-j} / (2 n m) towards and past zero. It overshoots when that
    step exceeds |x| (for q = 3 and balanced classes: |x| > 4 m / (lr q ||mu||^2)); it is then
    usable from the second step on. The flow (lr -> 0) never overshoots.
    """
    if not lr > 0:
        raise ValueError(f"lr: must be > 0, got {lr!r}")

    def overshoot(W0, M, data, setting):
        q, m, n = setting.q, W0.shape[-2], data.y.shape[-1]
        Mf = M.to(W0.dtype)
        x = class_signs(W0)[:, None] * ((W0 * Mf) * data.mu[..., None, None, :]).sum(-1)  # [B, 2, m]
        keeps = (Mf * data.mu[..., None, None, :] ** 2).sum(-1)  # ||mu ⊙ m||^2
        n_other = torch.stack([(data.y < 0).sum(-1), (data.y > 0).sum(-1)], -1).to(W0.dtype)  # n_{-j}
        step = lr * q * x.abs() ** (q - 1) * keeps * n_other[..., None] / (2 * n * m)
        wrong = (keeps > 0) & (x < 0)
        return (wrong & (step > x.abs())).flatten(-2).any(-1).numpy()

    return _per_network(df, overshoot).astype(bool)


def _seed_rows(seeds: np.ndarray) -> dict:
    return {k: np.nonzero(seeds == k)[0] for k in np.unique(seeds)}


def rule_scores(df: pd.DataFrame, rules: Mapping[str, Sequence[bool]], *, level: float = SUCCESS_ERROR,
                n_boot: int = 1000, seed: int = 0, conf: float = LEVEL) -> pd.DataFrame:
    """How often each rule's prediction (True: the network learns the signal) matches the run.

    One row per rule: networks, seeds, agreements, the fraction of agreement with a percentile
    bootstrap over seeds (every network of a chosen seed together: a seed's networks share data,
    initialization and nested masks), and the degenerate resamples.
    """
    _require(df, "seed", "test_error")
    won = success(df, level)
    seeds = df["seed"].to_numpy()
    at = _seed_rows(seeds)
    rows = []
    for name, predicted in rules.items():
        pred = np.asarray(predicted, bool)
        if pred.shape != won.shape:
            raise ValueError(f"rules: {name!r} needs one prediction per row of df")
        hits = pred == won
        k = {s: (hits[i].sum(), len(i)) for s, i in at.items()}

        def frac(chosen, k=k):
            return sum(k[s][0] for s in chosen) / sum(k[s][1] for s in chosen)

        r = bootstrap_seeds(list(at), frac, n_boot=n_boot, seed=seed, level=conf)
        rows.append({"rule": name, "networks": len(pred), "seeds": len(at), "agree": int(hits.sum()),
                     "fraction": hits.mean(), "lo": r.lo, "hi": r.hi, "degenerate": r.degenerate})
    return pd.DataFrame(rows).set_index("rule")


def rule_difference(df: pd.DataFrame, rule_a: Sequence[bool], rule_b: Sequence[bool], *,
                    level: float = SUCCESS_ERROR, n_boot: int = 1000, seed: int = 0,
                    conf: float = LEVEL):
    """Paired comparison of two rules on the same networks: the fraction of networks ``rule_a``
    classifies right minus the fraction ``rule_b`` does, with a percentile bootstrap over seeds
    (both rules scored on the same resampled networks, so the pairing is kept). A lower bound above
    0 says ``rule_a`` agrees with the runs more often. Returns a :class:`prunebook.stats.BootstrapResult`."""
    _require(df, "seed", "test_error")
    won = success(df, level)
    hits = []
    for name, rule in (("rule_a", rule_a), ("rule_b", rule_b)):
        pred = np.asarray(rule, bool)
        if pred.shape != won.shape:
            raise ValueError(f"{name}: needs one prediction per row of df")
        hits.append(pred == won)
    at = _seed_rows(df["seed"].to_numpy())
    k = {s: (hits[0][i].sum() - hits[1][i].sum(), len(i)) for s, i in at.items()}

    def diff(chosen):
        return sum(k[s][0] for s in chosen) / sum(k[s][1] for s in chosen)

    return bootstrap_seeds(list(at), diff, n_boot=n_boot, seed=seed, level=conf)


def fit_constant_rule(df: pd.DataFrame, statistic: str = "n_snr_q", *, level: float = SUCCESS_ERROR) -> float:
    """The threshold c of the rule "learns iff ``statistic`` > c" fitted by a logistic regression of
    success on log(``statistic``) (the crossing of 1/2). Pass the networks to fit on (choosing seeds,
    networks with a usable neuron); judge the rule on other seeds."""
    from prunebook.stats import logistic_fit

    _require(df, statistic, "test_error")
    s = df[statistic].to_numpy(float)
    won = success(df, level)
    if len(s) < 2 or won.min() == won.max() or np.any(s <= 0):
        raise ValueError("df: need positive statistics and both successes and failures")
    a, b = logistic_fit(np.log(s), won.astype(float))
    if b <= 0:
        raise ValueError("df: success does not rise with the statistic; no threshold")
    return float(np.exp(-a / b))
