"""Runtime models of the Tiki-taka family: TransferCompound (v1), BufferedTransferCompound (v2),
ChoppedTransferCompound (v3), DynamicTransferCompound (v4) — spec compounds §5-§8.

SGD pulses go to device 0 (A) only; after every sample a counter advances and, on schedule,
slices (columns or rows) are read from one device and written into the next. The samples
between two transfer events are handed to A in one engine call (the engine processes them in
order, so the physics is that of the per-sample loop).
"""

from __future__ import annotations

import math
import operator

import numpy as np

from rpusim import io as _io
from rpusim.compounds import kernels
from rpusim.compounds.base import (CompoundModel, _alike, build_submodel,
                                   construction_generator, chunk_key, is_leaf, make_reader,
                                   one_hot, physics_of, sub_update)
from rpusim.compounds.chopped_loop import chop_period, chopped_loop, raw_needed
from rpusim.compounds.transfer_loop import (covered, keys_needed, transfer_loop,
                                            transfer_loop_noisy)
from rpusim.configs.enums import PulseType
from rpusim.devices.model import PulsedDeviceModel
from rpusim.kernels.entry import entry_point
from rpusim.kernels.update import (_PARALLEL_WORK, _STAGE_PARALLEL_WORK, _constants,
                                   _is_builtin, _plan)

__all__ = ["TransferModel", "BufferedTransferModel", "ChoppedTransferModel",
           "DynamicTransferModel", "build_transfer"]

# TransferModel.update and ChoppedTransferModel.update take their numba loops where they apply
# (tests switch them off to compare them with the Python loops)
FUSED_LOOP = True


# the chopped and dynamic transfers' config fields that the numba loop's arguments read
_CHOPPED_FIELDS = operator.attrgetter(
    "step", "momentum", "correct_gradient_magnitudes", "fast_lr", "scale_fast_lr",
    "auto_scale", "auto_momentum", "in_chop_prob", "in_chop_random", "out_chop_prob",
    "forget_buffer", "no_buffer", "buffer_granularity", "auto_granularity", "transfer_every")
_DYNAMIC_FIELDS = operator.attrgetter("buffer_cap", "tail_weightening",
                                      "experimental_correct_accumulation")


def _serial_update(work: int, stage_work: int) -> bool:
    """Whether ``pulsed_update`` runs a call of this work (batch x out x in) and stage work
    (batch x max(out, in)) with the serial kernels."""
    return work < _PARALLEL_WORK and stage_work < _STAGE_PARALLEL_WORK


def _loop_device(dev, rng) -> bool:
    """Whether ``dev`` is a device the numba loop updates: one of rpusim's own pulsed
    devices, without pulse counters, drawing from the compound's generator."""
    return (type(dev) is PulsedDeviceModel and dev.counters is None and dev.rng is rng
            and _is_builtin(dev.params))


def _loop_update(upd) -> bool:
    """Whether ``upd`` gives stochastic pulses (the kernels the loop calls)."""
    return upd.pulse_type in (PulseType.STOCHASTIC, PulseType.STOCHASTIC_COMPRESSED)


def _round_half_away(v: float) -> int:
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


class TransferModel(CompoundModel):
    """Tiki-taka v1 (compounds §5). No aliasing: ``W = sum_k gamma_k W_k`` always."""

    def __init__(self, config, devices, out_size, in_size, dtype, rng):
        super().__init__(config, devices, config.gammas(dtype), out_size, in_size, dtype,
                         rng)
        n = len(devices)
        cols = config.transfer_columns
        self.t_in = in_size if cols else out_size
        self.t_out = out_size if cols else in_size
        self.slice_idx = np.zeros(n, np.int64)
        self.lr_vec = (list(config.transfer_lr_vec) if config.transfer_lr_vec
                       else [config.transfer_lr] * n)
        if cols:
            self._read_mvm = make_reader(config.transfer_forward, out_size, in_size, dtype, rng)
        else:
            self._read_mvm = make_reader(config.transfer_forward, in_size, out_size, dtype, rng)

    # -- schedule -----------------------------------------------------------------------------
    def transfer_every_list(self) -> list[float]:
        cfg = self.config
        n = len(self.devices)
        if cfg.transfer_every_vec:
            return [float(t) for t in cfg.transfer_every_vec]
        te = [float(cfg.transfer_every)]
        nr = min(cfg.n_reads_per_transfer, self.t_in)
        for _ in range(1, n):
            # aihwkit scales by the out size (its docstring says in size): replicated
            te.append(te[-1] * self.t_out / nr)
        if cfg.no_self_transfer:
            te[-1] = 0.0
        return te

    def periods(self, m_batch: int) -> list[int]:
        """Samples between two transfers out of each device, for batches of ``m_batch``."""
        cfg = self.config
        # read on every update: kept until the batch size or a schedule field changes
        key = (m_batch, cfg.transfer_every, tuple(cfg.transfer_every_vec or ()),
               cfg.units_in_mbatch, cfg.n_reads_per_transfer, cfg.no_self_transfer)
        memo = self.__dict__.get("_periods_memo")
        if memo is None or memo[0] != key:
            memo = self._periods_memo = (key, self._periods(m_batch))
        return memo[1]

    def _periods(self, m_batch: int) -> list[int]:
        out = []
        dt = self.dtype.type
        for te in self.transfer_every_list():
            if self.config.units_in_mbatch:
                # the product rounds in the tile dtype, as aihwkit's
                out.append(max(int(math.ceil(dt(te) * dt(m_batch))), 0))
            else:
                out.append(max(_round_half_away(te), 0))
        return out

    # -- SGD ----------------------------------------------------------------------------------
    def pulse_count_lr(self, lr: float) -> float:
        cfg = self.config
        if cfg.fast_lr > 0:
            return cfg.fast_lr * lr if cfg.scale_fast_lr else cfg.fast_lr
        return lr

    def sgd(self, X, D, lr, upd, g, key, m_batch) -> None:
        """SGD pulses of a chunk of samples on device 0."""
        sub_update(self.devices[0], X, D, self.pulse_count_lr(lr), upd, g, key, m_batch)

    def update(self, X, D, lr, upd, granularity=None, key=None, m_batch=None) -> None:
        m = X.shape[0]
        m_batch = m if m_batch is None else m_batch
        if (FUSED_LOOP and type(self) is TransferModel
                and self._fused_v1_update(X, D, lr, upd, granularity, key, m_batch)):
            return
        g = self.granularity if granularity is None else granularity
        periods = self.periods(m_batch)
        active = [(j, e) for j, e in enumerate(periods) if e > 0]
        n = len(self.devices)
        start = 0
        n_chunk = 0
        while start < m:
            idx = self.current_update_idx
            chunk = m - start
            for _, e in active:
                chunk = min(chunk, e - idx % e)
            # the whole batch (the usual case) needs no views of it
            Xc, Dc = (X, D) if chunk == m else (X[start:start + chunk], D[start:start + chunk])
            self.sgd(Xc, Dc, lr, upd, g, chunk_key(key, n_chunk), m_batch)
            n_chunk += 1
            self.current_update_idx += chunk
            start += chunk
            for j, e in active:
                if self.current_update_idx % e == 0:
                    self.transfer(j, min(j + 1, n - 1), lr)
        self.reduce()

    def _loop_reader(self, X, D, upd, chunk: int):
        """The transfer reader, if the numba loops (:mod:`rpusim.compounds.chopped_loop`,
        :mod:`rpusim.compounds.transfer_loop`) cover this call of two devices whose largest
        SGD call has ``chunk`` samples; else None."""
        reader = self._static_loop_reader()
        nx, nd = X.shape[1], D.shape[1]
        if (reader is None
                or not (_loop_update(upd) and _loop_update(self.config.transfer_update))
                or _io.STAGED_ONLY or nx * nd > _io.FUSED_WORK
                # the largest SGD call runs the serial pulse kernels, as pulsed_update does
                # for the Python loop's calls of that size (and the write's single sample)
                or not _serial_update(chunk * nx * nd, chunk * max(nx, nd))
                or not X.flags.carray or not D.flags.carray
                or X.dtype is not self.dtype or D.dtype is not self.dtype
                # the loops end with the reduction into w
                or not self._alike_weights()):
            return None
        return reader

    def _alike_weights(self) -> bool:
        """``_alike(w, A's weights, C's weights)``, kept for these three arrays (an array's
        shape, dtype and layout stay what they are)."""
        w, a, c = self.w, self.devices[0].w, self.devices[1].w
        memo = self.__dict__.get("_alike_memo")
        if memo is None or memo[0] is not w or memo[1] is not a or memo[2] is not c:
            memo = self._alike_memo = (w, a, c, _alike(w, a, c))
        return memo[3]

    def _static_loop_reader(self):
        """The part of :meth:`_loop_reader` that the model's objects decide (its devices and
        reader are fixed when they are built: their kind, counters, generator, the reader's
        IO), kept for these objects: the transfer reader or None."""
        devices, read_mvm, rng = self.devices, self._read_mvm, self.rng
        memo = self.__dict__.get("_loop_static")
        if (memo is not None and len(devices) == 2 and memo[0] is read_mvm
                and memo[1] is devices[0] and memo[2] is devices[1] and memo[3] is rng):
            return memo[4]
        reader = getattr(read_mvm, "__self__", None)
        if (len(devices) != 2 or reader is None
                or not (_loop_device(devices[0], rng) and _loop_device(devices[1], rng))
                or reader.perfect or not reader._fusable
                # the loops read with kio.managed_mvm, without IR drop and weight noise
                or reader._nonideal or reader.rng is not rng):
            reader = None
        if len(devices) == 2:
            self._loop_static = (read_mvm, devices[0], devices[1], rng, reader)
        return reader

    def _fused_v1_update(self, X, D, lr, upd, granularity, key, m_batch) -> bool:
        """:meth:`update` in one numba call (:mod:`rpusim.compounds.transfer_loop`) where the
        configuration is one it covers; False, having changed nothing, where not."""
        cfg = self.config
        if (key is not None or len(self.devices) != 2 or not cfg.transfer_columns
                or cfg.n_reads_per_transfer != 1 or cfg.with_reset_prob > 0
                or cfg.random_selection
                # (before the plans: only pulsed updates have one)
                or not (_loop_update(upd) and _loop_update(cfg.transfer_update))):
            return False
        m = X.shape[0]
        schedule = self.periods(m_batch)
        a, c_dev = self.devices
        g = self.granularity if granularity is None else granularity
        lr_pc, lr_t = self.pulse_count_lr(lr), self.transfer_lr(0, 1, lr)
        plan, plan_t = _plan(upd), _plan(cfg.transfer_update)
        # what follows from these values is kept until one of them changes (in training they
        # stay the same call after call); the plans, which hold arrays, are compared by
        # identity
        wn_a = a.wn_sigma if a._write_noise else 0.0
        wn_c = c_dev.wn_sigma if c_dev._write_noise else 0.0
        memo_key = (lr_pc, lr_t, g, c_dev.granularity, schedule, wn_a, wn_c)
        memo = self.__dict__.get("_v1_memo")
        if memo is None or memo[0] != memo_key or memo[1] is not plan or memo[2] is not plan_t:
            periods = [e for e in schedule if e > 0]
            memo = self._v1_memo = (memo_key, plan, plan_t, (
                _constants(plan[3], lr_pc, g, self.dtype), plan[2] if lr_pc < 0 else plan[1],
                _constants(plan_t[3], lr_t, c_dev.granularity, self.dtype),
                plan_t[2] if lr_t < 0 else plan_t[1], np.array([wn_a, wn_c]),
                np.array(periods, np.int64),
                # A's period, 0 where A never transfers (a transfer rate of 0 returns at once)
                schedule[0] if lr_t != 0 else 0), np.zeros(2, np.int64),
                # the staged kernels of write noise take any trains, the composite one word
                (wn_a > 0 or covered(upd, lr_pc, g))
                and (wn_c > 0 or covered(cfg.transfer_update, lr_t, c_dev.granularity)),
                transfer_loop_noisy if wn_a > 0 or wn_c > 0 else transfer_loop,
                periods, min(periods, default=1 << 62))
        periods = memo[7]
        # (the largest SGD call: a chunk ends at the first period, or at the batch's end)
        reader = self._loop_reader(X, D, upd, min(memo[8], m))
        if reader is None or not memo[5]:
            return False
        c_a, flags_a, c_c, flags_c, wn, periods_arr, period = memo[3]
        state = memo[4]
        idx = self.current_update_idx
        state[0] = idx
        state[1] = self.slice_idx[0]
        n_raw = keys_needed(idx, m, periods, period)
        raw = self.rng.raw_keys(n_raw)
        rargs = reader.kernel_arguments()
        args = (X, D, a.w, a.P, a.wp, c_a, flags_a, a.params, c_dev.w, c_dev.P, c_dev.wp, c_c,
                flags_c, c_dev.params, wn, *rargs, periods_arr, period, state, raw, self.w,
                self.gammas)
        # the loop's compiled entry point, once found, for arguments of the same numba types:
        # the dispatcher types each argument on every call (the devices' parameter tuples
        # alone took microseconds). The arrays made here have fixed types (whatever the
        # learning rate), X and D are C-contiguous, aligned and writeable in the tile dtype
        # (_loop_reader), the model's objects are the same as then.
        loop = memo[6]
        owned = (a.w, a.P, a.wp, a.params, c_dev.w, c_dev.P, c_dev.wp, c_dev.params, self.w,
                 self.gammas, *rargs)
        found = self.__dict__.get("_v1_entry")
        if (found is not None and found[0] is loop and found[1] is not None
                and all(map(operator.is_, owned, found[2]))):
            used = found[1](*args)
        else:
            used = loop(*args)
            self._v1_entry = (loop, entry_point(loop, args), owned)
        if used != n_raw:  # (keys_needed counts what the loop does: never expected)
            raise RuntimeError(f"transfer_loop used {used} keys, {n_raw} were drawn")
        self.current_update_idx = int(state[0])
        self.slice_idx[0] = int(state[1])
        return True

    # -- transfer -----------------------------------------------------------------------------
    def unit_rows(self, slices: np.ndarray) -> np.ndarray:
        """``one_hot(slices, t_in)``: the inputs that read or write the slices.

        The kernels only read them, so a single slice (the usual transfer) gets one kept row
        whose bit is moved, instead of a new array per read and per write."""
        if len(slices) != 1:
            return one_hot(slices, self.t_in, self.dtype)
        return self._unit_row_at(int(slices[0]))

    def _unit_row_at(self, c: int) -> np.ndarray:
        """The kept unit row (1, t_in) with its bit at ``c`` (see :meth:`unit_rows`)."""
        row = self.__dict__.get("_unit_row")
        if row is None:
            row = self._unit_row = np.zeros((1, self.t_in), self.dtype)
            self._unit_at = 0
        row[0, self._unit_at] = 0
        self._unit_at = c
        row[0, c] = 1
        return row

    def read(self, f: int, slices: np.ndarray) -> np.ndarray:
        """Read slices of device ``f`` through the transfer IO: (len(slices), t_out)."""
        return self._read_rows(f, self.unit_rows(slices))

    def _read_rows(self, f: int, U: np.ndarray) -> np.ndarray:
        """:meth:`read` of the slices whose unit rows are ``U`` (tile dtype, C-contiguous)."""
        w = self.devices[f].w
        return self._read_mvm(w if self.config.transfer_columns else w.T, U, False)

    def write(self, t: int, slices: np.ndarray, values: np.ndarray, lr: float, upd,
              m_batch: int) -> None:
        """Pulsed write ``W_t[slice] -= lr * values`` (columns: ``x = e_c``, ``d = values``)."""
        self._write_rows(t, self.unit_rows(slices), values, lr, upd, m_batch)

    def _write_rows(self, t: int, onehot: np.ndarray, values: np.ndarray, lr: float, upd,
                    m_batch: int) -> None:
        """:meth:`write` of the slices whose unit rows are ``onehot``."""
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if self.config.transfer_columns:
            sub_update(self.devices[t], onehot, values, lr, upd, None, None, m_batch)
        else:
            sub_update(self.devices[t], values, onehot, lr, upd, None, None, m_batch)

    def start_slice(self, f: int) -> int:
        if self.config.random_selection:
            # uniform (aihwkit favours the first and last slice, spec compounds §5.5)
            return int(self.rng.generator.integers(0, self.t_in))
        return int(self.slice_idx[f])

    def transfer_lr(self, f: int, t: int, lr: float):
        """Transfer learning rate out of device ``f``, in the tile dtype as aihwkit."""
        # read on every transfer: kept until a factor changes
        key = (f, lr, self.lr_vec[f], self.config.scale_transfer_lr)
        memo = self.__dict__.get("_transfer_lr_memo")
        if memo is None or memo[0] != key:
            dt = self.dtype.type
            lr_t = dt(self.lr_vec[f])
            memo = self._transfer_lr_memo = (key, lr_t * dt(lr)
                                             if self.config.scale_transfer_lr else lr_t)
        return memo[1]

    def gamma_factor(self, lr_t, f: int, t: int):
        """Buffered transfers scale the LR by ``gamma_f / gamma_t`` when both are > 0."""
        gf, gt = self.gammas[f], self.gammas[t]
        return lr_t * (gf / gt) if gf > 0 and gt > 0 else lr_t

    def transfer(self, f: int, t: int, lr: float) -> None:
        if f == t:
            return
        cfg = self.config
        lr_t = self.transfer_lr(f, t, lr)
        if lr_t == 0:
            return
        nr = min(cfg.n_reads_per_transfer, self.t_in)
        c0 = self.start_slice(f)
        # slices past the last one wrap to 0 in a second pass (aihwkit's transfer), which
        # resets and writes only its own slices
        first = min(nr, self.t_in - c0)
        self.read_and_update(f, t, c0, first, lr_t)
        if nr > first:
            self.read_and_update(f, t, 0, nr - first, lr_t)
        self.slice_idx[f] = (c0 + nr) % self.t_in

    def read_and_update(self, f: int, t: int, start: int, count: int, lr_t) -> None:
        """Read slices ``start ... start+count-1`` of device ``f`` and write them into ``t``."""
        cfg = self.config
        if count == 1 and not (cfg.with_reset_prob > 0 and cfg.transfer_columns):
            # the usual transfer: one slice, whose unit row serves the read and the write
            U = self._unit_row_at(start)
            V = self._read_rows(f, U)
            self._write_rows(t, U, np.negative(V, out=V), lr_t, cfg.transfer_update, 1)
            return
        slices = np.arange(start, start + count)
        if cfg.with_reset_prob > 0 and cfg.transfer_columns:
            V = np.empty((count, self.t_out), self.dtype)
            for k in range(count):
                V[k] = self.read(f, slices[k:k + 1])[0]
                if self.rng.generator.random() < cfg.with_reset_prob:
                    # resets all slices of this pass, also those not read yet (as aihwkit)
                    self.devices[f].reset_columns(start, count, 1.0)
        else:
            V = self.read(f, slices)
        # read with output scale -1, written with +lr_t: W_t += lr_t * W_f (in expectation)
        self.write(t, slices, np.negative(V, out=V), lr_t, cfg.transfer_update, count)

    # -- whole-matrix operations and weights --------------------------------------------------
    def reset_columns(self, start: int, num: int, prob: float) -> None:
        """Transfer compounds reset the fast device only (update spec §8.3)."""
        self.devices[0].reset_columns(start, num, prob)
        self.reduce()

    def reset_counters(self) -> None:
        self.current_update_idx = 0
        self.slice_idx[:] = 0

    def set_weights(self, w: np.ndarray) -> None:
        """All devices 0, the last one ``w / gamma_last`` (each with its own set rules)."""
        self.reset_counters()
        zero = np.zeros_like(w)
        for dev in self.devices[:-1]:
            dev.set_weights(zero)
        self.devices[-1].set_weights(w / self.gammas[-1])
        self.reduce()

    def get_hidden_update_index(self) -> int:
        return 0

    def set_hidden_update_index(self, index: int) -> None:
        """Ignored, as in aihwkit (the SGD pulses always go to device 0)."""

    def own_state(self) -> dict:
        out = super().own_state()
        out["slice_idx"] = self.slice_idx.copy()
        return out

    def __getstate__(self) -> dict:
        # a compiled entry point does not pickle; the next update finds it (and the kept
        # checks) again
        state = super().__getstate__()
        for name in ("_v1_entry", "_loop_static", "_alike_memo"):
            state.pop(name, None)
        return state

    def load_own_state(self, state: dict) -> None:
        super().load_own_state(state)
        self.slice_idx[:] = state["slice_idx"]


class BufferedTransferModel(TransferModel):
    """Tiki-taka v2 (compounds §6): a float buffer per source device, thresholded writes."""

    def __init__(self, config, devices, out_size, in_size, dtype, rng):
        super().__init__(config, devices, out_size, in_size, dtype, rng)
        self.buffers = [np.zeros((out_size, in_size), self.dtype)
                        for _ in range(len(devices) - 1)]

    def extra_hidden_names(self) -> list[str]:
        return [f"buffered_FP_weight_{k}" for k in range(len(self.buffers))]

    def get_extra_hidden(self) -> dict:
        return {f"buffered_FP_weight_{k}": b.copy() for k, b in enumerate(self.buffers)}

    def set_extra_hidden(self, params: dict) -> None:
        for k, b in enumerate(self.buffers):
            if f"buffered_FP_weight_{k}" in params:
                b[...] = params[f"buffered_FP_weight_{k}"]

    def transfer_lr(self, f: int, t: int, lr: float):
        return self.gamma_factor(super().transfer_lr(f, t, lr), f, t)

    def transfer(self, f: int, t: int, lr: float) -> None:
        if f == t or f >= len(self.devices) - 1:
            return
        cfg = self.config
        lr_t = self.transfer_lr(f, t, lr)
        if lr_t == 0:
            return
        dt = self.dtype.type
        nr = min(cfg.n_reads_per_transfer, self.t_in)
        c0 = self.start_slice(f)
        slices = (c0 + np.arange(nr)) % self.t_in
        V = self.read(f, slices)
        g_t = dt(self.devices[t].granularity)
        H = self.buffers[f] if cfg.transfer_columns else self.buffers[f].T
        keep = dt(1) - dt(min(max(cfg.momentum, 0.0), 1.0))
        counts = kernels.buffered_transfer(
            H, slices.astype(np.int64), V, abs(lr_t), dt(cfg.thres_scale) * g_t,
            dt(cfg.transfer_update.desired_bl), keep, dt(cfg.momentum), cfg.forget_buffer)
        if np.any(counts != 0):
            self.write(t, slices, -counts, dt(cfg.step) * g_t, cfg.transfer_update, nr)
        self.slice_idx[f] = (c0 + nr) % self.t_in


class ChoppedTransferModel(TransferModel):
    """Tiki-taka v3 (compounds §7): A accumulates the chopped gradient; the buffered,
    de-chopped reads of A are written into C. ``W = gamma_0 (chi o A) + gamma_1 C``."""

    def __init__(self, config, devices, out_size, in_size, dtype, rng):
        super().__init__(config, devices, out_size, in_size, dtype, rng)
        self.in_chopper = np.zeros(self.t_in, bool)
        self.out_chopper = np.zeros(self.t_out, bool)
        self.buffer = np.zeros((out_size, in_size), self.dtype)
        self.m_x = 0.0
        self.m_d = 0.0
        self.transfer_counter = 0
        self.last_lr_pc = 0.0
        self.reduce()

    # chopper signs on the weight grid: rows (d) and columns (x)
    def _signs(self) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "in_chopper"):
            return np.ones(self.out_size, self.dtype), np.ones(self.in_size, self.dtype)
        s_in = np.where(self.in_chopper, -1, 1).astype(self.dtype)
        s_out = np.where(self.out_chopper, -1, 1).astype(self.dtype)
        return (s_out, s_in) if self.config.transfer_columns else (s_in, s_out)

    def chopper_matrix(self) -> np.ndarray:
        s_d, s_x = self._signs()
        return np.outer(s_d, s_x)

    def reduce_arrays(self, arrays, out: np.ndarray | None = None) -> np.ndarray:
        return super().reduce_arrays([self.chopper_matrix() * arrays[0]] + list(arrays[1:]),
                                     out)

    def reduce(self) -> None:
        # after every update and decay: one kernel pass (reduce_arrays' bits) where it applies
        devices = self.devices
        if (len(devices) == 2 and "in_chopper" in self.__dict__
                and _alike(self.w, devices[0].w, devices[1].w)):
            s_d, s_x = self._signs()
            kernels.chopped_sum2(self.w, self.gammas[0], devices[0].w, s_d, s_x,
                                 self.gammas[1], devices[1].w)
        else:
            super().reduce()

    def extra_hidden_names(self) -> list[str]:
        return ["buffered_FP_weight_0"]

    def get_extra_hidden(self) -> dict:
        return {"buffered_FP_weight_0": self.buffer.copy()}

    def set_extra_hidden(self, params: dict) -> None:
        if "buffered_FP_weight_0" in params:
            self.buffer[...] = params["buffered_FP_weight_0"]

    def periods(self, m_batch: int) -> list[int]:
        te = self.config.transfer_every
        if te < 0:
            # automatic period from A's number of states, (w_max - w_min) / dw_min (mean over
            # A's single devices when A is itself a compound)
            dev = self.devices[0]
            leaves = [dev] if is_leaf(dev) else dev.leaf_models()
            num_states = float(np.mean([(physics_of(leaf).w_max - physics_of(leaf).w_min)
                                        / leaf.dw_min for leaf in leaves]))
            return [max(1, _round_half_away(num_states / self.t_in * abs(te))), 0]
        return super().periods(m_batch)

    def pulse_count_lr_sample(self, lr: float, upd, x, d, m_batch) -> float:
        cfg = self.config
        if not (cfg.auto_scale and cfg.fast_lr > 0):
            return self.pulse_count_lr(lr)
        lr_pc = cfg.fast_lr * upd.desired_bl * self.devices[0].granularity
        if self.m_x > 0 and self.m_d > 0:
            lr_pc /= self.m_x * self.m_d
        return lr_pc * lr if cfg.scale_fast_lr else lr_pc

    def _auto_scale(self, x, d, m_batch) -> None:
        tau = (1 - self.config.auto_momentum) / m_batch
        for name, new in (("m_x", float(np.max(np.abs(x)))), ("m_d", float(np.max(np.abs(d))))):
            old = getattr(self, name)
            if old <= 0:
                setattr(self, name, new)
            elif new > 0:
                setattr(self, name, (1 - tau) * old + tau * new)

    def sgd(self, X, D, lr, upd, g, key, m_batch) -> None:
        """Chopped SGD pulses on A: every pulse sign times the element's chopper sign."""
        s_d, s_x = self._signs()
        Xs = np.ascontiguousarray(X * s_x)
        Ds = np.ascontiguousarray(D * s_d)
        if self.config.auto_scale:
            for r in range(X.shape[0]):
                self._auto_scale(X[r], D[r], m_batch)
                lr_pc = self.pulse_count_lr_sample(lr, upd, X[r], D[r], m_batch)
                self.last_lr_pc = lr_pc
                sub_update(self.devices[0], Xs[r:r + 1], Ds[r:r + 1], lr_pc, upd, g,
                           chunk_key(key, r), m_batch)
        else:
            lr_pc = self.pulse_count_lr(lr)
            self.last_lr_pc = lr_pc
            sub_update(self.devices[0], Xs, Ds, lr_pc, upd, g, key, m_batch)

    def update(self, X, D, lr, upd, granularity=None, key=None, m_batch=None) -> None:
        if not (FUSED_LOOP and self._fused_update(X, D, lr, upd, granularity, key, m_batch)):
            super().update(X, D, lr, upd, granularity, key, m_batch)

    def _fused_update(self, X, D, lr, upd, granularity, key, m_batch) -> bool:
        """:meth:`update` in one numba call (:mod:`rpusim.compounds.chopped_loop`) where the
        configuration is one it covers; False, having changed nothing, where not."""
        cfg = self.config
        a, c_dev = self.devices
        m, nx = X.shape
        nd = D.shape[1]
        m_batch = m if m_batch is None else m_batch
        schedule = self.periods(m_batch)
        periods = [e for e in schedule if e > 0]
        if (key is not None or not cfg.transfer_columns or cfg.n_reads_per_transfer != 1):
            return False
        reader = self._loop_reader(X, D, upd, 1 if cfg.auto_scale else min(periods + [m]))
        if reader is None:
            return False
        g = self.granularity if granularity is None else granularity
        lr_pc, lr_t = self.pulse_count_lr(lr), self.transfer_lr(0, 1, lr)
        plan, plan_t = _plan(upd), _plan(cfg.transfer_update)
        dynamic = isinstance(self, DynamicTransferModel)
        # the arrays that follow from these values are kept until one of them changes (in
        # training they stay the same call after call); the plans, which hold arrays, are
        # compared by identity, the config's fields that the arrays read by value
        memo_key = (lr, lr_pc, lr_t, m, m_batch, g, a.granularity, c_dev.granularity,
                    schedule, _CHOPPED_FIELDS(cfg), _DYNAMIC_FIELDS(cfg) if dynamic else None)
        memo = self.__dict__.get("_loop_memo")
        if memo is None or memo[0] != memo_key or memo[1] is not plan or memo[2] is not plan_t:
            memo = self._loop_memo = (memo_key, plan, plan_t, self._chopped_loop_arguments(
                lr, lr_pc, lr_t, plan, plan_t, g, m_batch, schedule, periods, dynamic))
        c_a, c_c, flags_c, t_const, fp, ip, periods_arr = memo[3]
        if dynamic:
            running, past, switched = self.running_mean, self.past_mean, self.switched
        else:
            running = past = self.buffer[:0]
            switched = self.in_chopper[:0]
        state = np.array([self.m_x, self.m_d, self.last_lr_pc, self.current_update_idx,
                          self.transfer_counter, self.slice_idx[0]], np.float64)
        n_raw = raw_needed(m, nx, nd, cfg.out_chop_prob > 0)
        raw = self.rng.raw_keys(n_raw)
        wn = np.array([dev.wn_sigma if dev._write_noise else 0.0 for dev in (a, c_dev)])
        used = chopped_loop(
            X, D, a.w, a.P, a.wp, c_a, plan[1], plan[2], a.params, c_dev.w, c_dev.P, c_dev.wp,
            c_c, flags_c, c_dev.params, wn, *reader.kernel_arguments(), self.in_chopper,
            self.out_chopper, switched, self.buffer, running, past, t_const, fp, ip,
            periods_arr, state, raw, self.w, self.gammas)
        # the outputs not used go back: the generator is where the Python loop leaves it
        self.rng.unkey(n_raw - used)
        self.m_x, self.m_d, self.last_lr_pc = float(state[0]), float(state[1]), float(state[2])
        self.current_update_idx = int(state[3])
        self.transfer_counter = int(state[4])
        self.slice_idx[0] = int(state[5])
        return True

    def _chopped_loop_arguments(self, lr, lr_pc, lr_t, plan, plan_t, g, m_batch, schedule,
                                periods, dynamic) -> tuple:
        """The arguments of :meth:`_fused_update`'s call that follow from its memo key:
        ``(c_a, c_c, flags_c, t_const, fp, ip, periods)``."""
        cfg = self.config
        tu = cfg.transfer_update
        a, c_dev = self.devices
        dt = self.dtype.type
        # a copy: the loop writes the rate of A's pulses into it when that moves per sample
        c_a = _constants(plan[3], lr_pc, g, self.dtype).copy()
        lr_w = dt(cfg.step) * dt(c_dev.granularity)
        c_c = _constants(plan_t[3], lr_w, c_dev.granularity, self.dtype)
        n_samples = chop_period(cfg.in_chop_prob) if dynamic else 1
        period = schedule[0]
        # what a transfer reads (the Python loop computes it at the first transfer only)
        transfers = lr_t != 0 and period > 0
        bg = self.buffer_unit() if transfers else dt(1)
        g_a = dt(a.granularity)
        nmax = dt(tu.desired_bl)
        if dynamic:
            keep, momentum = dt(1) - dt(cfg.momentum), dt(cfg.momentum)
            cap = nmax * dt(cfg.buffer_cap)
            beta = dt(min(dt(cfg.tail_weightening) / dt(n_samples), dt(1)))
        else:
            keep = dt(1) - dt(min(max(cfg.momentum, 0.0), 1.0))
            momentum, cap, beta = dt(cfg.momentum), dt(0), dt(0)
        lam = (dt(abs(lr_t) / bg) if not cfg.correct_gradient_magnitudes and transfers
               else dt(0))
        t_const = np.array([lam, nmax, keep, momentum, cap, beta, dt(1) / g_a, abs(lr_t), bg],
                           self.dtype)
        auto = cfg.auto_scale
        fp = np.array([lr, lr_pc, cfg.fast_lr * plan[3][1] * a.granularity,
                       (1 - cfg.auto_momentum) / m_batch, cfg.in_chop_prob,
                       cfg.out_chop_prob], np.float64)
        ip = np.array([period, dynamic, auto, auto and cfg.fast_lr > 0,
                       cfg.scale_fast_lr, cfg.in_chop_random,
                       chop_period(cfg.in_chop_prob) if cfg.in_chop_prob > 0 else 1,
                       cfg.forget_buffer, cfg.no_buffer, n_samples,
                       dynamic and cfg.experimental_correct_accumulation,
                       cfg.correct_gradient_magnitudes, transfers], np.int64)
        return (c_a, c_c, plan_t[2] if lr_w < 0 else plan_t[1], t_const, fp, ip,
                np.array(periods, np.int64))

    def transfer_lr(self, f: int, t: int, lr: float):
        return self.gamma_factor(super().transfer_lr(f, t, lr), f, t)

    def buffer_unit(self):
        """The read value of one buffer unit (the divisor of :meth:`buffer_scale`)."""
        cfg = self.config
        dt = self.dtype.type
        g_a = dt(self.devices[0].granularity)
        bg = (dt(cfg.buffer_granularity) if cfg.buffer_granularity > 0 else dt(1)) * g_a
        if cfg.auto_granularity > 0:
            bg = bg * dt(cfg.auto_granularity) / (dt(self.t_in) * dt(abs(cfg.transfer_every)))
        if cfg.correct_gradient_magnitudes:
            bg = bg * (dt(self.devices[1].granularity) / g_a)
        return bg

    def buffer_scale(self, lr_t):
        """``lambda``: the factor from a read value to buffer units (compounds §7 step 3)."""
        dt = self.dtype.type
        bg = self.buffer_unit()
        if self.config.correct_gradient_magnitudes:
            return abs(lr_t) / dt(self.last_lr_pc) / bg if self.last_lr_pc else dt(0)
        return abs(lr_t) / bg

    def slice_signs(self, c: int) -> np.ndarray:
        s_in = -1 if self.in_chopper[c] else 1
        return np.where(self.out_chopper, -s_in, s_in).astype(self.dtype)

    def flip_choppers(self, c: int) -> None:
        cfg = self.config
        p = cfg.in_chop_prob
        if p > 0:
            if cfg.in_chop_random:
                if self.rng.generator.random() < p:
                    self.in_chopper[c] = ~self.in_chopper[c]
            else:
                period = chop_period(p)
                if self.transfer_counter % period + 1 == period:
                    self.in_chopper[c] = ~self.in_chopper[c]
        self.flip_out_choppers(c)

    def flip_out_choppers(self, c: int) -> None:
        p = self.config.out_chop_prob
        if c == self.t_in - 1 and p > 0:
            self.out_chopper ^= self.rng.generator.random(self.t_out) < p

    def _read_for_transfer(self, f: int, t: int, lr: float):
        """Transfer learning rate, current slice and its read; ``None`` if nothing is due
        (only device 0 transfers, into device 1)."""
        if f != 0 or t != 1:
            return None
        lr_t = self.transfer_lr(f, t, lr)
        if lr_t == 0:
            return None
        c = int(self.slice_idx[0])
        return lr_t, c, self.read(0, np.array([c]))[0]

    def transfer(self, f: int, t: int, lr: float) -> None:
        due = self._read_for_transfer(f, t, lr)
        if due is None:
            return
        lr_t, c, v = due
        cfg = self.config
        dt = self.dtype.type
        H = self.buffer if cfg.transfer_columns else self.buffer.T
        keep = dt(1) - dt(min(max(cfg.momentum, 0.0), 1.0))
        counts = kernels.chopped_transfer(
            H, c, v, self.slice_signs(c), dt(self.buffer_scale(lr_t)),
            dt(cfg.transfer_update.desired_bl), keep, dt(cfg.momentum), cfg.forget_buffer,
            cfg.no_buffer)
        if np.any(counts != 0):
            self.write(1, np.array([c]), -counts[None, :],
                       dt(cfg.step) * dt(self.devices[1].granularity), cfg.transfer_update, 1)
        self.flip_choppers(c)
        if c == self.t_in - 1:
            self.transfer_counter += 1
        self.slice_idx[0] = (c + 1) % self.t_in

    def own_state(self) -> dict:
        out = super().own_state()
        out.update(in_chopper=self.in_chopper.copy(), out_chopper=self.out_chopper.copy(),
                   m_x=np.array(self.m_x), m_d=np.array(self.m_d),
                   transfer_counter=np.array(self.transfer_counter),
                   last_lr_pc=np.array(self.last_lr_pc))
        return out

    def load_own_state(self, state: dict) -> None:
        super().load_own_state(state)
        self.in_chopper[:] = state["in_chopper"]
        self.out_chopper[:] = state["out_chopper"]
        self.m_x, self.m_d = float(state["m_x"]), float(state["m_d"])
        self.transfer_counter = int(state["transfer_counter"])
        self.last_lr_pc = float(state["last_lr_pc"])

    def get_choppers(self) -> dict[str, np.ndarray]:
        """Chopper states (extra state, not hidden parameters): input and output choppers."""
        return {"in_chopper": self.in_chopper.copy(), "out_chopper": self.out_chopper.copy()}

    def set_choppers(self, in_chopper=None, out_chopper=None) -> None:
        if in_chopper is not None:
            self.in_chopper[:] = np.asarray(in_chopper, bool)
        if out_chopper is not None:
            self.out_chopper[:] = np.asarray(out_chopper, bool)
        self.reduce()


class DynamicTransferModel(ChoppedTransferModel):
    """Tiki-taka v4 / AGAD (compounds §8): the buffer integrates the change of A's reads
    against the mean of the previous chopper phase."""

    def __init__(self, config, devices, out_size, in_size, dtype, rng):
        super().__init__(config, devices, out_size, in_size, dtype, rng)
        self.running_mean = np.zeros((out_size, in_size), self.dtype)
        self.past_mean = np.zeros((out_size, in_size), self.dtype)
        self.switched = np.zeros(self.t_in, bool)

    def extra_hidden_names(self) -> list[str]:
        return ["buffered_FP_weight", "running_mean_weight", "past_mean_weight"]

    def get_extra_hidden(self) -> dict:
        return {"buffered_FP_weight": self.buffer.copy(),
                "running_mean_weight": self.running_mean.copy(),
                "past_mean_weight": self.past_mean.copy()}

    def set_extra_hidden(self, params: dict) -> None:
        for name, arr in (("buffered_FP_weight", self.buffer),
                          ("running_mean_weight", self.running_mean),
                          ("past_mean_weight", self.past_mean)):
            if name in params:
                arr[...] = params[name]

    def transfer(self, f: int, t: int, lr: float) -> None:
        due = self._read_for_transfer(f, t, lr)
        if due is None:
            return
        lr_t, c, v = due
        cfg = self.config
        dt = self.dtype.type
        n_samples = chop_period(cfg.in_chop_prob)
        current = self.transfer_counter % n_samples + 1
        beta = dt(min(dt(cfg.tail_weightening) / dt(n_samples), dt(1)))
        prev = bool(self.switched[c])
        self.switched[c] = False
        lam = dt(self.buffer_scale(lr_t))
        if cfg.experimental_correct_accumulation:
            lam = lam / min(dt(current), dt(1) / dt(self.devices[0].granularity))
        cols = cfg.transfer_columns
        H = self.buffer if cols else self.buffer.T
        M = self.running_mean if cols else self.running_mean.T
        Pm = self.past_mean if cols else self.past_mean.T
        nmax = dt(cfg.transfer_update.desired_bl)
        counts = kernels.dynamic_transfer(
            H, M, Pm, c, v, self.slice_signs(c), lam, nmax, dt(1) - dt(cfg.momentum),
            dt(cfg.momentum), cfg.forget_buffer, nmax * dt(cfg.buffer_cap), beta, prev)
        if np.any(counts != 0) and self.transfer_counter > n_samples:
            self.write(1, np.array([c]), -counts[None, :],
                       dt(cfg.step) * dt(self.devices[1].granularity), cfg.transfer_update, 1)
        switch = current == n_samples
        if cfg.in_chop_random and self.rng.generator.random() < cfg.in_chop_prob:
            switch = True
        if switch:
            self.in_chopper[c] = ~self.in_chopper[c]
            self.switched[c] = True
        self.flip_out_choppers(c)
        if c == self.t_in - 1:
            self.transfer_counter += 1
        self.slice_idx[0] = (c + 1) % self.t_in

    def own_state(self) -> dict:
        out = super().own_state()
        out["in_chopper_switched"] = self.switched.copy()
        return out

    def load_own_state(self, state: dict) -> None:
        super().load_own_state(state)
        self.switched[:] = state["in_chopper_switched"]


def build_transfer(config, out_size, in_size, dtype, rng, pulse_type, gen=None):
    from rpusim.compounds.configs import (BufferedTransferCompound, ChoppedTransferCompound,
                                          DynamicTransferCompound)
    gen = construction_generator(config, rng, gen)
    devices = [build_submodel(spec, out_size, in_size, dtype, rng, pulse_type, gen)
               for spec in config.device_specs()]
    if isinstance(config, DynamicTransferCompound):
        cls = DynamicTransferModel
    elif isinstance(config, ChoppedTransferCompound):
        cls = ChoppedTransferModel
    elif isinstance(config, BufferedTransferCompound):
        cls = BufferedTransferModel
    else:
        cls = TransferModel
    return cls(config, devices, out_size, in_size, dtype, rng)
