"""Shared machinery of the configuration dataclasses: validation helpers and dict round trips.

Every config class derives from :class:`ConfigBase`. ``validate()`` checks the values and coerces
enum fields given as strings; ``to_dict()``/``config_from_dict()`` give a JSON-safe round trip
(used by persistence and by the golden fixtures, whose JSON uses aihwkit's class and field names).
"""

from __future__ import annotations

import dataclasses
import math
from enum import Enum
from typing import Any, ClassVar

__all__ = ["ConfigBase", "config_from_dict", "registered_config_classes"]

_CLASSES: dict[str, type] = {}


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
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{type(self).__name__}.{field} must be a real number, "
                            f"got {type(value).__name__} {value!r}")
        if math.isnan(value) or (math.isinf(value) and not allow_inf):
            raise self._error(field, value, "finite")
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise self._error(field, value, f"{'>' if lo_open else '>='} {lo}")
        if hi is not None and value > hi:
            raise self._error(field, value, f"<= {hi}")
        return float(value)

    def _check_bool(self, field: str) -> bool:
        value = getattr(self, field)
        if not isinstance(value, bool):
            raise TypeError(f"{type(self).__name__}.{field} must be a bool, got {value!r}")
        return value

    def _check_int(self, field: str, *, lo: int | None = None) -> int:
        value = getattr(self, field)
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
                setattr(self, field, value)
            else:
                raise TypeError(f"{type(self).__name__}.{field} must be an int, got {value!r}")
        if lo is not None and value < lo:
            raise self._error(field, value, f">= {lo}")
        return value

    # -- dict round trip ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Return a JSON-safe nested dict: ``{"__class__": name, field: value, ...}``."""
        out: dict[str, Any] = {"__class__": type(self).__name__}
        for field in dataclasses.fields(self):
            out[field.name] = _to_plain(getattr(self, field.name))
        return out


def _to_plain(value: Any) -> Any:
    if isinstance(value, ConfigBase):
        return value.to_dict()
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
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
    obj = cls(**{k: v for k, v in kwargs.items() if fields[k].init})
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
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value
