"""Time-dependent IR drop of a crossbar read (aihwkit 1.2.0's ``AnalogMVMIRDropT``).

The forward MVM of a ``TorchInferenceRPUConfigIRDropT`` tile. Each DAC output ``x`` drives its
row for a time ``|x|`` (pulse-width modulation, sign by polarity) on a grid of ``T`` time steps
``t_k`` from 0 to ``t_max``. A column is a chain of ``S`` segments of rows, ``ir_drop_rs``
(scaled by ``ir_drop``) of wire per row between them; at time ``t`` a device pair
``(g+, g-)`` on a row still driven positively is a source ``0.6 g+ + 0.2 g-`` over ``g+ + g-``,
negatively ``0.2 g+ + 0.6 g-``, undriven ``0.4 (g+ + g-)``. Reducing the chain to one
Thevenin source ``(v_th(t), r_th)`` at the ADC, the column current is ``(v_th(t) - v_read) /
r_th``; the ADC integrates it over the steps (trapezoidal rule after repeating the first step,
or a plain sum) and, with ``adc_quantization``, counts whole oscillations at
``adc_frequency``. The result is normalised by the conductance scale, by 0.2 and by half the
DAC's number of levels. Even columns have their ADC after the last row, odd ones before the
first (ADCs on both sides); the rows are centred on the physical tile height (zero rows and
weights around them). ``SPLIT_MODE`` reads the low and high bits of the inputs in two such
passes, ``BIT_WISE`` one pass per bit, each through the ADC, summed with their bit weights.

How it is computed: the conductance of each segment does not change in time, only the source
voltages do, so ``r_th`` and the weight of each segment's voltage in ``v_th`` are fixed per
column, and ``v_th(t)`` is linear in the drive state of each row. The integral over the time
steps therefore equals a matrix product of the inputs' effective pulse lengths ``sign(x) *
sum_{k: t_k < |x|} c_k`` (``c_k`` the integration weights) with position-weighted
conductance differences, plus a per-column constant -- the same numbers as stepping through
time, at the cost of one matrix product.
"""

from __future__ import annotations

import numpy as np

from rpusim.configs.enums import AnalogMVType
from rpusim.io import _Draws
from rpusim.io_torch import TorchTileMVM, _product, _Reading
from rpusim.kernels import io as kio

__all__ = ["TimeDependentIRDropMVM"]

# polynomial fits (in log10 of the mean pulse length in DAC steps) of the input-dependent PCM
# read noise: slope (relative to the conductance) and offset (in S; times 1e6 for uS)
_XDEP_SLOPE = (0.00021926, -0.00187352, 0.00655714, -0.0146159, 0.02578764)
_XDEP_OFFSET = (1.11906167e-09, -9.08576764e-09, 3.07015063e-08, -6.77079241e-08,
                1.17763144e-07)
# draw rounds of the extra passes and of the read noise: far above any bound-management round
_PASS_ROUND = 1 << 12
_XDEP_ROUND = 1 << 20


def time_grid(t_max: float, steps: int, dtype) -> np.ndarray:
    """``steps`` times from 0 to ``t_max`` in ``dtype``, computed as PyTorch's ``linspace``
    computes them (step in ``dtype``; the first half ``step * k``, the second half ``t_max -
    step * (steps - 1 - k)``, each rounded once), because quantised inputs fall exactly on grid
    points and the comparison must round alike (checked against torch for float32)."""
    t = np.dtype(dtype).type
    if steps == 1:
        return np.zeros(1, dtype)
    step = np.float64((t(t_max) - t(0)) / t(steps - 1))
    idx = np.arange(steps)
    front = step * idx
    back = np.float64(t(t_max)) - step * (steps - 1 - idx)
    return np.where(idx < steps // 2, front, back).astype(dtype)


def integration_weights(steps: int, plain_sum: bool) -> np.ndarray:
    """Weights ``c_k`` of the current at each step in the ADC's integral."""
    if plain_sum:
        return np.ones(steps)
    c = np.ones(steps + 1)
    c[0] = c[-1] = 0.5
    weights = c[1:].copy()
    weights[0] += c[0]  # the first step is repeated before the trapezoidal rule
    return weights


def pulse_lengths(V: np.ndarray, grid: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sign(v) * sum_{k: t_k < |v|} c_k``: how long, in integral weight, each row is
    driven."""
    counts = np.searchsorted(grid, np.abs(V), side="left")
    cumulative = np.concatenate([[0.0], np.cumsum(weights)])
    return np.sign(V) * cumulative[counts]


def thevenin_weights(G: np.ndarray, r_wire: float) -> tuple[np.ndarray, np.ndarray]:
    """Weight of each segment's source voltage numerator in ``v_th``, and ``r_th``.

    Parameters
    ----------
    G : ndarray, shape (segments, columns)
        Total conductance (uS) of each segment, segment 0 the farthest from the ADC.
    r_wire : float
        Wire resistance (MOhm) between neighbouring segments.

    Returns
    -------
    w : ndarray, shape (segments, columns)
        ``v_th = sum_s w_s * n_s`` for segment source numerators ``n_s`` (``v_s = n_s/G_s``).
    r_th : ndarray, shape (columns,)
        In MOhm, including half a wire segment to the ADC.
    """
    coef = np.zeros_like(G)
    coef[0] = 1.0
    r_th = 1.0 / G[0]
    for s in range(1, G.shape[0]):
        r_1 = r_th + r_wire
        r_2 = 1.0 / G[s]
        r_th = r_1 * r_2 / (r_1 + r_2)
        coef[:s] *= r_th / r_1
        coef[s] = r_th / r_2
    return coef / G, r_th + 0.5 * r_wire


class TimeDependentIRDropMVM(TorchTileMVM):
    """The forward MVM of a ``TorchInferenceRPUConfigIRDropT`` tile (module notes): aihwkit's
    torch tile (:mod:`rpusim.io_torch`: batch-level bound management, the gradients of the
    forward) with its reads time-sliced.

    Parameters
    ----------
    params : IOParametersIRDropT
    n_out, n_in, dtype, rng
        As :class:`~rpusim.io.AnalogMVM`.
    phys_input_size : int
        Rows of the physical tile (``mapping.max_input_size``); ``n_in`` rows are centred in
        it.
    g_converter : BaseConductanceConverter
        The conductances of the weights (the noise model's converter).

    Attributes
    ----------
    is_test : bool
        Set by the tile before each MVM: IR drop acts in test mode only.

    Notes
    -----
    The gradients are those of the passes' products (the first pass carries the input
    gradient, as the higher bits' split has derivative zero in aihwkit's autograd; every pass
    adds to the weight gradient). The IR drop and the read noise of a test-mode read are not
    differentiated: a backward after such a read takes the products' gradients.
    """

    time_sliced = True

    def __init__(self, params, n_out: int, n_in: int, dtype, rng, *, phys_input_size: int,
                 g_converter):
        self.phys_input_size = int(phys_input_size or n_in)
        if self.phys_input_size < n_in:
            raise ValueError(f"time-dependent IR drop: the tile's {n_in} rows exceed the "
                             f"physical height mapping.max_input_size={phys_input_size}")
        if self.phys_input_size % params.ir_drop_segments:
            raise ValueError(f"ir_drop_segments={params.ir_drop_segments} must divide the "
                             f"physical tile height {self.phys_input_size}")
        res = params.inp_res if params.inp_res <= 1 else 1.0 / params.inp_res
        if res <= 0 or params.inp_bound <= 0:
            raise ValueError("time-dependent IR drop needs a DAC: inp_res > 0 and "
                             "inp_bound > 0 (pulse widths are counted in DAC steps)")
        if params.mv_type == AnalogMVType.SPLIT_MODE:
            bits = np.log2(1.0 / res + 2)
            if bits % 1 or params.split_mode_bit_shift >= bits:
                raise ValueError(f"SPLIT_MODE needs inp_res = 2**n - 2 levels and "
                                 f"split_mode_bit_shift < n, got inp_res={params.inp_res} and "
                                 f"split_mode_bit_shift={params.split_mode_bit_shift}")
        self._res = res
        self.g_converter = g_converter
        self.is_test = False
        super().__init__(params, n_out, n_in, dtype, rng)

    @staticmethod
    def _supported(params) -> bool:
        # IOParametersIRDropT.check_time_sliced_support refuses what the reads do not model
        return True

    def mvm(self, M: np.ndarray, U: np.ndarray, is_test: bool = False) -> np.ndarray:
        """:meth:`AnalogMVM.mvm`, with IR drop when ``is_test``."""
        self.is_test = bool(is_test)
        return super().mvm(M, U, is_test)

    # -- the passes --------------------------------------------------------------------------------
    def _passes(self, V: np.ndarray) -> list[tuple[np.ndarray, float, float, int]]:
        """``(inputs, bit weight, t_max, time steps)`` of each pass of the read."""
        p = self.params
        res = self._res
        scale = p.ir_drop_time_step_resolution_scale
        levels = p.inp_bound / res + 2
        if p.mv_type == AnalogMVType.ONE_PASS:
            return [(V, 1.0, 1.0, int(levels / 2 * scale))]
        # in the tile's precision, as aihwkit splits its float32 tensors
        t = self._t
        step = t(2 * res)
        ints = V / step
        if p.mv_type == AnalogMVType.SPLIT_MODE:
            shift = p.split_mode_bit_shift
            high = np.sign(ints) * np.floor(np.abs(ints) / t(2 ** shift))
            low = np.fmod(ints, t(2 ** shift))
            high_steps = 2 ** int(np.log2(levels) - shift - 1)
            return [(low * step, 1.0, 2 * res * (2 ** shift - 1), int(2 ** shift * scale)),
                    (high * step, float(2 ** shift), 2 * res * (high_steps - 1),
                     int(high_steps * scale))]
        passes = []
        for bit in range(int(np.log2(1.0 / res + 2)) - 1):
            low = np.fmod(ints, t(2))
            ints = np.sign(ints) * np.floor(np.abs(ints) / t(2))
            passes.append((low * step, float(2 ** bit), 2 * res, 2))
        return passes

    def _on_dac_grid(self, V: np.ndarray) -> np.ndarray:
        """DAC outputs as ``n * step`` computed in the tile's precision, as aihwkit's
        quantiser computes them: the time comparisons of exactly quantised inputs depend on
        the last bit. Values off the grid (input noise, asymmetry) are left alone."""
        if self._inp_res <= 0:
            return V
        step = self._t(self._inp_res)
        n = np.rint(V / step)
        on_grid = np.abs(V / step - n) < 1e-3
        return np.where(on_grid, n.astype(self.dtype) * step, V).astype(self.dtype)

    def _as_dtype(self, values: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(values, dtype=self.dtype)

    def _read(self, M, U, scale, scaling, draws: _Draws) -> _Reading:
        """One read: the DAC, then one product and ADC per pass (bit weights summed)."""
        V, in_factor = self._dac(U, scale, scaling, draws)
        total, passed, first, extra = None, True, None, []
        for k, (inputs, weight, t_max, steps) in enumerate(self._passes(self._on_dac_grid(V))):
            pass_draws = draws if k == 0 else _Draws(draws.key, draws.rows,
                                                     draws.bm_round + k * _PASS_ROUND, self._c)
            z = self._one_pass(M, inputs, t_max, steps, pass_draws)
            ok, o, factor, clipped = self._adc(z, pass_draws)
            passed = passed and ok
            part = o if weight == 1.0 else self._t(weight) * o
            total = part if total is None else total + part
            if k == 0:
                first = (inputs, factor, clipped)
            else:
                extra.append((inputs, weight, factor))
        return _Reading(passed, total, first[0], in_factor, first[1], first[2], extra)

    def _one_pass(self, M, V, t_max: float, steps: int, draws: _Draws) -> np.ndarray:
        p = self.params
        ir_drop = p.ir_drop if self.is_test else 0.0
        if M.ndim == 3 and (ir_drop > 0 or p.apply_xdep_pcm_read_noise):
            raise ValueError("time-dependent IR drop and read noise need one weight matrix: "
                             "modifier.per_batch_sample gives one per sample")
        W = self._read_noise(M, V, draws) if p.apply_xdep_pcm_read_noise else M
        if ir_drop == 0:
            return np.ascontiguousarray(_product(W, V), dtype=self.dtype)
        return self._time_sliced(W, V, ir_drop, t_max, steps)

    # -- physics -------------------------------------------------------------------------------
    def _read_noise(self, M, V, draws: _Draws) -> np.ndarray:
        """Input-dependent PCM read noise on ``|g+ - g-|`` of the weights (redrawn per pass)."""
        p = self.params
        mean_pulse = float(np.mean(np.abs(V))) / (2 * self._res)
        x = np.log10(mean_pulse) if mean_pulse > 0 else 0.0
        slope = np.polyval(_XDEP_SLOPE, x)
        offset = np.polyval(_XDEP_OFFSET, x) * 1e6
        slices, params = self.g_converter.convert_to_conductances(np.asarray(M, np.float64))
        g = np.abs(slices[0] - slices[1])
        xi = kio.row_draws(draws.key, np.arange(self.n_out, dtype=np.int64),
                           kio.tag(draws.bm_round + _XDEP_ROUND, kio.TAG_W_NOISE), self.n_in,
                           True, self._c)
        noisy = g + p.xdep_pcm_read_noise_scale * (slope * g + offset) * xi
        return self._as_dtype(noisy * np.sign(M) / params["scale_ratio"])

    def _time_sliced(self, W, V, ir_drop: float, t_max: float, steps: int) -> np.ndarray:
        """The column currents integrated by the ADCs, normalised (module notes)."""
        p = self.params
        phys = self.phys_input_size
        pad = (phys - self.n_in) // 2
        weights = np.zeros((phys, self.n_out))
        weights[pad:pad + self.n_in] = np.asarray(W, np.float64).T
        inputs = np.zeros((V.shape[0], phys), self.dtype)
        inputs[:, pad:pad + self.n_in] = V
        c = integration_weights(steps, p.ir_drop_integration_sum)
        lengths = pulse_lengths(inputs, time_grid(t_max, steps, self.dtype), c)
        slices, params = self.g_converter.convert_to_conductances(weights)
        factors = getattr(self.g_converter, "f_lst", None) or [1.0]
        segments = p.ir_drop_segments
        rows = phys // segments
        r_wire = 1e-6 * ir_drop * p.ir_drop_rs * rows
        total = np.zeros((V.shape[0], self.n_out))
        for f, g_plus, g_minus in zip(factors, slices[::2], slices[1::2]):
            currents = self._column_currents(lengths, g_plus, g_minus, segments, rows,
                                             r_wire, c.sum())
            if p.adc_quantization:
                ticks = np.trunc(currents / 100 * p.adc_frequency)
                currents = ticks * 100 / p.adc_frequency
            total += f * currents
        total /= params["scale_ratio"] * 0.2 * (p.inp_bound / self._res) / 2
        return self._as_dtype(total)

    def _column_currents(self, lengths, g_plus, g_minus, segments: int, rows: int,
                         r_wire: float, total_weight: float) -> np.ndarray:
        """Integrated current of every column (even: ADC after the last row; odd: before
        the first)."""
        s = g_plus + g_minus
        d = g_plus - g_minus
        G = s.reshape(segments, rows, -1).sum(axis=1) + 1e-12
        w_down, r_down = thevenin_weights(G, r_wire)
        w_up, r_up = thevenin_weights(G[::-1], r_wire)
        odd = np.arange(G.shape[1]) % 2 == 1
        w = np.where(odd, w_up[::-1], w_down)
        r_th = np.where(odd, r_up, r_down)
        w_rows = np.repeat(w, rows, axis=0)
        undriven = 0.4 * total_weight * (w_rows * s).sum(axis=0)
        constant = (undriven - self.params.ir_drop_v_read * total_weight) / r_th
        return constant + 0.2 * (lengths @ (w_rows * d)) / r_th
