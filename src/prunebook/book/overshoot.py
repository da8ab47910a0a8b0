r"""Chapter 3: large steps, exactly. When does GD's first step carry a wrong-sign neuron past zero?

A neuron of class j that keeps the (sparse) signal coordinate with the wrong initial sign has the
overlap x = j <w0 ⊙ m, mu> = -a < 0. On its own class's signal patches its pre-activation j y_i x
is negative (sigma' = 0 there); on the OTHER class's signal patches (j y_i = -1) it is a > 0, and
those samples move it. With the noise orthogonal to the signal, one GD step changes x by exactly

    x_1 - x_0 = (lr ||mu ⊙ m||^2 / (n m)) sum_i (-l'_i) sigma'(j y_i x_0)
              = (lr q ||mu ⊙ m||^2 / (n m)) a^(q-1) sum_{i: y_i = -j} (-l'_i),

where l'_i = l'(y_i f(W0, x_i)) is the loss derivative at initialization. At a small
initialization f is about 0, so -l'_i is about 1/2, and with balanced labels (n/2 samples of the
other class) the step is lr q ||mu||^2 a^(q-1) / (4 m): the first step carries the neuron past zero
when it exceeds a, i.e. when

    a^(q-2) > 4 m / (lr q ||mu||^2)          (the book's first-step overshoot criterion).

Once past zero the neuron is active on its own class's signal and grows like a usable neuron. With
a small step (lr -> 0, the gradient flow) it can never cross: the step shrinks with |x| (for q > 1),
and x only creeps towards 0. A network without a usable neuron therefore learns the signal at a
large step exactly when one of its wrong-sign neurons overshoots in the first step (for q > 2 a
neuron that did not cross in the first step is closer to zero and moves by less in the next).

:func:`first_step_overlap` is the exact first step (from the closed-form gradient, any signal);
:func:`overshoot_threshold` and :func:`overshoot_ratio` are the criterion; :func:`overshoots` marks
the neurons; :func:`rescued` the networks without a usable neuron that the first step rescues.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from prunebook._checks import check_positive, check_q, check_tensor
from prunebook.conventions import class_signs
from prunebook.network import gradient
from prunebook.pruning import signal_carrying, usable

__all__ = ["FirstStep", "first_step_overlap", "overshoot_threshold", "overshoot_ratio", "overshoots",
           "rescued", "overshoot_table"]


class FirstStep(NamedTuple):
    """The signal overlaps x = j <w ⊙ m, mu> before and after GD's first step, [..., 2, m]."""

    before: torch.Tensor
    after: torch.Tensor
    wrong_sign: torch.Tensor  #: bool: keeps some of mu and x_0 < 0

    @property
    def crossed(self) -> torch.Tensor:
        """Wrong-sign neurons that the first step carries past zero (bool [..., 2, m])."""
        return self.wrong_sign & (self.after > 0)


def _overlap(W, M, mu):
    return class_signs(W)[:, None] * ((W * M.to(W.dtype)) * mu.to(W.dtype)[..., None, None, :]).sum(-1)


def first_step_overlap(W0, M, X, y, mu, *, q: float, lr: float) -> FirstStep:
    """The exact first GD step of every neuron's signal overlap.

    W0, M [..., 2, m, d]; X [..., n, 2, d]; y [..., n]; mu [..., d] (leading dimensions broadcast).
    Computed from the closed-form gradient at W0 (:func:`prunebook.gradient`), so it holds for any
    initialization scale and label balance, not only for l' = -1/2.
    """
    q = check_q(q)
    lr = check_positive("lr", lr)
    check_tensor("mu", mu, ndim_min=1)
    W1 = W0 - lr * gradient(W0, M, X, y, q)
    before = _overlap(W0, M, mu)
    return FirstStep(before, _overlap(W1, M, mu), signal_carrying(M, mu.to(W0.dtype)) & (before < 0))


def overshoot_threshold(m: int, mu_norm, *, q: float, lr: float):
    """The head start a wrong-sign neuron needs to cross zero in the first step: a^(q-2) must
    exceed 4 m / (lr q ||mu||^2) (balanced labels, l' = -1/2). Returns that right-hand side."""
    q = check_q(q)
    lr = check_positive("lr", lr)
    if q <= 2:
        raise ValueError(f"q: the criterion a^(q-2) > ... needs q > 2, got {q!r}")
    return 4 * m / (lr * q * torch.as_tensor(mu_norm, dtype=torch.float64) ** 2)


def overshoot_ratio(W0, M, mu, *, q: float, lr: float):
    """a^(q-2) / threshold for every wrong-sign neuron (0 for the others), [..., 2, m]: the first
    step carries the neuron past zero, by the criterion, where this exceeds 1."""
    before = _overlap(W0, M, mu)
    wrong = signal_carrying(M, mu.to(W0.dtype)) & (before < 0)
    a = torch.where(wrong, -before, torch.zeros_like(before))
    m = W0.shape[-2]
    thr = overshoot_threshold(m, mu.to(torch.float64).norm(dim=-1), q=q, lr=lr).to(W0.dtype)
    return torch.where(wrong, a ** (q - 2) / thr[..., None, None], torch.zeros_like(a))


def overshoots(W0, M, mu, *, q: float, lr: float) -> torch.Tensor:
    """Wrong-sign neurons that the criterion says the first step carries past zero, bool [..., 2, m]."""
    return overshoot_ratio(W0, M, mu, q=q, lr=lr) > 1


def rescued(W0, M, mu, *, q: float, lr: float) -> torch.Tensor:
    """Per network, bool [...]: it has no usable neuron and the criterion says some wrong-sign
    neuron crosses zero in the first step (so a large step lets it learn the signal after all)."""
    none_usable = ~usable(W0, M, mu).flatten(-2).any(-1)
    return none_usable & overshoots(W0, M, mu, q=q, lr=lr).flatten(-2).any(-1)


def overshoot_table(large: pd.DataFrame, small: pd.DataFrame, *, limit: int | None = None) -> pd.DataFrame:
    """The networks without a usable neuron of a sweep table at a large step (``large``: GD, one row
    per (p, seed), e.g. a precomputed table) with their outcome in ``small`` (the same networks at a
    small step or on the flow), their first step and the criterion, one row per network.

    The networks are rebuilt from their seeds (float64). Columns: p, seed, wrong_sign (how many
    neurons kept the coordinate with the wrong sign), ratio (the largest a^(q-2) / threshold, 0
    without a wrong-sign neuron), predicted (the criterion: ratio > 1), crossed (the exact first step
    carried some wrong-sign neuron past zero; neurons_crossed, neurons_predicted and neurons_agree count
    wrong-sign neurons: crossed, predicted to cross, and where the two agree), race_after (the race ratio R of
    :func:`prunebook.book.stages.stage1_race` from the state after the first step), predicted_exact
    (the exact first step crossed and the race after it favours the signal, race_after > 1), and
    the test errors error_large and error_small. ``limit`` keeps the first networks only (for smoke runs).
    """
    from prunebook.book.stages import stage1_race
    from prunebook.experiment import Setting, build_batch

    for name, t in (("large", large), ("small", small)):
        missing = {"p", "seed", "usable_pos", "usable_neg", "test_error"} - set(t.columns)
        if missing:
            raise ValueError(f"{name}: the table lacks the columns {sorted(missing)}")
    rows = large[(large.usable_pos + large.usable_neg) == 0]
    if limit is not None:
        rows = rows.iloc[:limit]
    if rows.empty:
        raise ValueError("large: no network without a usable neuron in the table")
    settings = [Setting.from_record(r) for _, r in rows.iterrows()]
    if settings[0].dynamics != "gd":
        raise ValueError("large: expected a table of GD runs (dynamics 'gd')")
    s0 = settings[0]
    W0, M, ds = build_batch(settings, rows.p.tolist(), rows.seed.astype(int).tolist(), dtype=torch.float64)
    fs = first_step_overlap(W0, M, ds.X, ds.y, ds.mu, q=s0.q, lr=s0.lr)
    ratio = overshoot_ratio(W0, M, ds.mu, q=s0.q, lr=s0.lr)
    W1 = W0 - s0.lr * gradient(W0, M, ds.X, ds.y, s0.q)
    after = stage1_race(W1, M, ds.mu, ds.xi, ds.y, q=s0.q).ratio
    out = pd.DataFrame({
        "p": rows.p.to_numpy(), "seed": rows.seed.to_numpy().astype(int),
        "wrong_sign": fs.wrong_sign.flatten(1).sum(-1).numpy(),
        "ratio": ratio.flatten(1).amax(-1).numpy(),
        "crossed": fs.crossed.flatten(1).any(-1).numpy(),
        "neurons_crossed": fs.crossed.flatten(1).sum(-1).numpy(),
        "neurons_predicted": (ratio > 1).flatten(1).sum(-1).numpy(),
        "neurons_agree": (((ratio > 1) == fs.crossed) & fs.wrong_sign).flatten(1).sum(-1).numpy(),
        "race_after": after.numpy(),
        "error_large": rows.test_error.to_numpy(),
    })
    out["predicted"] = out.ratio > 1
    out["predicted_exact"] = out.crossed & (out.race_after > 1)
    small_err = small.set_index(["p", "seed"]).test_error
    keys = list(zip(out.p, out.seed))
    if any(k not in small_err.index for k in keys):
        raise ValueError("small: the table lacks some of the networks of large")
    out["error_small"] = np.array([small_err.loc[k] for k in keys], dtype=float)
    return out
