"""Slow, obviously-correct NumPy references, written from the spec (not from the kernels)."""

import numpy as np

f32 = np.float32


def bl_a_b(x, d, lr, g, desired_bl, fixed_bl, ubm, um, um_grad_scale=1.0, T=f32):
    """Bit length and scales of one sample (update spec §4), every operation in dtype T."""
    lr, g = T(lr), T(g)
    if lr == 0:
        return 0, T(1), T(1)
    if fixed_bl or ubm or not (g * T(desired_bl) < lr):
        bl = desired_bl
        a = b = np.sqrt(lr / (g * T(bl)))
    else:
        bl = max(int(np.ceil(lr / g)), 1)
        a = b = T(1)
    if um or ubm:
        x_max = T(np.max(np.abs(x)))
        d_max = T(np.max(np.abs(d)))
        if x_max == 0 or d_max == 0:
            return 0, T(1), T(1)
        x_val = x_max
        d_val = T(um_grad_scale) * d_max
        k = ((lr * x_val) * d_val) / g
        if ubm:
            bl = min(int(np.ceil(k)), desired_bl)
            a = b = np.sqrt(lr / (g * T(bl)))
        if k > T(desired_bl):
            d_val = d_val * (T(desired_bl) / k)
        a = a * np.sqrt(x_val / d_val)
        b = b * np.sqrt(d_val / x_val)
    return bl, T(a), T(b)


def disc(v, res, T=f32):
    return v if res <= 0 else np.rint(v / T(res)) * T(res)


def det_implicit_counts(x, d, lr, g, upd, T=f32):
    """Signed pulse counts of one sample (positive = down pulse), update spec §6.2."""
    bl, a, b = bl_a_b(x, d, lr, g, upd.desired_bl, upd.fixed_bl, upd.update_bl_management,
                      upd.update_management, upd.um_grad_scale, T)
    if bl == 0:
        return np.zeros((len(d), len(x)), np.int64)
    qx = np.clip(disc(np.abs(x).astype(T) * b, upd.x_res_implicit, T), 0, 1).astype(T)
    qd = np.clip(disc(np.abs(d).astype(T) * a, upd.d_res_implicit, T), 0, 1).astype(T)
    sx = np.where(x >= 0, qx, -qx).astype(T)
    sd = np.where(d >= 0, qd, -qd).astype(T)
    counts = np.empty((len(d), len(x)), np.int64)
    for i in range(len(d)):
        for j in range(len(x)):
            counts[i, j] = int(np.rint(T(sd[i] * T(bl)) * sx[j]))
    return counts


def mean_counts(x, d, lr, g, upd, T=f32):
    """Signed pulse counts of one sample for MEAN_COUNT (update spec §6.1)."""
    bl, a, b = bl_a_b(x, d, lr, g, upd.desired_bl, upd.fixed_bl, upd.update_bl_management,
                      upd.update_management, upd.um_grad_scale, T)
    if bl == 0:
        return np.zeros((len(d), len(x)), np.int64)
    cx = np.clip(np.rint(T(bl) * disc(np.abs(x).astype(T) * b, upd.res, T)), 0, bl).astype(T)
    cd = np.clip(np.rint(T(bl) * disc(np.abs(d).astype(T) * a, upd.res, T)), 0, bl).astype(T)
    counts = np.empty((len(d), len(x)), np.int64)
    for i in range(len(d)):
        for j in range(len(x)):
            n = int(np.rint(T(cd[i] / T(bl)) * cx[j]))
            s = np.sign(x[j]) * np.sign(d[i])
            counts[i, j] = n if s > 0 else -n
    return counts


def apply_constant_step(w, counts, hidden, T=f32):
    """Apply signed counts to a noise-free ConstantStep array, clipping after every pulse."""
    w = w.astype(T).copy()
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            n = counts[i, j]
            for _ in range(abs(n)):
                if n > 0:
                    w[i, j] = T(w[i, j] - hidden["dwmin_down"][i, j])
                else:
                    w[i, j] = T(w[i, j] + hidden["dwmin_up"][i, j])
                w[i, j] = min(max(w[i, j], hidden["min_bound"][i, j]), hidden["max_bound"][i, j])
    return w
