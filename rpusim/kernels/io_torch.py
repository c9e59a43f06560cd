"""Numba kernels of the IO stages of aihwkit's torch-based tile (``rpusim.io_torch``).

The torch tile's forward is a chain of elementwise tensor operations (scale, quantise, clip,
noise, asymmetry) around one product. NumPy ran each of them as a separate pass with its own
temporary arrays, about 20 us a call for a layer of a small network, almost all of it
dispatch. These kernels do each side of the product in one pass over the rows, with the
same operations in the same order and dtype, so the results are the same bits (the NumPy
versions are the tests' reference, ``tests/test_io_torch_kernels.py``). The product itself
stays a BLAS call in ``rpusim.io_torch``.

Random numbers come from the row streams of :func:`rpusim.kernels.io._fill`, exactly those
that ``row_draws`` returns for the same key, row and tag. Scalars come in the dtype of the
arrays (float32 as aihwkit, or float64), as NumPy scalars or in the constants array ``c`` of
:func:`rpusim.kernels.io.constants`, so that no literal promotes float32 to float64. As in
``rpusim.kernels.io``, the element loops of the default configuration (no asymmetry, no
stochastic rounding) are separate loops with those branches folded: runtime flags inside
a loop stop LLVM's vectoriser.
"""

import numpy as np
from numba import njit

from rpusim.kernels.io import _C_HALF, _C_ONE, _C_ZERO, _fill
from rpusim.kernels.numeric import cast_like

__all__ = ["torch_nm", "torch_dac", "torch_adc", "torch_input_gradient"]


@njit(cache=True)
def torch_nm(U, absolute, capped, thres, c, nm, idx, sign, passes):
    """Noise management of the torch tile (ABS_MAX with ``absolute``, else MAX), per row of
    ``U``: the index ``idx`` of the largest (absolute) input, first of ties, as argmax;
    with that value ``v``, ``nm = min(v, thres)`` (with ``capped``, else ``v``), then 1 where
    that is not positive; ``sign`` of the chosen input (ones for MAX); ``passes``: whether
    ``nm`` carries a gradient (positive and not capped by ``thres``). Returns whether any
    ``nm`` was nonzero before the substitution."""
    m, n = U.shape
    zero = c[_C_ZERO]
    one = c[_C_ONE]
    nonzero = False
    for r in range(m):
        best_j = 0
        best = abs(U[r, 0]) if absolute else U[r, 0]
        for j in range(1, n):
            v = abs(U[r, j]) if absolute else U[r, j]
            if v > best:
                best = v
                best_j = j
        idx[r] = best_j
        value = min(best, thres) if capped else best
        nonzero = nonzero or value != zero
        passes[r] = value > zero and (best <= thres if capped else True)
        nm[r] = value if value > zero else one
        if absolute:
            u = U[r, best_j]
            sign[r] = one if u > zero else (-one if u < zero else zero)
        else:
            sign[r] = one
    return nonzero


@njit(cache=True, inline="always")
def _quantized(v, step, sto, uni, half):
    """aihwkit's ``UniformQuantize``: ``rint(v / step) * step`` (halves to even); stochastic
    rounding adds ``uni - 1/2`` first."""
    q = v / step
    if sto:
        q = q + (uni - half)
    return np.rint(q) * step


@njit(cache=True, inline="always")
def _clipped(v, bound):
    return bound if v > bound else (-bound if v < -bound else v)


@njit(cache=True, inline="always")
def _dac(u, s, scaling, quantize, step, sto, uni, clip, bound, noisy, noise, xi, asymmetric,
         asym_scale, zero, one, half):
    """One input: ``(v, dv/du)``."""
    if scaling:
        u = u * s
    if quantize:
        u = _quantized(u, step, sto, uni, half)
    f = one
    if clip:
        f = one if (u <= bound) & (u >= -bound) else zero
        u = _clipped(u, bound)
    if noisy:
        u = u + noise * xi
    if asymmetric and u < zero:
        u = u * asym_scale
        f = f * asym_scale
    return u, f


@njit(cache=True, inline="always")
def _adc(z, asymmetric, asym_scale, noisy, per_line, noise, line, xi, quantize, step, sto,
         uni, clip, bound, zero, one, half):
    """One output: ``(o, do/dz, clipped)``."""
    f = one
    if asymmetric and z < zero:
        z = z * asym_scale
        f = asym_scale
    if per_line:
        z = z + xi * line
    elif noisy:
        z = z + noise * xi
    if quantize:
        z = _quantized(z, step, sto, uni, half)
    out = False
    if clip:
        out = not ((z <= bound) & (z >= -bound))
        # times 0 rather than 0: a negative asymmetry scale gives -0, as torch's product
        f = f * (zero if out else one)
        z = _clipped(z, bound)
    return z, f, out


@njit(cache=True)
def _any_zero(F, start, n):
    """Whether ``F[start:start + n]`` holds a zero."""
    for j in range(start, start + n):
        if F[j] == 0:
            return True
    return False


@njit(cache=True)
def torch_dac(U, S, per_row, scaling, quantize, step, sto, clip, bound, noisy, noise,
              asymmetric, asym_scale, key, rows, tag_uniform, tag_noise, c, V, F):
    """The torch tile's DAC (``TorchTileMVM._dac``) into ``V`` and its derivative into
    ``F``: per element ``u = U * s`` (``s = S[r]`` with ``per_row``, else ``S[0]``; ``U``
    itself without ``scaling``); with ``quantize`` rounded to ``rint(u / step) * step``
    (``sto``: a uniform minus 1/2 added first), with ``clip`` clipped to ``[-bound, bound]``
    (derivative 0 outside), with ``noisy`` plus ``noise`` times a normal, with
    ``asymmetric`` negative values times ``asym_scale`` (the derivative too). Uniforms and
    normals of row ``r`` come from the streams ``(key, rows[r], tag_uniform / tag_noise)``.
    Returns whether ``F`` differs from ones anywhere (clipping or asymmetry); otherwise
    ``F`` is to be read as ones."""
    m, n = U.shape
    zero = c[_C_ZERO]
    one = c[_C_ONE]
    half = c[_C_HALF]
    sto = sto and quantize
    # as long as a row and zero where unused: the loops have no conditional loads
    uni = np.zeros(n, U.dtype)
    xi = np.zeros(n, U.dtype)
    # the default configuration's loop: only the noise is a runtime flag
    folded = scaling and quantize and clip and not (asymmetric or sto)
    clipped = False
    # one dimension: unit-stride loops, which LLVM vectorises (2-d indexing kept it scalar)
    Uf = U.reshape(m * n)
    Vf = V.reshape(m * n)
    Ff = F.reshape(m * n)
    for r in range(m):
        s = S[r] if per_row else S[0]
        if sto:
            _fill(uni, key, rows[r], tag_uniform, False)
        if noisy:
            _fill(xi, key, rows[r], tag_noise, True)
        base = r * n
        if folded:
            for j in range(n):
                Vf[base + j], Ff[base + j] = _dac(
                    Uf[base + j], s, True, True, step, False, zero, True, bound, noisy, noise,
                    xi[j], False, one, zero, one, half)
        else:
            for j in range(n):
                Vf[base + j], Ff[base + j] = _dac(
                    Uf[base + j], s, scaling, quantize, step, sto, uni[j], clip, bound, noisy,
                    noise, xi[j], asymmetric, asym_scale, zero, one, half)
        if clip and not clipped:
            clipped = _any_zero(Ff, base, n)
    return clipped or asymmetric


@njit(cache=True)
def torch_adc(Z, asymmetric, asym_scale, noisy, noise, line_noise, quantize, step, sto, clip,
              bound, key, rows, tag_uniform, tag_noise, c, out, F, clipped):
    """The torch tile's ADC (``TorchTileMVM._adc``) of the products ``Z`` into ``out``, its
    derivative into ``F`` and the clipped outputs into ``clipped``: negative values times
    ``asym_scale`` (``asymmetric``; the derivative too), with ``noisy`` plus a normal times
    ``line_noise[i]`` (when it has entries) or times ``noise``, quantised and clipped as in
    :func:`torch_dac` (the derivative times 0 outside the bound). Returns ``(passed, F
    differs from ones)``, ``passed`` whether nothing was clipped."""
    m, n = Z.shape
    zero = c[_C_ZERO]
    one = c[_C_ONE]
    half = c[_C_HALF]
    per_line = line_noise.shape[0] > 0
    noisy = noisy or per_line
    line = line_noise if per_line else np.zeros(n, Z.dtype)
    sto = sto and quantize
    uni = np.zeros(n, Z.dtype)
    xi = np.zeros(n, Z.dtype)
    folded = quantize and clip and not (asymmetric or sto or per_line)
    passed = True
    Zf = Z.reshape(m * n)
    Of = out.reshape(m * n)
    Ff = F.reshape(m * n)
    Cf = clipped.reshape(m * n)
    for r in range(m):
        if noisy:
            _fill(xi, key, rows[r], tag_noise, True)
        if sto:
            _fill(uni, key, rows[r], tag_uniform, False)
        base = r * n
        if folded:
            for i in range(n):
                Of[base + i], Ff[base + i], Cf[base + i] = _adc(
                    Zf[base + i], False, one, noisy, False, noise, zero, xi[i], True, step,
                    False, zero, True, bound, zero, one, half)
        else:
            for i in range(n):
                Of[base + i], Ff[base + i], Cf[base + i] = _adc(
                    Zf[base + i], asymmetric, asym_scale, noisy, per_line, noise, line[i],
                    xi[i], quantize, step, sto, uni[i], clip, bound, zero, one, half)
        if clip and passed:
            for i in range(base, base + n):
                if Cf[i]:
                    passed = False
                    break
    return passed, asymmetric or not passed


@njit(cache=True)
def torch_input_gradient(P, in_factor, S, per_row, scaling, nm, red_out_scale, idx, sign, passes,
                         G, outputs, scaled, c, out):
    """The torch tile's input gradient (``TorchTileMVM.input_gradient``) after its product
    ``P = (G * do/dz) @ W``: ``out = P * in_factor * s`` (``in_factor`` where it has rows;
    ``s = S[r]`` with ``per_row``, else ``S[0]``, without ``scaling`` none). Where ``nm``
    has entries (ABS_MAX or MAX noise management) each row's largest input also gets
    ``dL/dnm`` times its ``sign``: ``red_out_scale * sum_i G_i o_i - sum_j P_j u_j / nm``
    (``o`` the ADC's ``outputs``, ``u`` the ``scaled`` inputs; sums in float64, in index
    order), zero for rows that do not ``pass`` it."""
    m, n = P.shape
    zero = c[_C_ZERO]
    factor = in_factor.shape[0] > 0
    nm_on = nm.shape[0] > 0
    for r in range(m):
        s = S[r] if per_row else S[0]
        through = 0.0
        for j in range(n):
            p = P[r, j] * in_factor[r, j] if factor else P[r, j]
            if nm_on:
                through += np.float64(p) * np.float64(scaled[r, j])
            out[r, j] = p * s if scaling else p
        if nm_on:
            d = 0.0
            if passes[r]:
                direct = 0.0
                for i in range(G.shape[1]):
                    direct += np.float64(G[r, i]) * np.float64(outputs[r, i])
                d = np.float64(red_out_scale) * direct - through / np.float64(nm[r])
            # added to every row (a zero too: -0 + 0 is +0, as NumPy's fancy-index add)
            k = idx[r]
            out[r, k] = out[r, k] + cast_like(d * np.float64(sign[r]), zero)
