"""Saving and restoring the full state of a tile.

A tile's state is a flat ``dict`` of ``str -> ndarray`` (metadata as 0-d arrays):

=====================  ===================================================================
key                    content
=====================  ===================================================================
``format``             ``"rpusim-tile"``, marks the file as ours
``format_version``     :data:`FORMAT_VERSION`; a newer one is refused
``rpusim_version``     the writing version (information only)
``config``             the RPU config as JSON (:meth:`ConfigBase.to_dict`)
``out_size``           rows
``in_size``            columns
``dtype``              ``"float32"`` or ``"float64"``
``learning_rate``      the default learning rate
``weights``            the apparent weights (what the forward pass sees)
``hidden/<name>``      every hidden parameter, aihwkit's names
``model/<key>``        the device model's other state (``extra_state()``: counters, pointers,
                       drift state, ... of every sub-device; a flat dict whose keys may
                       contain ``/``)
``forward_io/<key>``   the forward IO model's state (draws made at construction, running
                       values)
``backward_io/<key>``  the same for the backward direction
``hwa/<key>``          hardware-aware training state (held modifier draw, output scales),
                       only for configs with ``clip``/``remap``/``modifier``
``inference/<key>``    an ``InferenceRPUConfig`` tile's programmed state: target
                       (``reference``), ``programmed`` weights, ``n_slices`` and
                       ``drift_coefficients/<j>``, compensation ``baseline`` and ``alpha``
                       (:class:`rpusim.inference_state.InferenceState`)
``rng``                the tile generator's state as JSON
=====================  ===================================================================

Files are ``.npz`` archives written without pickle and read with ``allow_pickle=False``:
nothing in a file is ever executed. A restored tile is rebuilt from its config and then every
piece of state above is written back; the restored state is compared with the given one, so a
state that cannot be restored exactly is refused rather than half applied.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

from rpusim import presets as _presets  # noqa: F401  (a saved config may name a preset class)
from rpusim.compounds.base import CompoundModel, is_leaf
from rpusim.compounds.mixed import MixedPrecisionModel
from rpusim.configs._base import config_from_dict
from rpusim.configs.rpu import RPUConfig

__all__ = ["FORMAT_VERSION", "tile_state_dict", "load_tile_state", "tile_from_state_dict",
           "save_tile", "load_tile", "state_differences"]

FORMAT_VERSION = 1
_FORMAT = "rpusim-tile"
_META = ("format", "format_version", "rpusim_version", "config", "out_size", "in_size", "dtype",
         "learning_rate", "weights", "rng")
_GROUPS = ("hidden", "model", "forward_io", "backward_io", "hwa", "inference")


# -- flat groups of state ---------------------------------------------------------------------
def _flatten(value: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    """Copy a flat ``str -> array or scalar`` dict into ``out`` as ``prefix/key`` entries.

    Keys may contain ``/`` (compounds name their sub-devices' entries ``dev0/...``).
    """
    if not isinstance(value, dict):
        raise TypeError(f"{prefix} state must be a dict of str -> array, got "
                        f"{type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"{prefix} state keys must be non-empty str, got {key!r}")
        arr = np.array(item, copy=True)
        if arr.dtype.kind not in "biufU":
            raise TypeError(f"{prefix} state entry {key!r} must be a numeric, boolean or string "
                            f"array or scalar, got {type(item).__name__} of dtype {arr.dtype}")
        out[f"{prefix}/{key}"] = arr


def _unflatten(flat: dict[str, np.ndarray]) -> dict:
    """The entries of one group as given to ``load_extra_state``/``set_state``: 0-d arrays
    become NumPy scalars (their dtype kept), others arrays."""
    out = {}
    for key, arr in flat.items():
        arr = np.asarray(arr)
        out[key] = arr[()] if arr.ndim == 0 else arr
    return out


def _group(state: dict, group: str) -> dict[str, np.ndarray]:
    prefix = group + "/"
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


# -- state dict -------------------------------------------------------------------------------
def tile_state_dict(tile) -> dict[str, np.ndarray]:
    """Return the full state of ``tile`` as a flat dict of arrays (copies; see module doc)."""
    from rpusim import __version__

    state: dict[str, np.ndarray] = {
        "format": np.array(_FORMAT),
        "format_version": np.array(FORMAT_VERSION),
        "rpusim_version": np.array(__version__),
        "config": np.array(json.dumps(tile.rpu_config.to_dict())),
        "out_size": np.array(tile.out_size),
        "in_size": np.array(tile.in_size),
        "dtype": np.array(tile.dtype.name),
        "learning_rate": np.array(float(tile.learning_rate)),
        # the analog weights: get_weights() folds the remapping scales in
        "weights": tile._model.w.copy(),
        "rng": np.array(json.dumps(tile._rng.get_state())),
    }
    for name, value in tile.get_hidden_parameters().items():
        if "/" in name:
            raise TypeError(f"hidden parameter names must not contain '/', got {name!r}")
        state[f"hidden/{name}"] = np.array(value, copy=True)
    _flatten(tile._model.extra_state(), "model", state)
    _flatten(tile._forward_mvm.get_state(), "forward_io", state)
    _flatten(tile._backward_mvm.get_state(), "backward_io", state)
    if tile._hwa is not None:
        _flatten(tile._hwa.get_state(), "hwa", state)
    if tile._inference is not None:
        _flatten(tile._inference.as_dict(), "inference", state)
    return state


def _scalar(state: dict, key: str) -> Any:
    if key not in state:
        raise ValueError(f"tile state has no {key!r} entry; it holds {sorted(state)[:20]}")
    arr = np.asarray(state[key])
    if arr.ndim != 0:
        raise ValueError(f"tile state entry {key!r} must be a scalar, got shape {arr.shape}")
    return arr[()]


def _text(state: dict, key: str) -> str:
    value = _scalar(state, key)
    if not isinstance(value, str):
        raise ValueError(f"tile state entry {key!r} must be a string, got {value!r:.100}")
    return str(value)


def _integer(state: dict, key: str, lo: int) -> int:
    value = _scalar(state, key)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"tile state entry {key!r} must be an int, got {value!r:.100}")
    if value < lo:
        raise ValueError(f"tile state entry {key!r} must be >= {lo}, got {value}")
    return int(value)


def _check_header(state: dict) -> None:
    if not isinstance(state, dict):
        raise TypeError(f"a tile state must be a dict, got {type(state).__name__}")
    if "format" not in state or "format_version" not in state:
        raise ValueError("not an rpusim tile state: the 'format' and 'format_version' entries "
                         f"are missing (entries: {sorted(map(str, state))[:20]})")
    if _text(state, "format") != _FORMAT:
        raise ValueError(f"not an rpusim tile state: format is {_text(state, 'format')!r}, "
                         f"expected {_FORMAT!r}")
    if "rpusim_version" in state:
        _text(state, "rpusim_version")  # information only, but a damaged one is damage
    version = _integer(state, "format_version", 1)
    if version > FORMAT_VERSION:
        raise ValueError(f"tile state has format version {version}, newer than the "
                         f"{FORMAT_VERSION} this rpusim reads; upgrade rpusim")
    unknown = [k for k in state if not isinstance(k, str)
               or (k not in _META and k.split("/", 1)[0] not in _GROUPS)]
    if unknown:
        raise ValueError(f"tile state has unknown entries {unknown[:20]}")


def _build_from_meta(cls, state: dict):
    try:
        config = config_from_dict(json.loads(_text(state, "config")))
    except json.JSONDecodeError as err:
        raise ValueError(f"tile state config is not valid JSON: {err}") from err
    if not isinstance(config, RPUConfig):
        raise ValueError(f"tile state config must describe an RPUConfig, got "
                         f"{type(config).__name__}")
    dtype = _text(state, "dtype")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"tile state dtype must be 'float32' or 'float64', got {dtype!r}")
    lr = _scalar(state, "learning_rate")
    if not isinstance(lr, (float, np.floating)) or not math.isfinite(lr) or lr < 0:
        raise ValueError(f"tile state learning_rate must be a finite float >= 0, got {lr!r}")
    out_size, in_size = _integer(state, "out_size", 1), _integer(state, "in_size", 1)
    try:
        tile = cls(out_size, in_size, config, seed=0, dtype=np.dtype(dtype))
    except (TypeError, ValueError) as err:
        raise ValueError(f"tile state holds an invalid config: {err}") from err
    tile.learning_rate = float(lr)
    return tile


def _check_like(group: str, given: dict, reference: dict, exact_keys: bool) -> None:
    """``given`` entries must match the fresh tile's ``reference`` in shape and dtype."""
    missing = sorted(set(reference) - set(given))
    extra = sorted(set(given) - set(reference))
    if missing or (exact_keys and extra):
        raise ValueError(f"tile state {group} entries do not fit the config: missing {missing}, "
                         f"unexpected {extra if exact_keys else []}")
    for key, ref in reference.items():
        _check_array(f"{group}/{key}", given[key], ref)


def _check_array(label: str, value, reference) -> None:
    arr, ref = np.asarray(value), np.asarray(reference)
    if arr.shape != ref.shape or arr.dtype != ref.dtype:
        raise ValueError(f"tile state entry {label!r} must have shape {ref.shape} and dtype "
                         f"{ref.dtype}, got shape {arr.shape} and dtype {arr.dtype}")


def _restore(tile, state: dict) -> None:
    """Write every piece of ``state`` into the freshly built ``tile``."""
    fresh = tile_state_dict(tile)
    hidden = {k: np.asarray(v) for k, v in _group(state, "hidden").items()}
    _check_like("hidden", hidden, _group(fresh, "hidden"), exact_keys=True)
    if "weights" not in state:
        raise ValueError("tile state has no 'weights' entry")
    weights = np.asarray(state["weights"])
    _check_array("weights", weights, fresh["weights"])
    if not np.isfinite(weights).all():
        raise ValueError("tile state entry 'weights' must be finite, got NaN or inf")
    for group in ("model", "forward_io", "backward_io"):
        _check_like(group, _group(state, group), _group(fresh, group), exact_keys=False)
    hwa = _group(state, "hwa")
    _check_like("hwa", hwa, {k: v for k, v in _group(fresh, "hwa").items()
                             if k != "sample_weights"}, exact_keys=False)
    try:
        rng_state = json.loads(_text(state, "rng"))
    except json.JSONDecodeError as err:
        raise ValueError(f"tile state rng is not valid JSON: {err}") from err
    try:
        if hidden:
            tile.set_hidden_parameters(hidden)
            _restore_stored_weights(tile._model, hidden)
        # the apparent weights carry write noise and compound reductions as they were; the
        # model's own set_weights would re-program (and re-draw) them
        tile._model.w[...] = weights
        tile._model.load_extra_state(_unflatten(_group(state, "model")))
        tile._forward_mvm.set_state(_unflatten(_group(state, "forward_io")))
        tile._backward_mvm.set_state(_unflatten(_group(state, "backward_io")))
        if tile._hwa is not None:
            tile._hwa.set_state(_unflatten(hwa))
        inference = _group(state, "inference")
        if inference and tile._inference is None:
            raise ValueError(f"inference entries for a {type(tile.rpu_config).__name__} tile")
        if tile._inference is not None:
            tile._inference.load(inference)
        tile._rng.set_state(rng_state)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"tile state could not be restored: {type(err).__name__}: {err}"
                         ) from err
    restored = tile_state_dict(tile)
    keys = [k for k in set(state) | set(restored) if k.split("/", 1)[0] in _GROUPS
            or k in ("weights", "rng")]
    diff = state_differences({k: state[k] for k in keys if k in state},
                             {k: restored[k] for k in keys if k in restored})
    if diff:
        raise ValueError(f"tile state could not be restored exactly; entries that differ after "
                         f"restoring: {diff[:20]}")


def _restore_stored_weights(model, hidden: dict, suffix: str = "") -> None:
    """Write every single device's weights exactly as saved, below compounds too.

    Setting hidden parameters re-clips persistent weights to the bounds and redraws the
    apparent ones from them (as a user's set should); a saved state must come back as it was,
    and a reference device's stored weight may legitimately lie outside its bounds.
    """
    if isinstance(model, CompoundModel):
        for k, dev in enumerate(model.devices):
            inner = f"_{k}{suffix}"
            _restore_stored_weights(dev, hidden, inner)
            if is_leaf(dev) and f"hidden_weights{inner}" in hidden:
                dev.w[...] = hidden[f"hidden_weights{inner}"]
    elif isinstance(model, MixedPrecisionModel):
        _restore_stored_weights(model.device, hidden, suffix)
    elif getattr(model, "write_noise", False) and f"persistent_weights{suffix}" in hidden:
        model.wp[...] = hidden[f"persistent_weights{suffix}"]


def state_differences(a: dict, b: dict) -> list[str]:
    """Keys whose values differ between two tile states (NaN equals NaN; dtypes must match).

    JSON entries (``config``, ``rng``) are compared as parsed JSON; ``rpusim_version`` (the
    writer's version, information only) is not compared.
    """
    out = []
    for key in sorted(set(a) | set(b)):
        if key == "rpusim_version":
            continue
        if key not in a or key not in b:
            out.append(key)
            continue
        x, y = np.asarray(a[key]), np.asarray(b[key])
        if key in ("config", "rng") and x.dtype.kind == y.dtype.kind == "U":
            if json.loads(str(x[()])) != json.loads(str(y[()])):
                out.append(key)
            continue
        if x.dtype != y.dtype or x.shape != y.shape:
            out.append(key)
        elif x.dtype.kind == "f":
            if not np.array_equal(x, y, equal_nan=True):
                out.append(key)
        elif not np.array_equal(x, y):
            out.append(key)
    return out


def tile_from_state_dict(cls, state: dict):
    """Build a new ``cls`` tile holding ``state`` (from :func:`tile_state_dict`).

    Raises
    ------
    ValueError
        A state from a foreign source, a newer format version, an invalid config, or entries
        whose names, shapes or dtypes do not fit the config.
    TypeError
        ``state`` is not a dict.
    """
    _check_header(state)
    tile = _build_from_meta(cls, state)
    _restore(tile, state)
    return tile


def load_tile_state(tile, state: dict) -> None:
    """Make ``tile`` hold ``state``: config, sizes and all. Atomic: on error it is unchanged."""
    new = tile_from_state_dict(type(tile), state)
    tile.__dict__.clear()
    tile.__dict__.update(new.__dict__)


# -- files ------------------------------------------------------------------------------------
def save_tile(tile, path) -> None:
    """Write the state of ``tile`` to ``path`` as an ``.npz`` archive (no pickle).

    ``path`` is used as given (no ``.npz`` is appended). A file path is written through a
    temporary file and renamed, so an interrupted save never leaves a damaged file behind.
    ``path`` may also be a writable binary file object.
    """
    arrays = tile_state_dict(tile)
    for key, arr in arrays.items():
        if arr.dtype.kind not in "biufU":  # never write anything that would need pickle
            raise TypeError(f"tile state entry {key!r} has dtype {arr.dtype}; cannot save")
    if hasattr(path, "write"):
        np.savez(path, **arrays)
        return
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rpusim-", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_archive(data: bytes, name: str) -> dict[str, np.ndarray]:
    """Decode an ``.npz`` archive, checking every member's CRC first."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise ValueError(f"member {bad!r} fails its CRC check")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            return {key: npz[key] for key in npz.files}
    except Exception as err:  # any failure to parse untrusted bytes is a damaged file
        raise ValueError(f"{name} is not a readable rpusim tile file (damaged, truncated or "
                         f"foreign): {type(err).__name__}: {err}") from err


def load_tile(cls, path):
    """Load a tile saved by :func:`save_tile` from a path or a readable binary file object.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file is damaged, truncated, foreign, from a newer format version, or holds a state
        that does not fit its config. Nothing in the file is executed (no pickle).
    """
    if hasattr(path, "read"):
        data, name = path.read(), "file object"
    else:
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise TypeError(f"path must be a str, bytes, os.PathLike or a binary file object, "
                            f"got {type(path).__name__}")
        with open(path, "rb") as f:
            data = f.read()
        name = repr(os.fspath(path))
    if not isinstance(data, bytes):
        raise TypeError(f"load needs a binary file, got {type(data).__name__} data")
    state = _read_archive(data, name)
    try:
        return tile_from_state_dict(cls, state)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from err
