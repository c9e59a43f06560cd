"""Patches of a convolution's input (im2col) and their gradient's fold (col2im), for 1-3 spatial
dimensions given as three (1 where absent), in aihwkit's order: rows image-major, then output
positions row-major; columns input channel, then kernel positions row-major."""

import numpy as np
from numba import njit

# The indices below are taken unsigned: numba then knows they are not negative and drops the
# wraparound code of each of the five (a conv layer's 8x8 images: 6.4 -> 4.5 us a call).
_U = np.uint64


@njit(cache=True)
def im2col(x, kernel, stride, dilation, out_spatial, out):
    """``out[(n, o), (c, k)] = x[n, c, o * stride + k * dilation]`` (in ``out``'s dtype).

    ``x`` is (N, C, D, H, W); ``out`` is (N * prod(out_spatial), C * prod(kernel)).
    """
    kd, kh, kw = kernel
    sd, sh, sw = stride
    dd, dh, dw = dilation
    od_n, oh_n, ow_n = out_spatial
    r = 0
    for n in range(x.shape[0]):
        for od in range(od_n):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    j = 0
                    for c in range(x.shape[1]):
                        for a in range(kd):
                            i0 = _U(od * sd + a * dd)
                            for b in range(kh):
                                i1 = _U(oh * sh + b * dh)
                                for e in range(kw):
                                    out[r, j] = x[_U(n), _U(c), i0, i1, _U(ow * sw + e * dw)]
                                    j += 1
                    r += 1


@njit(cache=True)
def col2im(cols, kernel, stride, dilation, out_spatial, grad):
    """Adjoint of :func:`im2col`: ``grad`` (N, C, D, H, W), zero on entry, receives the sum
    over patches of ``cols`` (summed in row order, then column order)."""
    kd, kh, kw = kernel
    sd, sh, sw = stride
    dd, dh, dw = dilation
    od_n, oh_n, ow_n = out_spatial
    r = 0
    for n in range(grad.shape[0]):
        for od in range(od_n):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    j = 0
                    for c in range(grad.shape[1]):
                        for a in range(kd):
                            i0 = _U(od * sd + a * dd)
                            for b in range(kh):
                                i1 = _U(oh * sh + b * dh)
                                for e in range(kw):
                                    grad[_U(n), _U(c), i0, i1, _U(ow * sw + e * dw)] += cols[r, j]
                                    j += 1
                    r += 1


@njit(cache=True)
def rows_to_channels(y, bias, with_bias, out):
    """A convolution's output from its tile's: ``out[n, c, p] = y[n * P + p, c]`` (plus
    ``bias[c]`` when ``with_bias``), ``out`` (N, C, P). One pass instead of a bias add and a
    transposing copy; the same sums."""
    n_img, n_ch, n_pos = out.shape
    for n in range(n_img):
        for c in range(n_ch):
            if with_bias:
                b = bias[c]
                for p in range(n_pos):
                    out[n, c, p] = y[n * n_pos + p, c] + b
            else:
                for p in range(n_pos):
                    out[n, c, p] = y[n * n_pos + p, c]


@njit(cache=True)
def channels_to_rows(g, out):
    """Adjoint layout of :func:`rows_to_channels`: ``out[n * P + p, c] = g[n, c, p]`` for a
    gradient ``g`` (N, C, P), ``out`` (N * P, C): the tile's backward batch."""
    n_img, n_ch, n_pos = g.shape
    for n in range(n_img):
        for p in range(n_pos):
            for c in range(n_ch):
                out[n * n_pos + p, c] = g[n, c, p]
