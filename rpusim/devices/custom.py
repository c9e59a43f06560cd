"""Custom device models in plain Python: a config dataclass and a numba step function.

A device model in rpusim is three things, and nothing else of rpusim needs to change:

1. its **config**: a ``@dataclass`` subclass of :class:`~rpusim.devices.PulsedDevice`. It
   inherits the common fields (``dw_min``, ``w_max``/``w_min``, their ``*_dtod`` spreads,
   ``dw_min_std``, ``up_down``, ``lifetime``, ``reset``, ...) and adds the model's own;
2. optionally, **extra hidden parameters**: per-element arrays (names + a dtod sampler), stored
   after the common ones, visible and settable through ``get/set_hidden_parameters``;
3. its **step function** ``step(params, P, i, j, w, up, states) -> new w``: one pulse on element
   ``(i, j)``, written in the numba subset of Python:

   - ``params``: a ``NamedTuple`` of the config's scalar parameters, cast to the tile dtype;
   - ``P[k, i, j]``: the element's hidden parameters, slot ``k`` (``SLOT_MAX_BOUND``,
     ``SLOT_MIN_BOUND``, ``SLOT_DWMIN_UP``, ``SLOT_DWMIN_DOWN``, ... from
     :mod:`rpusim.devices.base`; extras from ``FIRST_EXTRA_SLOT`` on, in declared order);
   - ``w``: the weight before the pulse; ``up``: ``True`` for an up pulse;
   - ``states``: the random streams; ``normal(states, i)`` / ``uniform(states, i)`` from
     :mod:`rpusim.kernels.rng` draw reproducible cycle-to-cycle noise, and
     ``ctoc_noise(dw, params.dw_min_std, states, i, w)`` from :mod:`rpusim.devices.base` applies
     aihwkit's multiplicative one, ``dw (1 + dw_min_std xi)``;
   - return the new weight, clipped to the element's bounds (``clip_to_bounds``).

:func:`define_device` builds the parameter ``NamedTuple``, ``step_params``, the hidden-parameter
names and the sampler from these pieces and registers the model. A registered model is usable
everywhere a built-in one is: ``SingleRPUConfig(device=...)``, every compound (e.g.
``TransferCompound(unit_cell_devices=[MyDevice(), MyDevice()])``), ``get/set_hidden_parameters``,
decay/diffusion/drift/reset, ``state_dict``/``save``/``load`` and
:func:`rpusim.demo.pulse_response`.

A complete model (soft bounds with a per-element, sampled saturation exponent)::

    from dataclasses import dataclass
    import rpusim
    from rpusim.configs import SingleRPUConfig
    from rpusim.devices import PulsedDevice, define_device
    from rpusim.devices.base import (FIRST_EXTRA_SLOT, SLOT_DWMIN_DOWN, SLOT_DWMIN_UP,
                                     SLOT_MAX_BOUND, SLOT_MIN_BOUND, cast_like,
                                     clip_to_bounds)
    from rpusim.kernels.rng import normal

    SLOT_EXPONENT = FIRST_EXTRA_SLOT  # the first (only) extra hidden parameter

    @dataclass
    class SaturatingDevice(PulsedDevice):
        exponent: float = 2.0          # shape parameter, mean over elements
        exponent_dtod: float = 0.1     # its relative device-to-device spread

    def sample(dev, gen, state, shape):
        xi = gen.standard_normal(shape)
        return {"exponent": dev.exponent * (1 + dev.exponent_dtod * xi)}

    def step(params, P, i, j, w, up, states):
        hi = P[SLOT_MAX_BOUND, i, j]
        lo = P[SLOT_MIN_BOUND, i, j]
        e = P[SLOT_EXPONENT, i, j]
        if up:
            dw = P[SLOT_DWMIN_UP, i, j] * max(1 - w / hi, 0.0) ** e
        else:
            dw = -P[SLOT_DWMIN_DOWN, i, j] * max(1 - w / lo, 0.0) ** e
        if params.dw_min_std > 0:
            dw = dw * (1 + params.dw_min_std * normal(states, i))
        return clip_to_bounds(P, i, j, cast_like(w + dw, w))

    define_device(SaturatingDevice, step, hidden=("exponent",), sample=sample)

    tile = rpusim.AnalogTile(4, 3, SingleRPUConfig(device=SaturatingDevice(exponent=1.5)))

Notes
-----
- **Persistence**: a saved tile records the device by class name. Before ``load`` /
  ``AnalogTile.from_state_dict`` the defining module must have run (import it), otherwise
  loading fails with "unknown config class". Config class names are global: pick a unique one.
- **numba cache**: the engine's pulse loop for a model defined outside the ``rpusim`` package
  is compiled once per process (numba's on-disk cache of the engine holds built-ins only), so
  the first update of a process takes a few seconds longer; afterwards it runs at the speed of
  the built-ins (the step body is inlined into the same pulse loop). A step typed at the
  interactive prompt works too.
- **float32**: inside the step, ``float32 * python float`` gives float64; wrap results in
  ``cast_like(value, w)`` where the arithmetic should stay in the tile dtype (the engine
  stores the returned weight in the tile dtype after every pulse either way).
- **CLI**: ``python -m rpusim response NAME`` finds a custom model only in a process where it
  has been defined; from a script use :func:`rpusim.demo.pulse_response` and
  :func:`rpusim.plotting.plot_pulse_response` instead.
"""

from __future__ import annotations

import atexit
import dataclasses
import glob
import math
import os
import tempfile
import types
from typing import Callable, NamedTuple, Sequence

import numpy as np
from numba import njit
from numba.core.caching import FunctionCache

from rpusim.devices.base import PulsedDevice, register_device

__all__ = ["define_device"]


def _own_fields(config_class: type) -> list[str]:
    """Fields the class declares beyond :class:`PulsedDevice`, in declaration order."""
    common = {f.name for f in dataclasses.fields(PulsedDevice)}
    return [f.name for f in dataclasses.fields(config_class) if f.name not in common]


def define_device(config_class: type, step: Callable, *, params: Sequence[str] | None = None,
                  hidden: Sequence[str] = (), sample: Callable | None = None,
                  granularity: Callable | None = None) -> type:
    """Turn a ``PulsedDevice`` dataclass and a pulse-step function into a device model.

    Builds the parameter ``NamedTuple`` (named ``<Config>Params``), the config's
    ``step_params``, its extra hidden parameters and their sampler, validation of the
    parameters, and registers the model with :func:`~rpusim.devices.register_device`.
    See the module docstring of :mod:`rpusim.devices.custom` for a complete example.

    Parameters
    ----------
    config_class : type
        A ``@dataclass`` subclass of :class:`~rpusim.devices.PulsedDevice`.
    step : callable
        ``step(params, P, i, j, w, up, states) -> new w``, a plain Python function in the numba
        subset or an ``@njit`` function; it is compiled inline into the update engine.
    params : sequence of str, optional
        Config fields the step reads as ``params.<name>``. Default: ``dw_min_std`` and every
        field the class declares beyond ``PulsedDevice`` whose value is a number, a bool or a
        list of numbers, except ``*_dtod`` fields. Floats are cast to the tile dtype, lists to
        arrays of it, ints and bools are kept.
    hidden : sequence of str
        Names of extra per-element hidden parameters, in slot order from
        ``rpusim.devices.base.FIRST_EXTRA_SLOT``.
    sample : callable, optional
        ``sample(device, gen, state, shape) -> {name: array}``, required with ``hidden``:
        draws the extra hidden parameters of a new tile (device-to-device spread) from the
        ``numpy.random.Generator`` ``gen``. ``state`` holds the already sampled common hidden
        parameters (``max_bound``, ``dwmin_up``, ...; may be adjusted in place).
    granularity : callable, optional
        ``granularity(device, dw_min) -> float``: the weight change of one pulse that the
        pulse generator assumes (default: ``dw_min``).

    Returns
    -------
    type
        ``config_class`` itself, now registered.

    Raises
    ------
    TypeError
        ``config_class`` is not a dataclass subclass of ``PulsedDevice``, or ``step`` is not
        callable.
    ValueError
        Unknown ``params`` names, ``hidden`` without ``sample``, or duplicate hidden names.
    """
    if not (isinstance(config_class, type) and issubclass(config_class, PulsedDevice)
            and dataclasses.is_dataclass(config_class)):
        raise TypeError(f"define_device needs a @dataclass subclass of PulsedDevice, got "
                        f"{config_class!r}")
    if not callable(step):
        raise TypeError(f"define_device: step must be a function, got {step!r}")
    defaults = config_class()
    names = {f.name for f in dataclasses.fields(config_class)}
    if params is None:
        params = ["dw_min_std"] + [n for n in _own_fields(config_class)
                                   if not n.endswith("_dtod")
                                   and _param_kind(getattr(defaults, n)) is not None]
    params = list(params)
    unknown = [p for p in params if p not in names]
    if unknown:
        raise ValueError(f"define_device: {config_class.__name__} has no field(s) {unknown}; "
                         f"fields: {sorted(names)}")
    for p in params:
        if _param_kind(getattr(defaults, p)) is None:
            raise ValueError(f"define_device: parameter {config_class.__name__}.{p} must be a "
                             f"number, bool or list of numbers, got {getattr(defaults, p)!r}")
    hidden = tuple(hidden)
    if len(set(hidden)) != len(hidden):
        raise ValueError(f"define_device: duplicate hidden parameter names {hidden}")
    if hidden and sample is None:
        raise ValueError("define_device: hidden parameters need a sample(device, gen, state, "
                         "shape) function that draws them")

    params_class = NamedTuple(f"{config_class.__name__}Params", [(p, object) for p in params])
    # the engine decides by module whether the compiled update may be cached on disk: a model
    # outside rpusim must not enter that cache (see rpusim.kernels.update)
    params_class.__module__ = config_class.__module__
    param_names = tuple(params)

    def step_params(self, dtype):
        dt = np.dtype(dtype).type
        return params_class(*(_cast(getattr(self, p), dt, dtype) for p in param_names))

    def sample_extras(self, gen, state, shape):
        if not hidden:
            return {}
        drawn = sample(self, gen, state, shape)
        missing = [n for n in hidden if n not in drawn]
        if missing:
            raise ValueError(f"{type(self).__name__} sampler returned no {missing}")
        return {n: np.broadcast_to(np.asarray(drawn[n]), shape) for n in hidden}

    user_validate = config_class.validate

    def validate(self):
        user_validate(self)
        for p in param_names:
            value = getattr(self, p)
            kind = _param_kind(getattr(defaults, p))
            got = _param_kind(value)
            if got != kind and not (kind == "a float" and got == "an int"):
                raise TypeError(f"{type(self).__name__}.{p} must be {kind}, "
                                f"got {value!r:.80}")
            values = value if isinstance(value, (list, tuple)) else [value]
            if not all(math.isfinite(float(v)) for v in values):
                raise ValueError(f"{type(self).__name__}.{p} must be finite, got {value!r:.80}")

    config_class.extra_hidden_names = hidden
    config_class.step_params = step_params
    config_class.sample_extras = sample_extras
    config_class.validate = validate
    if granularity is not None:
        # the user's formula as given (in float64), whatever the tile dtype
        config_class.granularity = (lambda self, dw_min, dtype=None:
                                    float(granularity(self, dw_min)))
    py_step = _file_backed(getattr(step, "py_func", step))
    register_device(config_class, params_class, njit(py_step))
    return config_class


def _file_backed(fn):
    """``fn``, or a copy of it that numba's disk cache can place.

    The engine compiles step bodies with numba's cache on, which needs the function's source
    file. A function typed at the interactive prompt (``<stdin>``) or built by ``exec`` has
    none; its copy claims a fresh, empty file of this process instead (removed at exit with
    its cache entries), so that nothing stale can be read back by a later process.
    """
    try:
        FunctionCache(fn)
        return fn
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        pass
    handle, path = tempfile.mkstemp(prefix="rpusim_step_", suffix=".py")
    with os.fdopen(handle, "w") as fh:
        fh.write(f"# stands in for the source of {fn.__qualname__}, defined interactively\n")
    copy = types.FunctionType(fn.__code__.replace(co_filename=path), fn.__globals__,
                              fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__
    cache_dir = FunctionCache(copy)._cache_path
    stem = os.path.splitext(os.path.basename(path))[0]

    def cleanup():
        for name in [path] + glob.glob(os.path.join(cache_dir, stem + ".*")):
            try:
                os.remove(name)
            except OSError:
                pass

    atexit.register(cleanup)
    return copy


def _param_kind(value) -> str | None:
    if isinstance(value, (bool, np.bool_)):
        return "a bool"
    if isinstance(value, (int, np.integer)):
        return "an int"
    if isinstance(value, (float, np.floating)):
        return "a float"
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (int, float, np.integer, np.floating))
            and not isinstance(v, (bool, np.bool_)) for v in value):
        return "a list of numbers"
    return None


def _cast(value, dt, dtype):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (list, tuple)):
        return np.ascontiguousarray(np.asarray(value, dtype=dtype))
    return dt(value)
