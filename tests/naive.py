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
        if not (0 < a < np.inf and 0 < b < np.inf):
            return 0, T(1), T(1)  # one probability side is all 0: no coincidence
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


# -- hardware-aware training (spec inference.md sections 10-12) ------------------------------
def round_half_away(v):
    """C's roundf: nearest integer, halves away from zero (exact in float64 for float32 v)."""
    v = np.asarray(v, np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def modifier_amax(W, mod):
    if not mod.rel_to_actual_wmax or mod.type.name == "COPY":
        return f32(mod.assumed_wmax)
    core = W[:, :-1] if mod.copy_last_column else W
    a = f32(np.abs(core).max()) if core.size else f32(0)
    return a if a > 0 else f32(1)


def modify(W, mod, xi, u_round, u_drop):
    """W_fb of the weight modifier (section 10), in float32, from the given standard normals
    ``xi``, rounding uniforms ``u_round`` and drop-connect uniforms ``u_drop`` (one per
    element each; PCM_NOISE is in :func:`pcm_noise_modifier`)."""
    T = f32
    W = W.astype(T)
    amax = modifier_amax(W, mod)
    kind = mod.type.name
    std = T(mod.std_dev)
    res = T(mod.res)

    def R(v):
        if mod.sto_round:
            return (round_half_away(v / res + (u_round.astype(T) - T(0.5))) * res).astype(T)
        return (round_half_away(v / res) * res).astype(T)

    def poly(aw):
        sig = np.full_like(aw, T(mod.coeffs[0]))
        for k, c in enumerate(mod.coeffs[1:], start=1):
            sig = sig + T(c) * aw.astype(np.float64) ** k
        return sig.astype(T)

    out = W.copy()
    if kind == "DISCRETIZE" and res > 0:
        out = amax * R(W / amax)
    elif kind == "MULT_NORMAL" and std > 0:
        out = W + W * (std * amax) * xi
    elif kind == "ADD_NORMAL" and std > 0:
        out = W + (std * amax) * xi
    elif kind == "DISCRETIZE_ADD_NORMAL" and (res > 0 or std > 0):
        q = amax * R(W / amax) if res > 0 else amax * (W / amax)
        out = q + (std * amax) * xi
    elif kind == "DOREFA" and res > 0:
        scale = abs(T(mod.dorefa_clip) / T(np.tanh(amax)))
        out = R(np.tanh(W).astype(T) * scale)
    elif kind == "POLY" and std > 0 and mod.coeffs:
        out = W + amax * (poly(np.abs(W) / amax) * std) * xi
    elif kind == "PROG_NOISE" and std > 0 and mod.coeffs:
        v = np.abs(W + amax * (poly(np.abs(W) / amax) * (std / T(mod.g_max))) * xi)
        out = np.where(W < 0, -v, v)
    out = out.astype(T)
    if mod.pdrop > 0:
        out[u_drop < mod.pdrop] = 0
    if mod.copy_last_column:
        out[:, -1] = W[:, -1]
    return out


def pcm_noise_modifier(W, mod, gen):
    """The PCM_NOISE modifier (aihwkit's CUDA kernel) with NumPy draws, in float64."""
    W = np.asarray(W, np.float64)
    amax = float(modifier_amax(W.astype(f32), mod))
    gmax, scale, t0 = mod.g_max, mod.std_dev, mod.pcm_t0
    t = mod.pcm_t_inference + t0
    g = np.clip(W, -amax, amax) * gmax / amax
    g[np.abs(g) <= mod.pcm_zero_thres * scale * 0.26348] = 0.0
    negative = g < 0
    shape = g.shape
    if mod.pcm_prob_at_reset > 0:
        g[gen.random(shape) < mod.pcm_prob_at_reset] = 0.0
    if mod.pcm_prob_at_gmax > 0:
        hit, up = gen.random(shape) < mod.pcm_prob_at_gmax, gen.random(shape) > 0.5
        g = np.where(hit, np.where(up, g - gmax, g + gmax), g)
    if mod.pcm_prob_at_random > 0:
        hit, level = gen.random(shape) < mod.pcm_prob_at_random, gen.random(shape) * gmax
        g = np.where(hit, np.where(g > 0, level, -level), g)
    g = np.clip(g, -gmax, gmax)
    ag = np.abs(g / gmax)
    g_prog = g + scale * (0.26348 + 1.9650 * ag - 1.1731 * ag ** 2) * gen.standard_normal(shape)
    ag_prog = np.abs(g_prog / gmax)
    g_drift = g_prog
    if t > t0:
        sig_nu = np.clip(-0.0125 * np.log(np.maximum(ag_prog, 1e-6)) - 0.0059, 0.008, 0.045)
        nu = np.abs(gen.standard_normal(shape) * sig_nu)
        g_drift = g_prog * (t / t0) ** (-nu)
    q = np.minimum(0.0088 / np.maximum(ag_prog ** 0.65, 1e-3), 0.2)
    read = q * np.sqrt(np.log((t + 250e-9) / (2 * 250e-9)))
    g_final = g_drift + scale * np.abs(g_drift) * read * gen.standard_normal(shape)
    w = np.abs(g_final / gmax * amax)
    out = np.where(negative, -w, w)
    out[g == 0] = 0.0
    return out


def clip_value(W, clip):
    """Clipping value c of section 11 (float64; <= 0 means no clipping)."""
    W = np.asarray(W, np.float64)
    kind = clip.type.name
    if kind == "FIXED_VALUE":
        return clip.fixed_value
    if kind == "AVERAGE_CHANNEL_MAX":
        c = np.abs(W).max(axis=1).mean()
    elif kind == "LAYER_GAUSSIAN":
        if W.size < 2:  # aihwkit: std 0/0 = NaN, which loses to a positive fixed value
            return clip.fixed_value if clip.fixed_value > 0 else -1.0
        c = clip.sigma * W.std(ddof=1)
    else:
        return -1.0
    return min(c, clip.fixed_value) if clip.fixed_value > 0 else c


def remap(W, s, remap_par):
    """(W, s) after remapping (section 12), float64."""
    W, s = np.asarray(W, np.float64).copy(), np.asarray(s, np.float64).copy()
    kind = remap_par.type.name
    wmax = remap_par.remapped_wmax
    if kind == "LAYERWISE_SYMMETRIC":
        a = np.abs(W).max() / wmax
        if a > 0:
            return W / a, s * a
        return W, s
    if kind != "CHANNELWISE_SYMMETRIC":
        return W, s
    a = np.abs(W).max(axis=1)
    if remap_par.max_scale_range <= 0:
        a = a / wmax
        a[a == 0] = 1.0
        return W / a[:, None], s * a
    m = max(s.min(), 0.0)
    if m > 0 and remap_par.max_scale_ref != 0:
        m = max(m, remap_par.max_scale_ref)
    new = np.where(a > 0, a * s, s)
    if m > 0:
        new = np.minimum(new, m * remap_par.max_scale_range)
    return W * (s / new)[:, None], new
