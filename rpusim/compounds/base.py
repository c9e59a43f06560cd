"""Machinery shared by all compound models: sub-device construction, the reduction
``W = sum_k gamma_k W_k``, hierarchical hidden parameters (spec compounds §1) and state."""

from __future__ import annotations

import dataclasses

import numpy as np

from rpusim.compounds import kernels
from rpusim.configs.enums import NoiseManagementType, BoundManagementType
from rpusim.devices.base import PulsedDevice
from rpusim.devices.model import make_device_model
from rpusim.io import AnalogMVM
from rpusim.kernels.entry import entry_point
from rpusim.kernels.rng import mix64

__all__ = ["CompoundModel", "build_submodel", "sub_update", "is_leaf", "make_reader",
           "physics_of", "chunk_key"]


class _ConstructionRNG:
    """Stands in for a TileRNG during a sub-device's construction: only ``generator`` is used."""

    def __init__(self, generator: np.random.Generator):
        self.generator = generator


def construction_generator(config, rng, gen):
    """The generator of the device-to-device draws: the outermost non-zero
    ``construction_seed`` wins (inner seeds are ignored, as in aihwkit)."""
    if gen is not None:
        return gen
    seed = getattr(config, "construction_seed", 0)
    return np.random.Generator(np.random.PCG64(seed)) if seed else rng.generator


def build_submodel(spec, out_size, in_size, dtype, rng, pulse_type, gen):
    """Runtime model of one sub-device, drawn from ``gen``; its runtime draws use ``rng``."""
    from rpusim.compounds import builder_for
    builder = builder_for(spec)
    if builder is not None:
        return builder(spec, out_size, in_size, dtype, rng, pulse_type, gen)
    if not isinstance(spec, PulsedDevice):
        raise TypeError(f"{type(spec).__name__} cannot be a sub-device of a compound")
    spec = dataclasses.replace(spec, construction_seed=0)
    model = make_device_model(spec, out_size, in_size, dtype, _ConstructionRNG(gen), pulse_type)
    model.rng = rng
    return model


def physics_of(leaf):
    """The config a single-device model samples and steps with (a re-parameterised config
    such as SoftBoundsPmaxDevice stands for another device)."""
    resolve = getattr(leaf.device, "resolved_device", None)
    return resolve() if resolve is not None else leaf.device


def chunk_key(key, index: int):
    """Key of the ``index``-th engine call of a batch that a compound splits up.

    ``None`` (draw a fresh key) stays ``None``. A given key (devices of an ``ALL`` cell share
    coincidences) yields a distinct key per chunk, so that chunks do not repeat the same
    pulse trains, while sibling devices still derive identical ones.
    """
    if key is None:
        return None
    salt = ((index + 1) * 0x9E3779B97F4A7C15) % 2**64
    return np.uint64(mix64(np.uint64(int(key) ^ salt)))


def is_leaf(model) -> bool:
    return not isinstance(model, CompoundModel)


def sub_update(model, X, D, lr, upd, granularity, key, m_batch) -> None:
    """Route a batch of coincidences to a sub-device (a single device or a compound)."""
    if is_leaf(model):
        model.update(X, D, lr, upd, granularity=granularity, key=key)
    else:
        model.update(X, D, lr, upd, granularity=granularity, key=key, m_batch=m_batch)


def make_reader(params, n_out, n_in, dtype, rng):
    """A transfer/refresh read: the given IO with noise and bound management off."""
    params = dataclasses.replace(params, noise_management=NoiseManagementType.NONE,
                                 bound_management=BoundManagementType.NONE)
    mvm = AnalogMVM(params, n_out, n_in, dtype, rng)
    return getattr(mvm, "mvm", mvm)


def one_hot(indices, size, dtype) -> np.ndarray:
    out = np.zeros((len(indices), size), dtype)
    out[np.arange(len(indices)), indices] = 1
    return out


def _alike(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` are C-contiguous arrays of ``out``'s shape and dtype, as
    ``out`` (what :func:`kernels.weighted_sum2` takes)."""
    return (out.flags.c_contiguous and a.flags.c_contiguous and b.flags.c_contiguous
            and a.dtype == out.dtype == b.dtype and a.shape == out.shape == b.shape)


def _same(given: np.ndarray, value: np.ndarray) -> bool:
    """Equal up to the round-off of a dtype conversion (a float64 copy of float32 weights)."""
    return np.allclose(given, value, rtol=1e-6, atol=1e-7)


def _listed_require(config, field: str) -> bool:
    """Whether a device config of a cell's list (nested cells searched) has ``field``
    (``lifetime``, ``diffusion``) above 0: aihwkit's ``requires_decay`` /
    ``requires_diffusion`` of a unit cell's config."""
    devices = getattr(config, "unit_cell_devices", None)
    if devices is not None:
        return any(_listed_require(dev, field) for dev in devices)
    inner = getattr(config, "device", None)  # a digital rank-update cell's device
    if inner is not None:
        return _listed_require(inner, field)
    return getattr(config, field, 0.0) > 0


class CompoundModel:
    """Sub-device models plus the reduced weight ``w`` (the same array object for life).

    Subclasses define the update routing and their extra state. Hidden names: for every slot
    ``k`` the sub-device's names with suffix ``_k``, then ``hidden_weights_k``; compound extras
    after all slots.
    """

    def __init__(self, config, devices, gammas, out_size, in_size, dtype, rng):
        self.config = config
        self.devices = devices
        self.dtype = np.dtype(dtype)
        self.rng = rng
        self.out_size, self.in_size = out_size, in_size
        self.gammas = np.array(gammas, dtype=self.dtype)
        self.w = np.zeros((out_size, in_size), self.dtype)
        self.counters = None
        self.current_update_idx = 0
        self.reduce()

    # -- reduction ----------------------------------------------------------------------------
    def reduce_arrays(self, arrays, out: np.ndarray | None = None) -> np.ndarray:
        """``sum_k gamma_k arrays[k]`` in the tile dtype, accumulated in slot order; written
        into ``out`` when given (the same operations, so the same bits)."""
        if (out is not None and len(arrays) >= 2
                and all(_alike(out, a, out) for a in arrays)):
            # the usual reduction of the devices after every update
            kernels.weighted_sum2(out, self.gammas[0], arrays[0], self.gammas[1], arrays[1])
            for g, a in zip(self.gammas[2:], arrays[2:]):
                kernels.add_scaled(out, g, a)
            return out
        if out is None:
            out = self.gammas[0] * arrays[0]
        else:
            np.multiply(self.gammas[0], arrays[0], out=out)
        for g, a in zip(self.gammas[1:], arrays[1:]):
            out += g * a
        return out

    def reduce(self) -> None:
        devices = self.devices
        if len(devices) == 2 and type(self).reduce_arrays is CompoundModel.reduce_arrays:
            # the usual reduction after every update: reduce_arrays' kernel through its
            # compiled entry point, found once for these arrays (the dispatcher types the five
            # arguments on every call, and the layout test reads each array's flags)
            a0, a1, out = devices[0].w, devices[1].w, self.w
            memo = self.__dict__.get("_reduce_entry")
            if memo is None or memo[0] is not a0 or memo[1] is not a1 or memo[2] is not out:
                self.reduce_arrays([a0, a1], out=out)
                entry = (entry_point(kernels.weighted_sum2,
                                     (out, self.gammas[0], a0, self.gammas[1], a1))
                         if _alike(out, a0, a1) else None)
                self._reduce_entry = (a0, a1, out, entry)
                return
            if memo[3] is not None:
                gammas = self.gammas
                memo[3](out, gammas[0], a0, gammas[1], a1)
                return
        self.reduce_arrays([d.w for d in devices], out=self.w)

    def __getstate__(self) -> dict:
        # a compiled entry point does not pickle; the next reduction finds it again
        state = self.__dict__.copy()
        state.pop("_reduce_entry", None)
        return state

    @property
    def shape(self):
        return self.w.shape

    @property
    def granularity(self) -> float:
        """Mean granularity of all sub-devices (compounds §1.4)."""
        # read on every update: the mean is kept until a sub-device's granularity changes
        values = tuple([d.granularity for d in self.devices])  # (a list: no generator)
        memo = self.__dict__.get("_granularity_memo")
        if memo is None or memo[0] != values:
            # as aihwkit: summed in the tile dtype, then divided by the count
            t = self.dtype.type
            total = t(0)
            for v in values:
                total = t(total + t(v))
            memo = self._granularity_memo = (values, float(total / t(len(values))))
        return memo[1]

    # -- hidden parameters --------------------------------------------------------------------
    def extra_hidden_names(self) -> list[str]:
        return []

    def get_extra_hidden(self) -> dict[str, np.ndarray]:
        return {}

    def set_extra_hidden(self, params: dict) -> None:
        pass

    def hidden_parameter_names(self) -> list[str]:
        names = []
        for k, dev in enumerate(self.devices):
            names += [f"{n}_{k}" for n in dev.hidden_parameter_names()]
            names.append(f"hidden_weights_{k}")
        return names + self.extra_hidden_names()

    def get_hidden_parameters(self) -> dict[str, np.ndarray]:
        out = {}
        for k, dev in enumerate(self.devices):
            out.update({f"{n}_{k}": v for n, v in dev.get_hidden_parameters().items()})
            out[f"hidden_weights_{k}"] = dev.w.copy()
        out.update(self.get_extra_hidden())
        return out

    def _split(self, params: dict, k: int) -> dict:
        suffix = f"_{k}"
        names = self.devices[k].hidden_parameter_names()
        return {n: params[n + suffix] for n in names if n + suffix in params}

    def preview_weight(self, params: dict) -> np.ndarray:
        """The reduced weight the (partial) ``params`` would give before any clipping."""
        arrays = []
        for k, dev in enumerate(self.devices):
            sub = self._split(params, k)
            if is_leaf(dev):
                arrays.append(params.get(f"hidden_weights_{k}", dev.w))
            else:
                arrays.append(dev.preview_weight(sub))
        return self.reduce_arrays(arrays)

    def leaf_weight_names(self) -> list[str]:
        """Names of the hidden weights of every single device, e.g. ``hidden_weights_1_0``."""
        names = []
        for k, dev in enumerate(self.devices):
            if is_leaf(dev):
                names.append(f"hidden_weights_{k}")
            else:
                names += [f"{n}_{k}" for n in dev.leaf_weight_names()]
        return names

    def check_hidden_parameters(self, params: dict, suffix: str = "") -> None:
        """Raise if an intermediate ``hidden_weights_k`` is neither the current value (a stale
        copy from ``get_hidden_parameters``) nor the value the given leaves define.

        The leaves always win; aihwkit silently ignores any intermediate value. ``suffix`` is
        what the enclosing compounds append to this one's names (for the message).
        """
        for k, dev in enumerate(self.devices):
            if is_leaf(dev):
                continue
            sub = self._split(params, k)
            dev.check_hidden_parameters(sub, f"_{k}{suffix}")
            name = f"hidden_weights_{k}"
            if name not in params:
                continue
            given = params[name]
            preview = dev.preview_weight(sub)
            if _same(given, dev.w) or _same(given, preview):
                continue
            leaves = [f"{n}_{k}{suffix}" for n in dev.leaf_weight_names()]
            worst = float(np.max(np.abs(given - preview)))
            raise ValueError(
                f"hidden parameter '{name}{suffix}' is derived from the weights of its inner "
                f"devices {leaves}: it may only equal its current value or the value those "
                f"give (max difference {worst:.3g}); set {leaves} instead")

    def set_hidden_parameters(self, params: dict) -> None:
        """Set validated (possibly partial) hidden parameters: for every slot the weight first,
        then the slot's own parameters (which clip it), then re-reduce (compounds §1.3)."""
        self.check_hidden_parameters(params)
        for k, dev in enumerate(self.devices):
            sub = self._split(params, k)
            hw = params.get(f"hidden_weights_{k}")
            if is_leaf(dev):
                if hw is None and not sub:
                    continue
                if hw is not None:
                    dev._stored()[...] = hw
                    dev.w[...] = hw
                dev.set_hidden_parameters(sub)
            elif sub:
                dev.set_hidden_parameters(sub)
        self.set_extra_hidden(params)
        self.reduce()

    # -- whole-matrix operations --------------------------------------------------------------
    def decay(self, alpha: float = 1.0) -> None:
        for dev in self.devices:
            dev.decay(alpha)
        self.reduce()

    def diffuse(self) -> None:
        for dev in self.devices:
            dev.diffuse()
        self.reduce()

    def drift(self, delta_t: float) -> None:
        for dev in self.devices:
            dev.drift(delta_t)
        self.reduce()

    def reset_columns(self, start: int, num: int, prob: float) -> None:
        for dev in self.devices:
            dev.reset_columns(start, num, prob)
        self.reduce()

    def requires_decay(self) -> bool:
        """Whether the optimizer's post-update step decays this cell. aihwkit decides on the
        cell's listed device configs (its config's ``requires_decay``), also on those it
        does not build (a TransferCompound's third and later configs: it builds copies of
        the second), and then decays every built device, each of which clips its weights
        to its bounds even without a lifetime of its own. The built devices' own tests
        count too: a custom device model decides for itself."""
        return _listed_require(self.config, "lifetime") or any(
            dev.requires_decay() for dev in self.devices)

    def requires_diffusion(self) -> bool:
        """As :meth:`requires_decay`, for diffusion."""
        return _listed_require(self.config, "diffusion") or any(
            dev.requires_diffusion() for dev in self.devices)

    def leaf_models(self) -> list:
        out = []
        for dev in self.devices:
            out += [dev] if is_leaf(dev) else dev.leaf_models()
        return out

    def pulse_counters(self) -> np.ndarray:
        """Pulses per element of every single device, leaves in slot order: (n, out, in)."""
        leaves = self.leaf_models()
        if any(getattr(leaf, "counters", None) is None for leaf in leaves):
            raise ValueError("pulse counting is off: set count_pulses=True on every device of "
                             "the compound")
        return np.stack([leaf.counters.copy() for leaf in leaves])

    # -- state not covered by hidden parameters -----------------------------------------------
    def own_state(self) -> dict[str, np.ndarray]:
        return {"current_update_idx": np.array(self.current_update_idx)}

    def load_own_state(self, state: dict) -> None:
        self.current_update_idx = int(state["current_update_idx"])

    def extra_state(self) -> dict[str, np.ndarray]:
        out = {f"compound/{k}": np.asarray(v) for k, v in self.own_state().items()}
        for k, dev in enumerate(self.devices):
            out.update({f"dev{k}/{n}": v for n, v in dev.extra_state().items()})
        return out

    def load_extra_state(self, state: dict) -> None:
        own = {n[len("compound/"):]: v for n, v in state.items() if n.startswith("compound/")}
        self.load_own_state(own)
        for k, dev in enumerate(self.devices):
            prefix = f"dev{k}/"
            dev.load_extra_state({n[len(prefix):]: v for n, v in state.items()
                                  if n.startswith(prefix)})
        self.reduce()
