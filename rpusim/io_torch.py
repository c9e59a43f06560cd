"""The forward MVM of aihwkit's torch-based inference tile (``TorchInferenceRPUConfig``).

aihwkit 1.2.0 simulates this config with a tile written in plain torch (``AnalogMVM.matmul``)
and takes its backward from torch's autograd through that forward. Two things set it apart
from the C++-backed tiles (:class:`~rpusim.io.AnalogMVM`), both checked against aihwkit:

* Bound management acts on the whole batch: when any output of any row is clipped, every
  row is read again with its inputs halved (the C++ tiles re-read only the rows that
  clipped). The output then leaves the ADC's quantisation at a scale that depends on the
  other rows.
* The gradients are those of the forward's arithmetic. With ``s_b`` the final input scale
  of row ``b`` (``1 / (nm_b * r)``: noise management ``nm_b``, bound-management reduction
  ``r``), ``u = s_b x``, ``v`` the DAC's output (quantised with a straight-through gradient,
  clipped, noisy, asymmetric) and ``o`` the ADC's output (asymmetry, noise, quantised
  straight-through, clipped), ``y = out_scale * o / s_b``; so

  - the weight gradient is ``H^T v`` with ``H = g * out_scale / s_b * [|o| within bound] *
    [output asymmetry]``: the *prepared* inputs, not ``x``;
  - the input gradient is ``s_b * (H W) * [|Q(u)| within inp_bound] * [input asymmetry]``,
    plus, with ABS_MAX or MAX noise management, ``dL/dnm_b`` on each row's largest input
    (``out_scale r sum_i g_i o_i - sum_j (dL/du_j) u_j / nm_b``; zero unless quantisation or
    clipping made ``o`` differ from the exact product), unless ``nm_thres`` capped it.

The MVM returns a :class:`TorchMVMSaved` holding what those gradients read;
:meth:`TorchTileMVM.input_gradient` and :meth:`TorchTileMVM.weight_gradient_pair` compute
them. A perfect or IDEAL forward is the bare product (no ``out_scale``, as in aihwkit's torch
tile). The per-line output noise is aihwkit's torch tile's ``|out_noise (1 + xi)|``, which
ignores the value of ``out_noise_std`` (replicated: the observed behaviour wins).
Random numbers come from the tile's streams (one key per call); aihwkit's come from torch's
generator, so noisy results agree in distribution. The elementwise stages (noise management,
DAC, ADC, the input gradient after its product) run in the numba kernels of
:mod:`rpusim.kernels.io_torch`; the products are BLAS calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rpusim.configs.enums import BoundManagementType, NoiseManagementType
from rpusim.configs.io import torch_tile_supports
from rpusim.io import AnalogMVM, _Draws
from rpusim.kernels import io as kio
from rpusim.kernels import io_torch as kt

__all__ = ["TorchTileMVM", "TorchMVMSaved", "torch_tile_supports"]


@dataclass(slots=True)
class _Reading:
    """One read of the bound-management loop: whether it passed the bound test, the output
    ``o`` (before ``out_scale / s_b``), the DAC's output ``V`` and derivative, the ADC's
    derivative and clipped outputs of the pass that carries the input gradient, and the
    other passes ``(V_k, bit weight, ADC derivative)`` (time-sliced reads)."""

    passed: bool
    o: np.ndarray
    V: np.ndarray
    in_factor: np.ndarray | None
    out_factor: np.ndarray | None
    clipped: np.ndarray | None
    extra: list


@dataclass(slots=True)
class TorchMVMSaved:
    """What the gradients of one forward read (see the module notes).

    Attributes
    ----------
    weights : ndarray
        The weights read, ``(out, in)``, or ``(samples, out, in)`` with per-sample draws.
    prepared : ndarray
        The DAC outputs ``v`` (the inputs for a perfect forward), ``(batch, in)``.
    out_factor : ndarray or None
        ``dy/do`` times the output masks, ``(batch, out)``; None: ones.
    in_factor : ndarray or None
        Input clip mask times input asymmetry, ``(batch, in)``; None: ones.
    scale : ndarray, float or None
        The final input scale ``s_b`` per row (``(batch, 1)``), one number, or None (none).
    nm : tuple or None
        Per row: noise management's value, the reduction ``r``, the largest input's index
        and sign, and whether it passes a gradient; None without such a gradient.
    zero : bool
        The forward returned zeros without reading (all-zero inputs, no input noise).
    detached : bool
        Those zeros are aihwkit's shortcut for inputs whose noise management values are all
        0: its output is a new tensor, not a function of the weights or the inputs, so
        neither gets a gradient from this forward (``None``: torch's optimizers skip such a
        weight, no weight decay or momentum step, and nothing before the tile gets one
        either).
    clipped : ndarray or None
        Outputs clipped at the ADC bound (for the input range's output-clipping rule).
    outputs, scaled : ndarray or None
        The ADC's outputs ``o`` and the scaled inputs ``u`` (for the noise management's
        gradient; None without it).
    extra : sequence
        Further ``(prepared, out_factor)`` pairs of a time-sliced read's other passes: their
        products add to the weight gradient; the input gradient flows through the first
        pass only (the others read the inputs' higher bits, whose derivative is zero).
    piece : ndarray or None
        What a layer made of the outputs, kept by the layer for its own gradients.
    """

    weights: np.ndarray
    prepared: np.ndarray
    out_factor: np.ndarray | None = None
    in_factor: np.ndarray | None = None
    scale: object = None
    nm: tuple | None = None
    zero: bool = False
    detached: bool = False
    clipped: np.ndarray | None = None
    outputs: np.ndarray | None = None
    scaled: np.ndarray | None = None
    extra: tuple | list = ()
    piece: np.ndarray | None = None


def _product(M: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``V @ M.T`` row by row, for one ``(out, in)`` matrix, or ``(samples, out, in)`` with
    the rows in ``samples`` consecutive groups (one matrix each)."""
    if M.ndim == 2:
        return V @ M.T
    m = V.shape[0]
    grouped = V.reshape(M.shape[0], m // M.shape[0], V.shape[1])
    return np.matmul(grouped, M.transpose(0, 2, 1)).reshape(m, M.shape[1])


def _transposed_product(M: np.ndarray, H: np.ndarray) -> np.ndarray:
    """``H @ M`` row by row, matrices as in :func:`_product`."""
    if M.ndim == 2:
        return H @ M
    m = H.shape[0]
    grouped = H.reshape(M.shape[0], m // M.shape[0], H.shape[1])
    return np.matmul(grouped, M).reshape(m, M.shape[2])


_NOTHING: dict = {}


def _nothing(dtype: np.dtype) -> tuple:
    """Empty arrays for the kernels' unused arguments (one numba type each): 1-d and 2-d in
    ``dtype``, int64 and bool; and the kernels' constants in ``dtype``."""
    arrays = _NOTHING.get(dtype)
    if arrays is None:
        arrays = _NOTHING[dtype] = (np.zeros(0, dtype), np.zeros((0, 0), dtype),
                                    np.zeros(0, np.int64), np.zeros(0, np.bool_),
                                    kio.constants(dtype))
    return arrays


class TorchTileMVM(AnalogMVM):
    """The forward MVM of aihwkit's torch tile (module notes): a batch-level bound
    management around aihwkit's DAC, product and ADC, keeping what the gradients need.

    Parameters are those of :class:`~rpusim.io.AnalogMVM` (forward direction); ``params``
    must pass :func:`torch_tile_supports`.
    """

    def __init__(self, params, n_out: int, n_in: int, dtype, rng):
        if not self._supported(params):
            raise ValueError("TorchTileMVM needs forward IO parameters that aihwkit's torch "
                             "tile supports (see torch_tile_supports)")
        super().__init__(params, n_out, n_in, dtype, rng)
        self._fusable = False

    @staticmethod
    def _supported(params) -> bool:
        return torch_tile_supports(params)

    def _draw_line_parameters(self) -> None:
        """The per-line output noise of aihwkit's torch tile, drawn once: ``|out_noise (1 +
        xi)|`` whatever ``out_noise_std`` (> 0 switches it on; its value is not read there,
        unlike the C++ tiles' ``|out_noise (1 + out_noise_std xi)|``). aihwkit's behaviour is
        replicated. The other line parameters belong to IO the torch tile refuses."""
        p = self.params
        if p.out_noise_std > 0:
            t = self._t
            xi = self.rng.normal(self.n_out, self.dtype)
            self.out_noise_values = np.abs(t(p.out_noise) * (t(1) + xi))

    def own_mvm(self, W, transposed, U):
        return None

    def mvm_finite(self, M: np.ndarray, U: np.ndarray, check: bool = True):
        if check and not np.isfinite(U).all():
            return None, False
        Y, _ = self.run(M, U, save=False)
        return Y, bool(np.isfinite(Y).all()) if check else True

    # -- the forward ----------------------------------------------------------------------------
    def run(self, M: np.ndarray, U: np.ndarray, save: bool = True):
        """``(Y, saved)``: the outputs for inputs ``U`` ``(batch, in)`` and weights ``M``
        (``(out, in)``, or ``(samples, out, in)``, one per group of ``batch / samples``
        consecutive rows), and a :class:`TorchMVMSaved` (None unless ``save``)."""
        dt = self.dtype
        t = dt.type
        m = U.shape[0]
        if m == 0:
            return np.zeros((0, self.n_out), dt), (
                TorchMVMSaved(M, U, zero=True) if save else None)
        if self.perfect:
            Y = np.ascontiguousarray(_product(M, U), dtype=dt)
            return Y, (TorchMVMSaved(M, U) if save else None)
        p = self.params
        nm_kind = p.noise_management
        thres = p.nm_thres
        nm = None          # per-row noise management values (an array), or
        nm_number = 1.0    # one number (NONE, CONSTANT)
        if nm_kind == NoiseManagementType.ABS_MAX or nm_kind == NoiseManagementType.MAX:
            nm, idx, sign, passes, nonzero = self._noise_management(U)
            if p.inp_noise <= 0 and not nonzero:
                # aihwkit's shortcut: every input is zero and nothing is noisy
                Y = np.zeros((m, self.n_out), dt)
                return Y, (TorchMVMSaved(M, np.zeros_like(U), zero=True, detached=True)
                           if save else None)
        elif nm_kind == NoiseManagementType.CONSTANT:
            nm_number = thres if thres > 0 else 1.0
        key = self.rng.key()
        rows = np.arange(m, dtype=np.int64)
        b_management = p.bound_management != BoundManagementType.NONE
        inp_step = p.inp_res
        if inp_step > 0:
            inp_step = (1.0 / inp_step if inp_step > 1.0 else inp_step) * 2.0 * p.inp_bound
        reduction = 0.5 if b_management else 1.0
        bm_round = 0
        while True:
            if b_management:
                reduction *= 2.0
            # the scale as aihwkit's torch tile forms it: 1 / nm, then / reduction
            if nm is not None:
                scale = (t(1) / nm)[:, None]
                if b_management:
                    scale = scale / t(reduction)
                scaling = True
            else:
                scale = 1.0 / nm_number
                if b_management:
                    scale /= reduction
                scaling = scale != 1.0
            reading = self._read(M, U, scale, scaling, _Draws(key, rows, bm_round, self._c))
            bm_round += 1
            if not b_management or reading.passed or reduction > p.max_bm_factor or (
                    inp_step > 0 and reduction > p.max_bm_res / inp_step):
                break
        o = reading.o
        out_scale = p.out_scale
        k = None  # what o is multiplied by: out_scale / scale
        if scaling or out_scale != 1.0:
            if isinstance(scale, np.ndarray):
                k = (t(1) / scale) * t(out_scale)  # torch's number / tensor: reciprocal first
            else:
                k = t(out_scale / scale)
        Y = o * k if k is not None else o.copy()
        if not save:
            return Y, None

        def scaled(factor, weight=1.0):
            # dy/dz of one pass: out_scale / s_b, its bit weight, its ADC's derivative
            if k is None and weight == 1.0:
                return factor
            kw = t(weight) if k is None else (k if weight == 1.0 else k * t(weight))
            if factor is not None:
                return factor * kw
            full = np.empty(Y.shape, dt)
            full[...] = kw
            return full

        extra = [(Vk, scaled(fk, wk)) for Vk, wk, fk in reading.extra]
        nm_saved = None
        if nm is not None:
            nm_saved = (nm, reduction if b_management else 1.0, idx, sign, passes)
        scaled_inputs = U * scale if scaling else U
        return Y, TorchMVMSaved(M, reading.V, out_factor=scaled(reading.out_factor),
                                in_factor=reading.in_factor,
                                scale=scale if scaling else None, nm=nm_saved,
                                clipped=reading.clipped, outputs=o if nm is not None else None,
                                scaled=scaled_inputs if nm is not None else None, extra=extra)

    def _noise_management(self, U):
        """ABS_MAX or MAX noise management per row of ``U``: ``(nm, idx, sign, passes,
        nonzero)``, the values ``nm`` (capped at ``nm_thres`` when it is positive, then 1
        where not positive), the index and sign of each row's largest input, whether a row's
        ``nm`` passes a gradient, and whether any ``nm`` was nonzero before the 1s."""
        p = self.params
        m = U.shape[0]
        dt = self.dtype
        nm = np.empty(m, dt)
        idx = np.empty(m, np.int64)
        sign = np.empty(m, dt)
        passes = np.empty(m, np.bool_)
        nonzero = kt.torch_nm(U, p.noise_management == NoiseManagementType.ABS_MAX,
                              p.nm_thres > 0, self._t(p.nm_thres), self._c, nm, idx, sign,
                              passes)
        return nm, idx, sign, passes, nonzero

    def _read(self, M, U, scale, scaling, draws: _Draws) -> "_Reading":
        """One read at input scale ``scale``: the DAC, the product and the ADC."""
        V, in_factor = self._dac(U, scale, scaling, draws)
        passed, o, out_factor, clipped = self._adc(_product(M, V), draws)
        return _Reading(passed, o, V, in_factor, out_factor, clipped, [])

    @staticmethod
    def _step(res: float, bound: float) -> float:
        """aihwkit's ``UniformQuantize`` step: ``res * 2 bound`` (``res`` a number of states
        when > 1); values are rounded to ``rint(v / step) * step``, halves to even. In Python
        floats, rounded to the tile dtype once, as the torch tile computes it (not
        ``rpusim.io._effective_step``, the C++ tiles' step in the tile dtype throughout)."""
        return (1.0 / res if res > 1.0 else res) * 2.0 * bound

    def _dac(self, U, scale, scaling, draws: _Draws):
        """Scale, quantise (straight through), clip, noise and asymmetry of the inputs:
        ``(v, dv/du)`` (None where the derivative is one). ``scale``: ``(batch, 1)`` or a
        number."""
        p = self.params
        t = self._t
        dt = self.dtype
        m, n = U.shape
        if isinstance(scale, np.ndarray):
            S, per_row = scale.reshape(m), True
        else:
            S, per_row = np.full(1, scale, dt), False
        V = np.empty((m, n), dt)
        F = np.empty((m, n), dt)
        factor = kt.torch_dac(
            U, S, per_row, bool(scaling), p.inp_res > 0, t(self._step(p.inp_res, p.inp_bound)),
            p.inp_sto_round, p.inp_bound > 0, t(p.inp_bound), p.inp_noise > 0, t(p.inp_noise),
            p.inp_asymmetry != 0, t(1) - t(p.inp_asymmetry), draws.key, draws.rows,
            draws.tag(kio.TAG_INP_UNIFORM), draws.tag(kio.TAG_INP_NOISE), self._c, V, F)
        return V, (F if factor else None)

    def _adc(self, z, draws: _Draws):
        """Asymmetry, noise, quantisation (straight through) and clipping of the product
        ``z``: ``(bound test passed, o, do/dz or None, clipped or None)``."""
        p = self.params
        t = self._t
        dt = self.dtype
        z = np.ascontiguousarray(z, dtype=dt)
        line_noise = self.out_noise_values
        if line_noise.dtype != dt or not line_noise.flags.c_contiguous:
            line_noise = np.ascontiguousarray(line_noise, dtype=dt)
        out = np.empty(z.shape, dt)
        F = np.empty(z.shape, dt)
        clipped = np.empty(z.shape, np.bool_)
        passed, factor = kt.torch_adc(
            z, p.out_asymmetry != 0, t(1) - t(p.out_asymmetry),
            p.out_noise > 0 or line_noise.size > 0, t(p.out_noise), line_noise,
            p.out_res > 0, t(self._step(p.out_res, p.out_bound)), p.out_sto_round,
            p.out_bound > 0, t(p.out_bound), draws.key, draws.rows,
            draws.tag(kio.TAG_OUT_UNIFORM), draws.tag(kio.TAG_OUT_NOISE), self._c, out, F,
            clipped)
        return passed, out, (F if factor else None), (None if passed else clipped)

    # -- the gradients -------------------------------------------------------------------------
    def input_gradient(self, saved: TorchMVMSaved, G: np.ndarray) -> np.ndarray:
        """``dL/dx`` of the forward that returned ``saved``, for ``G = dL/dy``; None where
        that forward's output did not depend on its inputs (:attr:`TorchMVMSaved.detached`:
        aihwkit's new zeros, which cut the autograd graph, so nothing before the tile gets a
        gradient from it)."""
        dt = self.dtype
        if saved.detached:
            return None
        if saved.zero:
            return np.zeros(saved.prepared.shape, dt)
        H = G if saved.out_factor is None else G * saved.out_factor
        P = np.ascontiguousarray(_transposed_product(saved.weights, H), dtype=dt)
        m = P.shape[0]
        scale = saved.scale
        if isinstance(scale, np.ndarray):
            S, per_row = scale.reshape(m), True
        else:
            S, per_row = np.full(1, 1.0 if scale is None else scale, dt), False
        none, none2, none_idx, none_mask, c = _nothing(dt)
        if saved.nm is not None:
            nm, reduction, idx, sign, passes = saved.nm
            G = np.ascontiguousarray(G, dtype=dt)
            outputs, scaled = saved.outputs, saved.scaled
            red_out_scale = dt.type(reduction * self.params.out_scale)
        else:
            nm, idx, sign, passes = none, none_idx, none, none_mask
            outputs = scaled = G = none2
            red_out_scale = dt.type(0)
        in_factor = none2 if saved.in_factor is None else saved.in_factor
        grad = np.empty(P.shape, dt)
        kt.torch_input_gradient(P, in_factor, S, per_row, scale is not None, nm, red_out_scale,
                                idx, sign, passes, G, outputs, scaled, c, grad)
        return grad

    def weight_gradient_pair(self, saved: TorchMVMSaved, G: np.ndarray):
        """``(v, H)`` with ``dL/dW = H^T v`` summed over the batch (per-sample weights get
        the same sum); None where the forward's output did not depend on the weights
        (:attr:`TorchMVMSaved.detached`)."""
        dt = self.dtype
        if saved.detached:
            return None
        if saved.zero:
            return saved.prepared, np.zeros(G.shape, dt)
        H = G if saved.out_factor is None else G * saved.out_factor
        if not saved.extra:
            return saved.prepared, np.ascontiguousarray(H, dtype=dt)
        V = np.concatenate([saved.prepared, *(Vk for Vk, _ in saved.extra)])
        H = np.concatenate([H, *(G if fk is None else G * fk for _, fk in saved.extra)])
        return V, np.ascontiguousarray(H, dtype=dt)
