r"""The gradient flow dW/dt = -grad L(W), integrated in coefficient space by an embedded Runge-Kutta pair.

GD with step lr is the explicit Euler method for this flow at time t = lr x steps; the book's theory
(usable neurons, the race, the two stages) describes the limit lr -> 0. As in GD, every change of
``w ⊙ m`` is a combination of the basis vectors of :mod:`prunebook.engines.coefficients`, so the flow
is the ODE dc/dt = F(c) on the coefficients, F(c) being one GD step at lr = 1 without the step.

The method, for each network on its own clock (the batch only shares the loop):

- **the pair**: Dormand-Prince 5(4) (``"DP54"``, the default: 6 evaluations a step, the 7th reused
  as the next step's first) or Bogacki-Shampine 3(2) (``"BS32"``: 3 a step); both tableaus and their
  dense outputs (Shampine's quartic for DP54, the cubic Hermite for BS32) are scipy's ``RK45`` and
  ``RK23``. ``benchmarks/flow_speed.py`` measures the choice;
- **the error norm**: the root mean square, over the network's coefficients, of the error estimate
  in pre-activation units (g_a = c_a ||v_a ⊙ m||^2, i.e. gamma and rho), each divided by
  atol + rtol max(|g_old|, |g_new|); the coefficients start at exactly 0, so the absolute floor is
  atol = rtol x the root mean square of the network's initial pre-activations <w0 ⊙ m, v_a>;
- **step control**: accept when the norm is <= 1; the next step is h (0.9 / norm)^(1/5) (for DP54),
  clipped to [0.2 h, 10 h], not larger after a rejection; the last step lands on t_end exactly;
- **records** at ``record_at`` times from the pair's dense output (or the step's end point exactly);
- **early stop**: when the training loss falls to ``stop_loss``, the crossing is located within
  the step on the dense output (Illinois' method on log L, relative accuracy 1e-4, on the side below
  the target) and the network stops there;
- **failure**: a non-finite error estimate is a rejected step; a network whose step size underflows
  (10 eps t) is frozen at its last accepted state and reported as diverged, as GD reports it.

:mod:`prunebook.engines.flow_kernel` runs this compiled on the CPU; :func:`_run_torch` is the same
arithmetic in batched torch operations, for other devices and as the kernel's reference.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from prunebook.conventions import error_from_margins
from prunebook.engines import coefficients as coef
from prunebook.engines import flow_kernel
from prunebook.engines.threads import kernel_threads
from prunebook.engines.flow_kernel import FAILED, MAX_FACTOR, MIN_FACTOR, REACHED, RUNNING, SAFETY, STOP_ITERATIONS, STOP_RTOL, STOPPED
from prunebook.network import mean_logistic_loss
from prunebook.result import TrainResult

__all__ = ["Tableau", "METHODS", "DEFAULT_METHOD", "MAX_STEPS", "bytes_per_network", "absolute_tolerance", "run"]

#: steps (accepted and rejected) after which a network is given up as failed
MAX_STEPS = 100_000


class Tableau(NamedTuple):
    """An embedded explicit Runge-Kutta pair with the first-same-as-last property.

    Row s of ``A`` gives stage s's point c + h sum_l A[s, l] k_l; the last row is the solution's
    weights, so the last stage is F at the new point and the next step's first stage.
    """

    name: str
    A: np.ndarray  #: [S, S] (strictly lower triangular)
    E: np.ndarray  #: [S]: error estimate weights (solution minus embedded)
    P: np.ndarray  #: [S, D]: dense output, y(t + theta h) = y + h sum_l k_l sum_j P[l, j] theta^(j+1)
    order: int
    error_order: int

    @property
    def error_exponent(self) -> float:
        return -1.0 / (self.error_order + 1)

    @property
    def stages(self) -> int:
        return self.A.shape[0]


def _full(A_rows, B) -> np.ndarray:
    S = len(B) + 1
    A = np.zeros((S, S))
    for s, row in enumerate(A_rows):
        A[s, : len(row)] = row
    A[S - 1, : len(B)] = B
    return A


# Bogacki and Shampine's 3(2) pair and Dormand and Prince's 5(4) pair with Shampine's dense output,
# exactly as scipy.integrate.RK23 and RK45 define them.
_BS32 = Tableau(
    "BS32",
    A=_full([[], [1 / 2], [0, 3 / 4]], [2 / 9, 1 / 3, 4 / 9]),
    E=np.array([5 / 72, -1 / 12, -1 / 9, 1 / 8]),
    P=np.array([[1, -4 / 3, 5 / 9], [0, 1, -2 / 3], [0, 4 / 3, -8 / 9], [0, -1, 1]], dtype=float),
    order=3, error_order=2,
)
_DP54 = Tableau(
    "DP54",
    A=_full([[], [1 / 5], [3 / 40, 9 / 40], [44 / 45, -56 / 15, 32 / 9],
             [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
             [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656]],
            [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]),
    E=np.array([-71 / 57600, 0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40]),
    P=np.array([
        [1, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432],
        [0, 0, 0, 0],
        [0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799],
        [0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072],
        [0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632],
        [0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844],
        [0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423]]),
    order=5, error_order=4,
)
METHODS = {"DP54": _DP54, "BS32": _BS32}
DEFAULT_METHOD = "DP54"

#: On the CPU, run the compiled kernel when numba is available; False forces the torch path (tests compare them).
USE_KERNEL = True


def bytes_per_network(d: int, n: int, m: int, element_size: int, patches: int | None = None,
                      method: str = DEFAULT_METHOD, records: int = 2) -> int:
    """Peak memory of one network in :func:`run`: the inputs and Gram matrices of the coefficient
    engine, the stage vectors of the pair and the state copies, and ``records`` recorded states."""
    width = coef.basis_width(n + 2 if patches is None else n * patches)
    stages = METHODS[method].stages
    elements = (patches or 2) * n * d + 4 * 2 * m * d + width * d  # X, W0/M/W, basis vectors
    elements += 2 * m * width**2 + (stages + 8) * 2 * m * width + 6 * n  # Gram, stages and states, margins
    elements += records * (2 * m * width + 2)  # recorded coefficients, loss and error
    return elements * element_size


def absolute_tolerance(h0: torch.Tensor, sqnorm: torch.Tensor, rtol: float) -> torch.Tensor:
    """atol [B] = rtol x the root mean square of each network's initial pre-activations (kept columns)."""
    valid = sqnorm > 0
    count = valid.flatten(1).sum(-1).clamp_min(1)
    rms = ((h0.double() ** 2) * valid).flatten(1).sum(-1).div(count).sqrt()
    tiny = torch.finfo(torch.float64).tiny
    return rtol * torch.where(rms > 0, rms, torch.ones_like(rms)).clamp_min(tiny)


# ---- the torch path: the same method, batched -------------------------------------------------------


def _rhs(c: torch.Tensor, system: coef.CoefficientSystem, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(F(c) [B, 2, m, w], margins [B, n]) with ``system`` built at lr = 1."""
    derivative, neg = coef.evaluate(c, system)
    weights = torch.bmm(torch.sigmoid(neg), system.to_weights) * system.signs
    return derivative * weights[:, :, None, :], -neg[:, 0, :n]


def _combine(c, k, weights, h):
    """c + sum_l (h weights[l]) k_l, h per network [B] (float64), in c's dtype (as the kernel adds them)."""
    out = c.clone()
    for w_l, k_l in zip(weights, k):
        if w_l != 0.0:
            out += (h * float(w_l)).to(c.dtype)[:, None, None, None] * k_l
    return out


def _dense_weights(P: np.ndarray, theta: torch.Tensor) -> torch.Tensor:
    """b_l(theta) = sum_j P[l, j] theta^(j+1), [S, B]."""
    powers = torch.stack([theta ** (j + 1) for j in range(P.shape[1])])  # [D, B]
    return torch.as_tensor(P, dtype=torch.float64, device=theta.device) @ powers


def _dense(c, k, P, h, theta):
    b = _dense_weights(P, theta)  # [S, B]
    out = c.clone()
    for l, k_l in enumerate(k):
        out += (h * b[l]).to(c.dtype)[:, None, None, None] * k_l
    return out


def _rms(x: torch.Tensor, valid: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    return ((x**2) * valid).flatten(1).sum(-1).div(count).sqrt()


def _run_torch(K, h0, cols, y, atol, *, tableau: Tableau, rtol, t_end, record_at, stop_loss, max_steps, q,
               want_error, want_coefficients):
    """The method of the kernel in batched torch operations; returns the kernel's dict (torch tensors)."""
    B, two, m, width = h0.shape
    n = y.shape[-1]
    device, dtype = h0.device, h0.dtype
    system = coef.build_system(K, h0, cols, y, q=q, lr=1.0)
    sq = system.sqnorm
    sq64 = sq.double()
    valid = sq > 0
    count = valid.flatten(1).sum(-1).clamp_min(1).double()
    S = tableau.stages
    A, E, P = tableau.A, tableau.E, tableau.P
    T = len(record_at)
    rec_t = torch.as_tensor(record_at, dtype=torch.float64, device=device)
    loss_out = torch.empty(T, B, dtype=torch.float64, device=device)
    error_out = torch.empty(T, B, dtype=torch.float64, device=device) if want_error else None
    coef_out = torch.empty(T, B, two, m, width, dtype=dtype, device=device) if want_coefficients else None
    eps = torch.finfo(dtype).eps
    rows = torch.arange(B, device=device)

    def store(mask, c, margins):
        """Store the record at each masked network's pointer; advance the pointer."""
        nonlocal rec
        idx = rows[mask]
        if idx.numel() == 0:
            return
        r = rec[idx]
        loss_out[r, idx] = mean_logistic_loss(margins[idx].double())
        if error_out is not None:
            error_out[r, idx] = error_from_margins(margins[idx].double())
        if coef_out is not None:
            coef_out[r, idx] = c[idx] * sq[idx]
        rec = rec + mask.long()

    c = torch.zeros(B, two, m, width, dtype=dtype, device=device)
    k = [torch.zeros_like(c) for _ in range(S)]
    k[0], margins = _rhs(c, system, n)
    nfev = torch.ones(B, dtype=torch.int64, device=device)
    accepted = torch.zeros(B, dtype=torch.int64, device=device)
    rejected = torch.zeros(B, dtype=torch.int64, device=device)
    t = torch.zeros(B, dtype=torch.float64, device=device)
    status = torch.full((B,), RUNNING, dtype=torch.int8, device=device)
    rec = torch.zeros(B, dtype=torch.int64, device=device)

    def pending(limit):
        r = rec.clamp_max(T - 1)
        return (rec < T) & (rec_t[r] <= limit)

    while True:
        mask = pending(torch.zeros_like(t))
        if not bool(mask.any()):
            break
        store(mask, c, margins)
    loss_cur = mean_logistic_loss(margins.double())
    stopping = stop_loss > 0
    if stopping:
        status = torch.where(loss_cur <= stop_loss, torch.full_like(status, STOPPED), status)
    # initial step, as the kernel computes it
    d1 = _rms(k[0].double() * sq64 / atol[:, None, None, None], valid, count)
    h_first = 1e-6
    f1, _ = _rhs(c + h_first * k[0], system, n)
    nfev += (status == RUNNING).long()
    d2 = _rms((f1.double() - k[0].double()) * sq64 / atol[:, None, None, None], valid, count) / h_first
    big = torch.maximum(d1, d2)
    ok = (big > 1e-15) & torch.isfinite(big)
    h1 = torch.where(ok, (0.01 / torch.where(ok, big, torch.ones_like(big))) ** (-tableau.error_exponent),
                     torch.full_like(big, max(1e-6, h_first * 1e-3)))
    h = torch.clamp(h1, max=min(100 * h_first, t_end))
    rejected_before = torch.zeros(B, dtype=torch.bool, device=device)
    while True:
        run = status == RUNNING
        reached = run & (t >= t_end)
        status = torch.where(reached, torch.full_like(status, REACHED), status)
        over = (status == RUNNING) & (accepted + rejected >= max_steps)
        status = torch.where(over, torch.full_like(status, FAILED), status)
        run = status == RUNNING
        if not bool(run.any()):
            break
        last = t + h >= t_end
        h_step = torch.where(last, t_end - t, h)
        h_step = torch.where(run, h_step, torch.zeros_like(h_step))
        for s in range(1, S):
            point = _combine(c, k[:s], A[s, :s], h_step)
            k[s], m_s = _rhs(point, system, n)
        y_new, margins_new = point, m_s
        nfev += (S - 1) * run.long()
        e = torch.zeros_like(c, dtype=torch.float64)
        for l in range(S):
            if E[l] != 0.0:
                e += (h_step * float(E[l]))[:, None, None, None] * k[l].double()
        e = e * sq64
        scale = atol[:, None, None, None] + rtol * torch.maximum(c.double().abs(), y_new.double().abs()) * sq64
        err = _rms(e / scale, valid, count)
        good = run & torch.isfinite(err) & (err <= 1.0)
        bad = run & ~good
        t_new = torch.where(last, torch.full_like(t, t_end), t + h_step)
        # early stop, located within the step
        theta_stop = torch.ones_like(t)
        stopped = torch.zeros_like(good)
        c_stop, margins_stop = y_new.clone(), margins_new.clone()
        if stopping:
            loss_new = mean_logistic_loss(margins_new.double())
            stopped = good & (loss_new <= stop_loss)
            if bool(stopped.any()):
                ls = float(np.log(stop_loss))
                ta, tb = torch.zeros_like(t), torch.ones_like(t)
                ga = torch.log(loss_cur) - ls
                gb = torch.log(loss_new.clamp_min(1e-300)) - ls
                side = torch.zeros(B, dtype=torch.int8, device=device)
                active = stopped.clone()
                for _ in range(STOP_ITERATIONS):
                    active = active & ~((gb > -STOP_RTOL) | (tb - ta < 1e-12))
                    if not bool(active.any()):
                        break
                    th = (ta * gb - tb * ga) / torch.where(active, gb - ga, torch.ones_like(ga))
                    th = torch.where((ta < th) & (th < tb), th, 0.5 * (ta + tb))
                    point = _dense(c, k, P, h_step, th)
                    _, m_th = _rhs(point, system, n)
                    nfev += active.long()
                    g = torch.log(mean_logistic_loss(m_th.double()).clamp_min(1e-300)) - ls
                    below = active & (g <= 0)
                    above = active & ~(g <= 0)
                    tb, gb = torch.where(below, th, tb), torch.where(below, g, gb)
                    c_stop = torch.where(below[:, None, None, None], point, c_stop)
                    margins_stop = torch.where(below[:, None], m_th, margins_stop)
                    ga = torch.where(below & (side == -1), 0.5 * ga, ga)
                    ta, ga = torch.where(above, th, ta), torch.where(above, g, ga)
                    gb = torch.where(above & (side == 1), 0.5 * gb, gb)
                    side = torch.where(below, torch.full_like(side, -1), torch.where(above, torch.ones_like(side), side))
                theta_stop = torch.where(stopped, tb, theta_stop)
        t_lim = torch.where(stopped, t + theta_stop * h_step, t_new)
        while True:
            mask = good & pending(t_lim)
            if not bool(mask.any()):
                break
            tau = rec_t[rec.clamp_max(T - 1)]
            at_end = mask & ~stopped & (tau >= t_new)
            if bool(at_end.any()):
                store(at_end, y_new, margins_new)
            inner = mask & ~at_end
            if bool(inner.any()):
                theta = torch.where(inner, (tau - t) / torch.where(inner, h_step, torch.ones_like(h_step)), torch.zeros_like(t))
                point = _dense(c, k, P, h_step, theta)
                _, m_th = _rhs(point, system, n)
                nfev += inner.long()
                store(inner, point, m_th)
        accepted += good.long()
        new_state = torch.where(stopped[:, None, None, None], c_stop, y_new)
        new_margins = torch.where(stopped[:, None], margins_stop, margins_new)
        c = torch.where(good[:, None, None, None], new_state, c)
        margins = torch.where(good[:, None], new_margins, margins)
        k[0] = torch.where(good[:, None, None, None], k[S - 1], k[0])
        loss_cur = torch.where(good, mean_logistic_loss(margins.double()), loss_cur)
        t = torch.where(good, t_lim, t)
        status = torch.where(stopped, torch.full_like(status, STOPPED), status)
        status = torch.where(good & ~stopped & last, torch.full_like(status, REACHED), status)
        safe_err = torch.where(torch.isfinite(err) & (err > 0), err, torch.ones_like(err))
        grow = torch.where(err == 0, torch.full_like(err, MAX_FACTOR), torch.clamp(SAFETY * safe_err ** tableau.error_exponent, max=MAX_FACTOR))
        grow = torch.where(rejected_before, torch.clamp(grow, max=1.0), grow)
        shrink = torch.where(torch.isfinite(err), torch.clamp(SAFETY * safe_err ** tableau.error_exponent, min=MIN_FACTOR),
                             torch.full_like(err, MIN_FACTOR))
        h = torch.where(good, h * grow, torch.where(bad, h * shrink, h))
        rejected += bad.long()
        rejected_before = torch.where(good, torch.zeros_like(rejected_before), torch.where(bad, torch.ones_like(rejected_before), rejected_before))
        underflow = bad & (h < 10.0 * eps * torch.clamp(t.abs(), min=1.0))
        status = torch.where(underflow, torch.full_like(status, FAILED), status)
    while True:  # after an early stop or a failure: the final state
        mask = rec < T
        if not bool(mask.any()):
            break
        store(mask, c, margins)
    return {"loss": loss_out, "error": error_out, "coef": coef_out, "c": c, "evaluations": nfev,
            "accepted": accepted, "rejected": rejected, "status": status, "t": t}


def run(W0, M, basis: coef.Basis, y, *, q, t_end, rtol, method, record_at, names, stop_loss, max_steps=MAX_STEPS) -> TrainResult:
    """The flow; called by :func:`prunebook.flow` with validated, expanded inputs (M in W0's dtype).

    ``record_at`` is a sorted list of times in [0, t_end] that includes both ends; ``stop_loss`` None
    integrates every network to t_end.
    """
    bs = W0.shape[:-3]
    two, m, d = W0.shape[-3:]
    n = y.shape[-1]
    tableau = METHODS[method]
    W_flat = W0.reshape(-1, two, m, d)
    M_flat = M.expand(*bs, two, m, d).reshape(-1, two, m, d)
    y_flat = y.expand(*bs, n).reshape(-1, n).to(W0.dtype)
    B = W_flat.shape[0]
    V = basis.V
    width = V.shape[1]
    K, h0 = coef.operators(W_flat, M_flat, V)
    atol = absolute_tolerance(h0, torch.diagonal(K, dim1=-2, dim2=-1), rtol)
    options = dict(tableau=tableau, rtol=rtol, t_end=float(t_end), record_at=record_at,
                   stop_loss=-1.0 if stop_loss is None else float(stop_loss), max_steps=max_steps, q=q,
                   want_error="train_error" in names, want_coefficients=bool(names & {"gamma", "rho"}))
    if W0.device.type == "cpu" and USE_KERNEL and flow_kernel.AVAILABLE:
        with kernel_threads() as threads:
            out = flow_kernel.run_networks(K.contiguous().numpy(), h0.contiguous().numpy(), basis.cols.numpy(),
                                           y_flat.contiguous().numpy(), atol.numpy(), threads=threads, **options)
        out = {k: (None if v is None else torch.from_numpy(v)) for k, v in out.items()}
    else:
        out = _run_torch(K, h0, basis.cols, y_flat, atol.to(W0.device), **options)
    c = out["c"]
    W_final = W_flat + (c.reshape(B, two * m, width) @ V).reshape(B, two, m, d) * M_flat
    hist = {"loss": out["loss"].to(W0.dtype)}
    if out["error"] is not None:
        hist["train_error"] = out["error"].to(W0.dtype)
    if out["coef"] is not None:
        hist.update(coef.read_records(out["coef"], n, names))
    T = len(record_at)

    def unflat(x, lead=()):
        return x.reshape((*lead, *bs, *x.shape[len(lead) + 1 :]))

    status = out["status"]
    return TrainResult(
        W=unflat(W_final),
        steps=None,
        times=torch.tensor(record_at, dtype=torch.float64),
        loss=unflat(hist["loss"], (T,)),
        train_error=unflat(hist["train_error"], (T,)) if "train_error" in hist else None,
        gamma=unflat(hist["gamma"], (T,)) if "gamma" in hist else None,
        rho=unflat(hist["rho"], (T,)) if "rho" in hist else None,
        diverged=unflat(status == FAILED),
        engine="flow",
        evaluations=unflat(out["evaluations"]),
        t_final=unflat(out["t"]),
        stopped=unflat(status == STOPPED),
    )
