"""The flow's compiled CPU kernel (numba): an embedded Runge-Kutta pair, one network per loop iteration.

It integrates dc/dt = F(c), the gradient flow in coefficient space (F is one GD step of
:mod:`prunebook.engines.coefficients` at lr = 1, without the step), for every network on its own
clock: its own step sizes, its own accepted and rejected steps, its own records. Networks never
share a floating-point operation, so a network's trajectory is bit for bit the same alone and in
any batch. :mod:`prunebook.engines.flow` holds the method (tableaus, error norm, step control,
dense output) and a torch path that computes the same on any device; the tests compare the two.

One right-hand side evaluation is a Gram matrix-vector product per neuron (four rows at a time,
as in :mod:`prunebook.engines.coefficient_kernel`), then O(m w + n P) work for the output, the
loss derivative and F.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

try:  # numba is a dependency; the torch path remains for other devices and as the reference
    import numba

    AVAILABLE = True
except ImportError:  # pragma: no cover - depends on the environment
    numba = None
    AVAILABLE = False

__all__ = ["AVAILABLE", "RUNNING", "REACHED", "STOPPED", "FAILED", "run_networks"]

#: status of a network: still integrating, reached t_end, stopped at the loss target, step size underflow
RUNNING, REACHED, STOPPED, FAILED = 0, 1, 2, 3

#: step-size control (as in Hairer, Norsett and Wanner, and scipy's solve_ivp)
SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 10.0
#: the early stop is located to this relative accuracy in the loss, on the side below the target
STOP_RTOL = 1e-4
STOP_ITERATIONS = 40
#: networks per block handed to a worker thread
BLOCK = 8


def _rhs(Kb, h0b, colsb, yb, c, q, der, D, h, wt, margins, dc):  # pragma: no cover - compiled
    """dc = F(c) and the margins y_i f_i at c, for one network."""
    two, m, w, _ = Kb.shape
    n = yb.shape[0]
    P = colsb.shape[1]
    dt = Kb.dtype.type
    zero = dt(0.0)
    for a in range(w):
        D[a] = zero
    for j in range(two):
        sj = dt(1.0) if j == 0 else dt(-1.0)
        for r in range(m):
            cr = c[j, r]
            Kr = Kb[j, r]
            a = 0
            while a + 4 <= w:
                K0 = Kr[a]
                K1 = Kr[a + 1]
                K2 = Kr[a + 2]
                K3 = Kr[a + 3]
                s0 = zero
                s1 = zero
                s2 = zero
                s3 = zero
                for col in range(w):
                    x = cr[col]
                    s0 += K0[col] * x
                    s1 += K1[col] * x
                    s2 += K2[col] * x
                    s3 += K3[col] * x
                h[a] = h0b[j, r, a] + s0
                h[a + 1] = h0b[j, r, a + 1] + s1
                h[a + 2] = h0b[j, r, a + 2] + s2
                h[a + 3] = h0b[j, r, a + 3] + s3
                a += 4
            while a < w:
                s0 = zero
                for col in range(w):
                    s0 += Kr[a, col] * cr[col]
                h[a] = h0b[j, r, a] + s0
                a += 1
            dr = der[j, r]
            if q == 3.0:
                for a in range(w):
                    ra = max(h[a], zero)
                    dr[a] = ra * ra
                    D[a] += sj * (ra * ra * ra)
            elif q == 2.0:
                for a in range(w):
                    ra = max(h[a], zero)
                    dr[a] = ra
                    D[a] += sj * (ra * ra)
            elif q == 1.0:
                for a in range(w):
                    ra = max(h[a], zero)
                    dr[a] = dt(1.0) if h[a] > 0 else zero
                    D[a] += sj * ra
            else:
                for a in range(w):
                    ra = max(h[a], zero)
                    dd = ra ** (q - 1) if ra > 0 else zero
                    dr[a] = dd
                    D[a] += sj * (ra * dd)
    for i in range(n):
        acc = zero
        for p in range(P):
            acc += D[colsb[i, p]]
        margins[i] = yb[i] * acc / m
    for a in range(w):
        wt[a] = zero
    for i in range(n):
        s = 1.0 / (1.0 + math.exp(float(margins[i])))
        v = dt(q * float(yb[i]) * s / (n * m))
        for p in range(P):
            wt[colsb[i, p]] += v
    for j in range(two):
        sj = dt(1.0) if j == 0 else dt(-1.0)
        for r in range(m):
            for a in range(w):
                dc[j, r, a] = der[j, r, a] * (wt[a] * sj)


def _loss(margins):  # pragma: no cover - compiled
    n = margins.shape[0]
    total = 0.0
    for i in range(n):
        z = -float(margins[i])
        total += z + math.log1p(math.exp(-z)) if z > 0 else math.log1p(math.exp(z))
    return total / n


def _store(rec, b, c, sq, margins, want_error, want_coef, loss_out, error_out, coef_out):  # pragma: no cover
    two, m, w = c.shape
    n = margins.shape[0]
    loss_out[rec, b] = _loss(margins)
    if want_error:
        wrong = 0
        for i in range(n):
            if margins[i] <= 0:
                wrong += 1
        error_out[rec, b] = wrong / n
    if want_coef:
        for j in range(two):
            for r in range(m):
                for a in range(w):
                    coef_out[rec, b, j, r, a] = c[j, r, a] * sq[j, r, a]


def _dense(c, k, Pd, h, theta, out):  # pragma: no cover - compiled
    """out = c + h sum_l k_l b_l(theta), b_l(theta) = sum_j Pd[l, j] theta^(j+1), in c's dtype."""
    S, ND = Pd.shape
    N = c.size
    dt = c.dtype.type
    cf = c.reshape(N)
    of = out.reshape(N)
    kf = k.reshape(S, N)
    for i in range(N):
        of[i] = cf[i]
    for l in range(S):
        bl = 0.0
        power = theta
        for jj in range(ND):
            bl += Pd[l, jj] * power
            power *= theta
        if bl != 0.0:
            f = dt(h * bl)
            kl = kf[l]
            for i in range(N):
                of[i] += f * kl[i]


def _error_norm(c, y_new, k, E, h, sq, atol, rtol, nvalid, ebuf):  # pragma: no cover - compiled
    """RMS over the network's components of the error estimate, in pre-activation units g = c ||v_a ⊙ m||^2,
    each divided by atol + rtol max(|g_old|, |g_new|)."""
    S = E.shape[0]
    N = c.size
    cf = c.reshape(N)
    yf = y_new.reshape(N)
    sf = sq.reshape(N)
    kf = k.reshape(S, N)
    for i in range(N):
        ebuf[i] = 0.0
    for l in range(S):
        if E[l] != 0.0:
            f = h * E[l]
            kl = kf[l]
            for i in range(N):
                ebuf[i] += f * float(kl[i])
    total = 0.0
    for i in range(N):
        s = float(sf[i])
        if s > 0:
            scale = atol + rtol * max(abs(float(cf[i])), abs(float(yf[i]))) * s
            total += (ebuf[i] * s / scale) ** 2
    return math.sqrt(total / max(nvalid, 1))


def _stage_point(c, k, A, s, h, out):  # pragma: no cover - compiled
    """out = c + sum_{l < s} (h A[s, l]) k_l, in c's dtype."""
    N = c.size
    S = A.shape[0]
    dt = c.dtype.type
    cf = c.reshape(N)
    of = out.reshape(N)
    kf = k.reshape(S, N)
    for i in range(N):
        of[i] = cf[i]
    for l in range(s):
        if A[s, l] != 0.0:
            f = dt(h * A[s, l])
            kl = kf[l]
            for i in range(N):
                of[i] += f * kl[i]


def _integrate(b, K, h0, cols, y, atol, A, E, Pd, err_exp, rtol, t_end, record_at, stop_loss, max_steps, q, eps,
               want_error, want_coef, loss_out, error_out, coef_out, c_out, nfev_out, accepted_out, rejected_out,
               status_out, t_out):  # pragma: no cover - compiled
    """Integrate network b (everything it computes is its own: no arithmetic is shared across networks)."""
    B, two, m, w, _ = K.shape
    n = y.shape[1]
    S = A.shape[0]
    T = record_at.shape[0]
    dt = K.dtype.type
    Kb, h0b, colsb, yb = K[b], h0[b], cols[b], y[b]
    dtype = K.dtype
    c = np.zeros((two, m, w), dtype=dtype)
    tmp = np.zeros((two, m, w), dtype=dtype)
    y_new = np.zeros((two, m, w), dtype=dtype)
    c_stop = np.zeros((two, m, w), dtype=dtype)
    k = np.zeros((S, two, m, w), dtype=dtype)
    sq = np.zeros((two, m, w), dtype=dtype)
    der = np.empty((two, m, w), dtype=dtype)
    scratch = np.empty((two, m, w), dtype=dtype)  # F at a point where only the margins are wanted
    ebuf = np.empty(two * m * w, dtype=np.float64)
    D = np.empty(w, dtype=dtype)
    hbuf = np.empty(w, dtype=dtype)
    wt = np.empty(w, dtype=dtype)
    margins = np.empty(n, dtype=dtype)
    margins_new = np.empty(n, dtype=dtype)
    margins_tmp = np.empty(n, dtype=dtype)
    margins_stop = np.empty(n, dtype=dtype)
    nvalid = 0
    for j in range(two):
        for r in range(m):
            for a in range(w):
                sq[j, r, a] = Kb[j, r, a, a]
                if sq[j, r, a] > 0:
                    nvalid += 1
    at = atol[b]
    _rhs(Kb, h0b, colsb, yb, c, q, der, D, hbuf, wt, margins, k[0])
    nfev = 1
    accepted = 0
    rejected = 0
    t = 0.0
    rec = 0
    status = RUNNING
    while rec < T and record_at[rec] <= 0.0:
        _store(rec, b, c, sq, margins, want_error, want_coef, loss_out, error_out, coef_out)
        rec += 1
    loss_cur = _loss(margins)
    if stop_loss > 0 and loss_cur <= stop_loss:
        status = STOPPED
    # initial step (Hairer, Norsett and Wanner, II.4; scipy's select_initial_step), norms in units of atol
    d1 = 0.0
    for j in range(two):
        for r in range(m):
            for a in range(w):
                if sq[j, r, a] > 0:
                    d1 += (float(k[0, j, r, a]) * float(sq[j, r, a]) / at) ** 2
    d1 = math.sqrt(d1 / max(nvalid, 1))
    h_first = 1e-6
    for j in range(two):
        for r in range(m):
            for a in range(w):
                tmp[j, r, a] = c[j, r, a] + dt(h_first) * k[0, j, r, a]
    if status == RUNNING:
        _rhs(Kb, h0b, colsb, yb, tmp, q, der, D, hbuf, wt, margins_tmp, k[1])
        nfev += 1
    d2 = 0.0
    for j in range(two):
        for r in range(m):
            for a in range(w):
                if sq[j, r, a] > 0:
                    d2 += (float(k[1, j, r, a] - k[0, j, r, a]) * float(sq[j, r, a]) / at) ** 2
    d2 = math.sqrt(d2 / max(nvalid, 1)) / h_first
    big = max(d1, d2)
    if big <= 1e-15 or not math.isfinite(big):
        h1 = max(1e-6, h_first * 1e-3)
    else:
        h1 = (0.01 / big) ** (-err_exp)
    h = min(100 * h_first, h1, t_end)
    rejected_before = False
    while status == RUNNING:
        if t >= t_end:
            status = REACHED
            break
        if accepted + rejected >= max_steps:
            status = FAILED
            break
        last = t + h >= t_end
        if last:
            h = t_end - t
        for s in range(1, S):
            _stage_point(c, k, A, s, h, tmp)
            if s == S - 1:
                _rhs(Kb, h0b, colsb, yb, tmp, q, der, D, hbuf, wt, margins_new, k[s])
            else:
                _rhs(Kb, h0b, colsb, yb, tmp, q, der, D, hbuf, wt, margins_tmp, k[s])
        nfev += S - 1
        for j in range(two):
            for r in range(m):
                for a in range(w):
                    y_new[j, r, a] = tmp[j, r, a]  # the last stage is evaluated at the new point (FSAL)
        err = _error_norm(c, y_new, k, E, h, sq, at, rtol, nvalid, ebuf)
        if math.isfinite(err) and err <= 1.0:
            t_new = t_end if last else t + h
            stopped = False
            theta_stop = 1.0
            if stop_loss > 0:
                loss_new = _loss(margins_new)
                if loss_new <= stop_loss:
                    stopped = True
                    # Illinois on g(theta) = log L(theta) - log stop_loss: g(0) > 0 >= g(1)
                    ls = math.log(stop_loss)
                    ta, ga = 0.0, math.log(loss_cur) - ls
                    tb, gb = 1.0, math.log(max(loss_new, 1e-300)) - ls
                    for jj in range(two):
                        for r in range(m):
                            for a in range(w):
                                c_stop[jj, r, a] = y_new[jj, r, a]
                    for i in range(n):
                        margins_stop[i] = margins_new[i]
                    side = 0
                    for _ in range(STOP_ITERATIONS):
                        if gb > -STOP_RTOL or tb - ta < 1e-12:
                            break
                        th = (ta * gb - tb * ga) / (gb - ga)
                        if not (ta < th < tb):
                            th = 0.5 * (ta + tb)
                        _dense(c, k, Pd, h, th, tmp)
                        _rhs(Kb, h0b, colsb, yb, tmp, q, der, D, hbuf, wt, margins_tmp, scratch)
                        nfev += 1
                        lt = _loss(margins_tmp)
                        g = math.log(max(lt, 1e-300)) - ls
                        if g <= 0:
                            tb, gb = th, g
                            for jj in range(two):
                                for r in range(m):
                                    for a in range(w):
                                        c_stop[jj, r, a] = tmp[jj, r, a]
                            for i in range(n):
                                margins_stop[i] = margins_tmp[i]
                            if side == -1:
                                ga *= 0.5
                            side = -1
                        else:
                            ta, ga = th, g
                            if side == 1:
                                gb *= 0.5
                            side = 1
                    theta_stop = tb
            t_lim = t + theta_stop * h if stopped else t_new
            while rec < T and record_at[rec] <= t_lim:
                tau = record_at[rec]
                if not stopped and tau >= t_new:
                    _store(rec, b, y_new, sq, margins_new, want_error, want_coef, loss_out, error_out, coef_out)
                else:
                    _dense(c, k, Pd, h, (tau - t) / h, tmp)
                    _rhs(Kb, h0b, colsb, yb, tmp, q, der, D, hbuf, wt, margins_tmp, scratch)
                    nfev += 1
                    _store(rec, b, tmp, sq, margins_tmp, want_error, want_coef, loss_out, error_out, coef_out)
                rec += 1
            accepted += 1
            if stopped:
                for j in range(two):
                    for r in range(m):
                        for a in range(w):
                            c[j, r, a] = c_stop[j, r, a]
                for i in range(n):
                    margins[i] = margins_stop[i]
                t = t_lim
                status = STOPPED
                break
            for j in range(two):
                for r in range(m):
                    for a in range(w):
                        c[j, r, a] = y_new[j, r, a]
                        k[0, j, r, a] = k[S - 1, j, r, a]
            for i in range(n):
                margins[i] = margins_new[i]
            loss_cur = _loss(margins)
            t = t_new
            if last:
                status = REACHED
                break
            factor = MAX_FACTOR if err == 0.0 else min(MAX_FACTOR, SAFETY * err ** err_exp)
            if rejected_before:
                factor = min(1.0, factor)
            h *= factor
            rejected_before = False
        else:
            factor = MIN_FACTOR if not math.isfinite(err) else max(MIN_FACTOR, SAFETY * err ** err_exp)
            h *= factor
            rejected += 1
            rejected_before = True
            if h < 10.0 * eps * max(abs(t), 1.0):
                status = FAILED
    while rec < T:  # after an early stop or a failure: the final state
        _store(rec, b, c, sq, margins, want_error, want_coef, loss_out, error_out, coef_out)
        rec += 1
    for j in range(two):
        for r in range(m):
            for a in range(w):
                c_out[b, j, r, a] = c[j, r, a]
    nfev_out[b] = nfev
    accepted_out[b] = accepted
    rejected_out[b] = rejected
    status_out[b] = status
    t_out[b] = t


if AVAILABLE:
    # reassociation lets LLVM vectorize the dot products; no 'nnan'/'ninf', so the finiteness checks stay
    _FAST = {"reassoc", "contract"}
    _rhs = numba.njit(cache=True, nogil=True, fastmath=_FAST)(_rhs)
    _loss = numba.njit(cache=True, nogil=True, fastmath=_FAST)(_loss)
    _store = numba.njit(cache=True, nogil=True, fastmath=_FAST)(_store)
    _dense = numba.njit(cache=True, nogil=True, fastmath=_FAST)(_dense)
    _error_norm = numba.njit(cache=True, nogil=True, fastmath=_FAST)(_error_norm)
    _stage_point = numba.njit(cache=True, nogil=True, fastmath=_FAST)(_stage_point)
    _integrate = numba.njit(cache=True, nogil=True, fastmath=_FAST)(_integrate)


def _integrate_block(block, args):
    for b in block:
        _integrate(b, *args)


def run_networks(K, h0, cols, y, atol, *, tableau, rtol, t_end, record_at, stop_loss, max_steps, q, want_error,
                 want_coefficients, threads: int | None = None):
    """Integrate the flow of every network to ``t_end``; NumPy arrays in, NumPy arrays out.

    K [B, 2, m, w, w], h0 [B, 2, m, w], cols [B, n, P], y [B, n], atol [B] (float64);
    ``tableau`` a :class:`prunebook.engines.flow.Tableau`; ``stop_loss`` <= 0 turns the early stop off;
    ``threads`` worker threads (default: the number of CPUs).
    Returns a dict: loss [T, B], error [T, B] or None, coef (c ||v_a ⊙ m||^2) [T, B, 2, m, w] or None,
    c [B, 2, m, w], evaluations, accepted, rejected [B] (int64), status [B] (int8), t [B] (float64).
    """
    if not AVAILABLE:
        raise RuntimeError("numba is not installed: use the torch path of the flow")
    B, two, m, w, _ = K.shape
    record_at = np.asarray(record_at, dtype=np.float64)
    T = len(record_at)
    dtype = K.dtype
    loss = np.empty((T, B), dtype=np.float64)
    error = np.empty((T, B), dtype=np.float64) if want_error else np.empty((1, 1), dtype=np.float64)
    coef = np.empty((T, B, two, m, w), dtype=dtype) if want_coefficients else np.empty((1, 1, 1, 1, 1), dtype=dtype)
    out = {"c": np.empty((B, two, m, w), dtype=dtype), "evaluations": np.zeros(B, dtype=np.int64),
           "accepted": np.zeros(B, dtype=np.int64), "rejected": np.zeros(B, dtype=np.int64),
           "status": np.zeros(B, dtype=np.int8), "t": np.zeros(B, dtype=np.float64)}
    args = (np.ascontiguousarray(K), np.ascontiguousarray(h0), np.ascontiguousarray(cols, dtype=np.int64),
            np.ascontiguousarray(y), np.ascontiguousarray(atol, dtype=np.float64), tableau.A, tableau.E, tableau.P,
            float(tableau.error_exponent), float(rtol), float(t_end), record_at, float(stop_loss), int(max_steps),
            float(q), float(np.finfo(dtype).eps), bool(want_error), bool(want_coefficients), loss, error, coef,
            out["c"], out["evaluations"], out["accepted"], out["rejected"], out["status"], out["t"])
    # The kernel releases the GIL: worker threads take small blocks of networks from a shared list
    # (networks need very different numbers of steps, so equal static shares would leave cores idle).
    blocks = [range(s, min(s + BLOCK, B)) for s in range(0, B, BLOCK)]
    workers = max(1, min(threads or os.cpu_count() or 1, len(blocks)))
    if workers == 1:
        for block in blocks:
            _integrate_block(block, args)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda block: _integrate_block(block, args), blocks))
    out["loss"] = loss
    out["error"] = error if want_error else None
    out["coef"] = coef if want_coefficients else None
    return out
