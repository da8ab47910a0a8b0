"""The coefficient engine's compiled CPU kernel (numba): every step of a network in one loop.

The torch formulation (:mod:`prunebook.engines.coefficients`) launches about a dozen small tensor
operations per step, and at the book's sizes their dispatch, not the arithmetic, sets the pace.
This kernel runs all the steps of one network in a single compiled loop while that network's
Gram matrices (2m (n+2)^2 numbers, about 0.4 MB at n = 50) stay in the core's cache, and spreads
networks over the cores. It computes exactly what :func:`prunebook.engines.coefficients.evaluate`
and :func:`~prunebook.engines.coefficients.update` compute (the order of floating-point sums
differs; the tests compare both in float64), with the same divergence rule: a network whose margins
or next coefficients are not finite keeps its last finite iterate and is flagged.

``h = h0 + K c`` is computed as dot products of the rows of the (symmetric) Gram matrices with c,
four rows at a time. A network whose update rounds to no change at all (its loss so small that
every increment is below half an ulp of its coefficient) is at a fixed point of float GD: every
later step would repeat it, so the kernel stops stepping it (exactly the same result, and often
most of the work at lr = 1).
"""

from __future__ import annotations

import math

import numpy as np

try:  # numba is a dependency; the torch path remains for other devices and as the reference
    import numba

    AVAILABLE = True
except ImportError:  # pragma: no cover - depends on the environment
    numba = None
    AVAILABLE = False

__all__ = ["AVAILABLE", "run_networks"]


def _kernel(K, h0, cols, y, lr, q, steps, record_at, want_error, want_coefficients,
            loss_out, error_out, coef_out, c_out, diverged_out, done_out):  # pragma: no cover - compiled
    B, two, m, w, _ = K.shape
    n = y.shape[1]
    P = cols.shape[2]
    T = record_at.shape[0]
    dt = K.dtype.type
    zero = dt(0.0)
    for b in numba.prange(B):
        c = np.zeros((two, m, w), dtype=K.dtype)
        c_new = np.zeros((two, m, w), dtype=K.dtype)
        h = np.empty(w, dtype=K.dtype)
        der = np.empty((two, m, w), dtype=K.dtype)
        D = np.empty(w, dtype=K.dtype)
        wt = np.empty(w, dtype=K.dtype)
        margins = np.empty(n, dtype=K.dtype)
        diverged = False
        done = False  # the update rounds to no change: every later step is this one
        rec = 0
        for t in range(steps + 1):
            recording = rec < T and record_at[rec] == t
            if (diverged or done) and not recording:
                continue  # a frozen network is evaluated only to record it
            # evaluate: pre-activations h = h0 + K c (K symmetric: row a of K times c), sigma, sigma'/q
            for a in range(w):
                D[a] = 0
            for j in range(two):
                sj = dt(1.0) if j == 0 else dt(-1.0)
                for r in range(m):
                    cr = c[j, r]
                    Kr = K[b, j, r]
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
                        h[a] = h0[b, j, r, a] + s0
                        h[a + 1] = h0[b, j, r, a + 1] + s1
                        h[a + 2] = h0[b, j, r, a + 2] + s2
                        h[a + 3] = h0[b, j, r, a + 3] + s3
                        a += 4
                    while a < w:
                        s0 = zero
                        for col in range(w):
                            s0 += Kr[a, col] * cr[col]
                        h[a] = h0[b, j, r, a] + s0
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
                            d = ra ** (q - 1) if ra > 0 else zero
                            dr[a] = d
                            D[a] += sj * (ra * d)
            total = zero
            for i in range(n):
                acc = zero
                for p in range(P):
                    acc += D[cols[b, i, p]]
                margins[i] = y[b, i] * acc / m
                total += margins[i]
            if recording:
                loss = 0.0
                wrong = 0
                for i in range(n):
                    z = -float(margins[i])
                    loss += z + math.log1p(math.exp(-z)) if z > 0 else math.log1p(math.exp(z))
                    if margins[i] <= 0:
                        wrong += 1
                loss_out[rec, b] = loss / n
                if want_error:
                    error_out[rec, b] = wrong / n
                if want_coefficients:
                    for j in range(two):
                        for r in range(m):
                            for a in range(w):
                                coef_out[rec, b, j, r, a] = c[j, r, a] * K[b, j, r, a, a]
                rec += 1
            if t == steps or diverged or done:
                continue
            # update: per-column GD weights, then c += j * weight * sigma'/q
            for a in range(w):
                wt[a] = 0
            for i in range(n):
                s = 1.0 / (1.0 + math.exp(float(margins[i])))
                v = dt(lr * q * float(y[b, i]) * s / (n * m))
                for p in range(P):
                    wt[cols[b, i, p]] += v
            check = total
            moved = False
            for j in range(two):
                sj = dt(1.0) if j == 0 else dt(-1.0)
                for r in range(m):
                    for a in range(w):
                        new = c[j, r, a] + der[j, r, a] * (wt[a] * sj)
                        c_new[j, r, a] = new
                        check += new
                        moved |= new != c[j, r, a]
            if not math.isfinite(check):
                diverged = True
            elif not moved:
                done = True
            else:
                c, c_new = c_new, c
        diverged_out[b] = diverged
        done_out[b] = done
        for j in range(two):
            for r in range(m):
                for a in range(w):
                    c_out[b, j, r, a] = c[j, r, a]


# reassociation lets LLVM vectorize the dot products; no 'nnan'/'ninf', so the finiteness checks stay
_compiled = (numba.njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "contract"})(_kernel)
             if AVAILABLE else None)


def run_networks(K, h0, cols, y, *, lr, q, steps, record_at, want_error, want_coefficients):
    """Run ``steps`` GD steps on every network; NumPy arrays in, NumPy arrays out.

    K [B, 2, m, w, w], h0 [B, 2, m, w], cols [B, n, P] (the column of patch p of sample i), y [B, n].
    Returns (loss [T, B], error [T, B] or None, c * diag(K) [T, B, 2, m, w] or None, c [B, 2, m, w], diverged [B],
    done [B]): ``done`` marks networks that reached a fixed point of float GD and stopped stepping early.
    """
    if not AVAILABLE:
        raise RuntimeError("numba is not installed: use the torch path of the coefficient engine")
    B, two, m, w, _ = K.shape
    T = len(record_at)
    dtype = K.dtype
    loss = np.empty((T, B), dtype=dtype)
    error = np.empty((T, B), dtype=dtype) if want_error else np.empty((1, 1), dtype=dtype)
    coef = np.empty((T, B, two, m, w), dtype=dtype) if want_coefficients else np.empty((1, 1, 1, 1, 1), dtype=dtype)
    c = np.empty((B, two, m, w), dtype=dtype)
    diverged = np.zeros(B, dtype=np.bool_)
    done = np.zeros(B, dtype=np.bool_)
    _compiled(np.ascontiguousarray(K), np.ascontiguousarray(h0), np.ascontiguousarray(cols, dtype=np.int64),
              np.ascontiguousarray(y), float(lr), float(q), int(steps), np.asarray(record_at, dtype=np.int64),
              bool(want_error), bool(want_coefficients), loss, error, coef, c, diverged, done)
    return loss, (error if want_error else None), (coef if want_coefficients else None), c, diverged, done
