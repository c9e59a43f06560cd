"""Shared machinery of the configuration dataclasses: validation helpers and dict round trips.

Every config class derives from :class:`ConfigBase`. ``validate()`` checks the values and coerces
enum fields given as strings; ``to_dict()``/``config_from_dict()`` give a JSON-safe round trip
(used by persistence and by the golden fixtures, whose JSON uses aihwkit's class and field names).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from enum import Enum
from typing import Any, ClassVar, Iterator

import numpy as np

__all__ = ["ConfigBase", "config_from_dict", "registered_config_classes"]

_CLASSES: dict[str, type] = {}
# packages whose config classes config_from_dict may meet before anything imported them
_CONFIG_PACKAGES = ("rpusim.inference", "rpusim.presets")


def registered_config_classes() -> dict[str, type]:
    """Return the mapping of config class names to classes (built-ins and registered custom)."""
    return dict(_CLASSES)


class ConfigBase:
    """Mixin for config dataclasses: validation, readable errors and a JSON-safe dict form."""

    _enum_fields: ClassVar[dict[str, type]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _CLASSES[cls.__name__] = cls

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> None:
        """Check every field; raise ``ValueError``/``TypeError`` naming the field and the value."""
        for name, enum_cls in self._enum_fields.items():
            setattr(self, name, _coerce_enum(self, name, getattr(self, name), enum_cls))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, ConfigBase):
                value.validate()
            elif isinstance(value, (list, tuple)):
                for item in value:
                    if isinstance(item, ConfigBase):
                        item.validate()

    def _error(self, field: str, value: Any, expected: str) -> ValueError:
        return ValueError(f"{type(self).__name__}.{field} must be {expected}, got {value!r}")

    def _check_number(self, field: str, *, lo: float | None = None, hi: float | None = None,
                      lo_open: bool = False, allow_inf: bool = False) -> float:
        value = getattr(self, field)
        if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{type(self).__name__}.{field} must be a real number, "
                            f"got {type(value).__name__} {value!r:.80}")
        if isinstance(value, (np.integer, np.floating)):
            # plain Python numbers keep the config JSON-safe and its arithmetic in float64
            value = value.item()
            setattr(self, field, value)
        if math.isnan(value) or (math.isinf(value) and not allow_inf):
            raise self._error(field, value, "finite")
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise self._error(field, value, f"{'>' if lo_open else '>='} {lo}")
        if hi is not None and value > hi:
            raise self._error(field, value, f"<= {hi}")
        return float(value)

    def _check_bool(self, field: str) -> bool:
        value = getattr(self, field)
        if isinstance(value, np.bool_):
            value = bool(value)
            setattr(self, field, value)
        if not isinstance(value, bool):
            raise TypeError(f"{type(self).__name__}.{field} must be a bool, got {value!r:.80}")
        return value

    def _check_int(self, field: str, *, lo: int | None = None) -> int:
        value = getattr(self, field)
        if isinstance(value, np.integer):
            value = int(value)
            setattr(self, field, value)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, int):
            if isinstance(value, (float, np.floating)) and float(value).is_integer():
                value = int(value)
                setattr(self, field, value)
            else:
                raise TypeError(f"{type(self).__name__}.{field} must be an int, "
                                f"got {value!r:.80}")
        if lo is not None and value < lo:
            raise self._error(field, value, f">= {lo}")
        return value

    def check_magnitudes(self, max_abs: float) -> None:
        """Raise ``ValueError`` if a finite number anywhere in the config exceeds ``max_abs``.

        A tile casts its parameters to its dtype; a value beyond float32's range would become
        inf there and poison the weights.
        """
        for path, value in _numbers(self, type(self).__name__):
            if math.isfinite(value) and abs(value) > max_abs:
                raise ValueError(f"{path} must have magnitude <= {max_abs:g} to fit the tile "
                                 f"dtype, got {value!r}")

    # -- dict round trip ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Return a JSON-safe nested dict: ``{"__class__": name, field: value, ...}``."""
        out: dict[str, Any] = {"__class__": type(self).__name__}
        for field in dataclasses.fields(self):
            out[field.name] = _to_plain(getattr(self, field.name))
        return out


def _numbers(value: Any, path: str) -> Iterator[tuple[str, float]]:
    """Every real number inside a config (fields, lists, nested configs), with its path."""
    if isinstance(value, ConfigBase):
        for field in dataclasses.fields(value):
            yield from _numbers(getattr(value, field.name), f"{path}.{field.name}")
    elif isinstance(value, (list, tuple, np.ndarray)):
        for k, item in enumerate(value):
            yield from _numbers(item, f"{path}[{k}]")
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)):
        yield path, float(value)


def _to_plain(value: Any) -> Any:
    if isinstance(value, ConfigBase):
        return value.to_dict()
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, tuple):
        return {"__tuple__": [_to_plain(v) for v in value]}
    if isinstance(value, dict):
        # (key, value) pairs: JSON object keys would turn numeric keys (times in s) into strings
        return {"__dict__": [[_to_plain(k), _to_plain(v)] for k, v in value.items()]}
    if isinstance(value, (list, np.ndarray)):
        return [_to_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def _coerce_enum(owner: Any, field: str, value: Any, enum_cls: type) -> Enum:
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        for member in enum_cls:
            if value in (member.name, member.value):
                return member
    valid = ", ".join(m.name for m in enum_cls)
    raise ValueError(f"{type(owner).__name__}.{field} must be a {enum_cls.__name__} ({valid}), "
                     f"got {value!r}")


def config_from_dict(data: dict) -> Any:
    """Rebuild a config object from the output of :meth:`ConfigBase.to_dict`.

    Raises
    ------
    ValueError
        For an unknown class name or unknown field (a damaged or foreign description).
    """
    if not isinstance(data, dict) or "__class__" not in data:
        raise ValueError(f"expected a config dict with a '__class__' key, got {data!r:.200}")
    name = data["__class__"]
    if not isinstance(name, str):
        raise ValueError(f"config '__class__' must be a class name, got {name!r:.100}")
    cls = _CLASSES.get(name)
    if cls is None:
        # classes defined above the configs (noise models, drift compensations, converters,
        # presets) register when their package is imported, which a fresh process loading a
        # saved tile may not have done yet
        for module in _CONFIG_PACKAGES:
            importlib.import_module(module)
        cls = _CLASSES.get(name)
    if cls is None:
        raise ValueError(f"unknown config class {name!r}; known: {sorted(_CLASSES)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key == "__class__":
            continue
        if key not in fields:
            raise ValueError(f"{name} has no field {key!r}; fields: {sorted(fields)}")
        kwargs[key] = _from_plain(value)
    try:
        obj = cls(**{k: v for k, v in kwargs.items() if fields[k].init})
    except (TypeError, ValueError) as err:
        raise ValueError(f"cannot build {name} from its dict: {err}") from err
    for key, value in kwargs.items():
        if not fields[key].init:
            setattr(obj, key, value)
    for fname, enum_cls in getattr(cls, "_enum_fields", {}).items():
        if fname in kwargs:
            setattr(obj, fname, _coerce_enum(obj, fname, kwargs[fname], enum_cls))
    return obj


def _from_plain(value: Any) -> Any:
    if isinstance(value, dict) and "__class__" in value:
        return config_from_dict(value)
    if isinstance(value, dict) and set(value) == {"__tuple__"} and isinstance(
            value["__tuple__"], list):
        return tuple(_from_plain(v) for v in value["__tuple__"])
    if isinstance(value, dict) and set(value) == {"__dict__"} and isinstance(
            value["__dict__"], list):
        pairs = value["__dict__"]
        if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise ValueError(f"config dict entries must be [key, value] pairs, got {pairs!r:.200}")
        return {_from_plain(k): _from_plain(v) for k, v in pairs}
    if isinstance(value, dict):
        raise ValueError(f"config values must be numbers, strings, lists or configs, got "
                         f"{value!r:.200}")
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value
