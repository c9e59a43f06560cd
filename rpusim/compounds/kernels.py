"""Numba kernels of the compounds: the buffered transfers (Tiki-taka v2-v4), mixed precision,
the one-sided refresh, the reductions and the vector cells' routing.

All arithmetic stays in the dtype of the arrays: the scalar arguments are passed as NumPy
scalars of that dtype by the callers (a Python float would promote float32 to float64).
"""

import numpy as np
from numba import njit

from rpusim.kernels.rng import init_stream, normal, stream_key
from rpusim.kernels.update import clip_as_numpy, device_step

__all__ = ["buffered_transfer", "chopped_transfer", "chopped_transfer_into", "dynamic_transfer",
           "dynamic_transfer_into", "accumulate_chi",
           "apply_up_pulses", "weighted_sum2", "chopped_sum2", "add_scaled", "refresh_plan",
           "reset_at", "split_counts", "mixed_transfer", "group_by_device"]


@njit(cache=True)
def weighted_sum2(out, g0, a0, g1, a1):
    """``out = g0 * a0`` then ``out += g1 * a1``, element by element in the arrays' dtype:
    the operations of NumPy's ``np.multiply(g0, a0, out=out); out += g1 * a1`` (the same
    bits), in one call instead of three and without the temporary."""
    o = out.reshape(-1)
    b0 = a0.reshape(-1)
    b1 = a1.reshape(-1)
    for k in range(o.shape[0]):
        o[k] = g0 * b0[k]
        o[k] += g1 * b1[k]


@njit(cache=True)
def chopped_sum2(out, g0, a0, s_d, s_x, g1, a1):
    """:func:`weighted_sum2` of ``outer(s_d, s_x) * a0`` and ``a1`` (2-d, C-contiguous):
    NumPy's ``np.multiply(g0, np.outer(s_d, s_x) * a0, out=out); out += g1 * a1``
    element by element, the same bits, without the two temporaries. A chopped transfer's
    reduction (``s_d``, ``s_x``: the output and input chopper signs, +-1 in the dtype)."""
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = g0 * ((s_d[i] * s_x[j]) * a0[i, j])
            out[i, j] += g1 * a1[i, j]


@njit(cache=True)
def add_scaled(out, g, a):
    """``out += g * a`` element by element in the arrays' dtype: NumPy's operations (the
    same bits) without the temporary ``g * a``."""
    o = out.reshape(-1)
    b = a.reshape(-1)
    for k in range(o.shape[0]):
        o[k] += g * b[k]


@njit(cache=True)
def refresh_plan(p, q, p_max, q_max, upper, lower, flag, flat, x1, d1, x0, d0):
    """What a one-sided cell's refresh does after its reads ``p`` (of ``g+``) and ``q`` (of
    ``g-``), both (out, in), in one pass; the scalars in the reads' dtype, as passed.

    The criterion into ``flag``: with ``p_rel = p / p_max``, ``q_rel = q / q_max``, a pair
    is flagged when ``p > q`` and ``p_rel > upper`` and ``q_rel > lower``, or otherwise
    ``p_rel > lower`` and ``q_rel > upper`` (NaN compares false, as in NumPy). ``flat``
    (>= out * in) gets the flagged pairs' C-order flat indices. The rewrites: ``g+`` gets
    ``p - q`` where flagged and ``p > q``, ``g-`` gets ``q - p`` where flagged and not; each
    as an update of one sample per column with something to write (in column order): the
    one-hot input into ``x1``/``x0`` (>= in, in), ``d = -target`` into ``d1``/``d0``
    (>= in, out). Returns (flagged, samples of ``g+``, samples of ``g-``)."""
    n_out, n_in = p.shape
    zero = p_max - p_max
    count = 0
    for i in range(n_out):
        for j in range(n_in):
            a = p[i, j]
            b = q[i, j]
            pr = a / p_max
            qr = b / q_max
            if a > b:
                f = pr > upper and qr > lower
            else:
                f = pr > lower and qr > upper
            flag[i, j] = f
            if f:
                flat[count] = i * n_in + j
                count += 1
    n1 = 0
    n0 = 0
    if count == 0:
        return count, n1, n0
    for j in range(n_in):
        any1 = False
        any0 = False
        for i in range(n_out):
            if flag[i, j]:
                diff = p[i, j] - q[i, j]
                if p[i, j] > q[i, j]:
                    any1 = any1 or diff != zero
                else:
                    any0 = any0 or -diff != zero
        for used, x, d, n, up in ((any1, x1, d1, n1, True), (any0, x0, d0, n0, False)):
            if not used:
                continue
            x[n, :] = zero
            x[n, j] = zero + 1
            for i in range(n_out):
                target = zero
                if flag[i, j] and (p[i, j] > q[i, j]) == up:
                    diff = p[i, j] - q[i, j]
                    target = diff if up else -diff
                d[n, i] = -target
        n1 += any1
        n0 += any0
    return count, n1, n0


@njit(cache=True)
def split_counts(w, total, down, up):
    """A counting device's coincidences split by sign: ``w`` holds up minus down pulses
    (whole numbers, rounded half to even as ``np.rint``), ``total`` up plus down; ``down``
    and ``up`` get the pulses of each sign. Returns whether each got any."""
    any_down = False
    any_up = False
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            net = np.int64(np.rint(w[i, j]))
            n = total[i, j]
            dn = (n - net) // 2
            un = (n + net) // 2
            down[i, j] = dn
            up[i, j] = un
            any_down = any_down or dn != 0
            any_up = any_up or un != 0
    return any_down, any_up


@njit(cache=True)
def reset_at(w, reset, w_max, w_min, sel, noise, std):
    """Reset the elements of C-order flat indices ``sel`` of ``w`` (C-contiguous): ``reset +
    std * noise[k]`` (without the noise when ``noise`` is empty), clipped to the element's
    bounds as ``np.maximum(np.minimum(v, w_max), w_min)`` (NaN propagates)."""
    o = w.reshape(-1)
    r = reset.reshape(-1)
    hi_ = w_max.reshape(-1)
    lo_ = w_min.reshape(-1)
    noisy = noise.shape[0] > 0
    for k in range(sel.shape[0]):
        e = sel[k]
        v = r[e]
        if noisy:
            v = v + std * noise[k]
        o[e] = clip_as_numpy(v, lo_[e], hi_[e])


@njit(cache=True)
def buffered_transfer(H, cols, V, lr, theta, nmax, keep, momentum, forget):
    """TTv2 buffer step (compounds §6) for the slices ``cols``; returns the counts.

    ``H[:, c]`` is the buffer of slice ``c`` (the caller passes the transpose in rows mode);
    ``V[k]`` the read of slice ``cols[k]``. ``keep = 1 - clamp(momentum, 0, 1)``.
    """
    nr, n = V.shape
    counts = np.zeros((nr, n), V.dtype)
    zero = V.dtype.type(0)
    for k in range(nr):
        c = cols[k]
        for r in range(n):
            omega = H[r, c] + lr * V[k, r]
            steps = np.trunc(omega / theta)
            steps = min(max(steps, -nmax), nmax)
            if steps != zero:
                if forget:
                    omega = momentum * omega
                else:
                    omega = omega - keep * steps * theta
            H[r, c] = omega
            counts[k, r] = steps
    return counts


@njit(cache=True)
def chopped_transfer(H, c, v, chi, lam, nmax, keep, momentum, forget, no_buffer):
    """TTv3 buffer step for slice ``c`` (compounds §7 step 4); returns the counts.

    ``chi[r]`` is the chopper sign of element ``r`` of the slice.
    """
    counts = np.zeros(v.shape[0], v.dtype)
    chopped_transfer_into(H, c, v, chi, lam, nmax, keep, momentum, forget, no_buffer, counts)
    return counts


@njit(cache=True)
def chopped_transfer_into(H, c, v, chi, lam, nmax, keep, momentum, forget, no_buffer, counts):
    """:func:`chopped_transfer` with the counts written into ``counts`` (for the per-sample
    loop, which keeps one array for them)."""
    n = v.shape[0]
    zero = v.dtype.type(0)
    one = v.dtype.type(1)
    for r in range(n):
        omega = zero if no_buffer else H[r, c]
        omega = omega + chi[r] * (v[r] * lam)
        steps = zero
        if abs(omega) >= one:
            steps = min(max(np.trunc(omega), -nmax), nmax)
            if forget:
                omega = momentum * omega
            else:
                omega = omega - keep * steps
        H[r, c] = omega
        counts[r] = steps


@njit(cache=True)
def dynamic_transfer(H, M, Pm, c, v, chi, lam, nmax, keep, momentum, forget, cap, beta, prev):
    """TTv4 step for slice ``c`` (compounds §8 step 4): change against the past mean.

    ``M``/``Pm`` are the running and past means; ``keep = 1 - momentum``; ``cap <= 0`` no cap.
    """
    counts = np.zeros(v.shape[0], v.dtype)
    dynamic_transfer_into(H, M, Pm, c, v, chi, lam, nmax, keep, momentum, forget, cap, beta,
                          prev, counts)
    return counts


@njit(cache=True)
def dynamic_transfer_into(H, M, Pm, c, v, chi, lam, nmax, keep, momentum, forget, cap, beta,
                          prev, counts):
    """:func:`dynamic_transfer` with the counts written into ``counts``."""
    n = v.shape[0]
    zero = v.dtype.type(0)
    one = v.dtype.type(1)
    for r in range(n):
        if prev:
            Pm[r, c] = M[r, c]
        dw = (v[r] - Pm[r, c]) * chi[r]
        omega = H[r, c] + dw * lam
        steps = zero
        if abs(omega) >= one:
            steps = min(max(np.trunc(omega), -nmax), nmax)
            if forget:
                omega = omega * momentum
            else:
                omega = omega - keep * steps
                if cap > zero:
                    omega = min(max(omega, -cap), cap)
        H[r, c] = omega
        counts[r] = steps
        M[r, c] = M[r, c] * (one - beta) + v[r] * beta


@njit(cache=True)
def mixed_transfer(chi, r0, eps, K, X):
    """Mixed precision's transfer of the rows ``r0, r0 + 1, ...`` (modulo the rows of ``chi``;
    as many as ``K`` has): ``K[k] = trunc(chi[row] / eps)`` and ``chi[row] -= K[k] * eps``
    in the dtype of ``chi`` (NumPy's operations on the fancy-indexed rows, the same bits),
    and ``X[k]`` the one-hot input of the row. Returns whether any ``K`` is not zero."""
    d, m = chi.shape
    some = False
    for k in range(K.shape[0]):
        row = (r0 + k) % d
        for j in range(m):
            q = np.trunc(chi[row, j] / eps)
            K[k, j] = q
            chi[row, j] -= q * eps
            some = some or q != 0
        for j in range(d):
            X[k, j] = 0
        X[k, row] = 1
    return some


@njit(cache=True)
def group_by_device(u, first, n, X, D, Xs, Ds, counts):
    """The samples of a vector cell's batch grouped by the device each one pulses, in order
    within each group (a stable sort): rows of ``X``, ``D`` into ``Xs``, ``Ds``, each
    device's count into ``counts`` (length ``n``, zeroed here); returns the last sample's
    device.

    ``SINGLE_RANDOM`` (``u``: one uniform draw per sample): device ``min(int(u n), n - 1)``,
    NumPy's ``np.minimum((u * n).astype(np.int64), n - 1)``. ``SINGLE_SEQUENTIAL`` (``u``
    empty): device ``(first + 1 + i) % n`` for sample ``i``. What ``np.argsort(kind=
    "stable")``, two fancy-indexed copies and ``np.bincount`` gave, in two passes."""
    m = X.shape[0]
    idx = np.empty(m, np.int64)
    for k in range(n):
        counts[k] = 0
    for i in range(m):
        if u.shape[0]:
            k = min(np.int64(u[i] * n), n - 1)
        else:
            k = (first + 1 + i) % n
        idx[i] = k
        counts[k] += 1
    start = np.empty(n, np.int64)
    total = 0
    for k in range(n):
        start[k] = total
        total += counts[k]
    for i in range(m):
        k = idx[i]
        row = start[k]
        start[k] = row + 1
        for j in range(X.shape[1]):
            Xs[row, j] = X[i, j]
        for j in range(D.shape[1]):
            Ds[row, j] = D[i, j]
    return idx[m - 1] if m else -1


@njit(cache=True)
def accumulate_chi(chi, X, D, lr):
    """``chi += lr * d x^T`` sample by sample, in the dtype of ``chi`` (compounds §9).

    Row by row, the samples inside: each element still adds its samples' terms in sample
    order (the same sums), while a row of ``chi`` stays in the cache over the batch (sample
    by sample, the whole of ``chi`` went through it once per sample)."""
    m, nx = X.shape
    nd = D.shape[1]
    for i in range(nd):
        for s in range(m):
            a = lr * D[s, i]
            if a == 0:
                continue
            for j in range(nx):
                chi[i, j] += a * X[s, j]


def _apply_up_pulses(W, P, Wp, counts, key, params, wn_sigma, counters, count_on):
    """``counts[i, j]`` up pulses on every element through the device's step function
    (OneSided devices only ever receive up pulses, so their order does not matter)."""
    nd, nx = counts.shape
    states = np.zeros((nd, 2), np.uint64)
    use_wp = wn_sigma > 0
    target = Wp if use_wp else W
    for i in range(nd):
        init_stream(states, i, stream_key(key, i, 7))
        for j in range(nx):
            n = counts[i, j]
            if n == 0:
                continue
            for _ in range(n):
                target[i, j] = device_step(params, P, i, j, target[i, j], True, states)
            if use_wp:
                W[i, j] = Wp[i, j] + wn_sigma * normal(states, i)
            if count_on:
                counters[i, j] += n


# custom devices (defined outside rpusim) must not enter numba's on-disk cache
_apply_up_cached = njit(cache=True)(_apply_up_pulses)
_apply_up_uncached = njit(cache=False)(_apply_up_pulses)


def apply_up_pulses(W, P, Wp, counts, key, params, wn_sigma, counters):
    """Apply ``counts`` up pulses per element (see :func:`_apply_up_pulses`)."""
    count_on = counters is not None
    if counters is None:
        counters = np.zeros((1, 1), np.int64)
    builtin = type(params).__module__.startswith("rpusim.")
    fn = _apply_up_cached if builtin else _apply_up_uncached
    fn(W, P, Wp, counts, key, params, W.dtype.type(wn_sigma), counters, count_on)
