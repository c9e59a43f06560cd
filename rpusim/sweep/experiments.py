"""What a sweep runs at each point: the built-in experiments and the user's functions.

An experiment is a function ``function(params: dict, seed: int) -> dict`` of module level (so a
Dask worker imports it by name): ``params`` maps field paths (``"device.dw_min"``) to values,
``seed`` is the run's seed, and the returned dict maps metric names to numbers (or short
strings). Its result must depend on ``params`` and ``seed`` only.

The built-in experiments train a two-layer analog network (one :class:`~rpusim.AnalogTile` per
layer) and share one parameter namespace:

``algorithm``
    ``"sgd"`` or ``"tiki-taka"`` (the demo's, :func:`rpusim.demo.algorithm_config`), or
    ``"ttv2"`` (BufferedTransferCompound), ``"c-ttv2"`` (ChoppedTransferCompound), ``"agad"``
    (DynamicTransferCompound), each of two copies of the device, or ``"mixed-precision"``
    (MixedPrecisionCompound on the device); compounds at aihwkit's defaults.
``device.class``, ``device.<field>``
    The device model (default ``"SoftBoundsDevice"``) and its fields.
``compound.<field>``
    Fields of the algorithm's compound (e.g. ``compound.transfer_every``); not for ``"sgd"``.
``forward.<field>``, ``backward.<field>``, ``update.<field>``
    The RPU config's IO and update parameters (aihwkit's defaults otherwise).
training settings
    ``epochs``, ``lr``, ``batch_size``, ``hidden``, ``data_seed`` and the task's own (see
    :data:`DEMO_SETTINGS`, :data:`DIGITS_SETTINGS`).
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import importlib
import importlib.util
import pathlib
from typing import Any, Callable

import numpy as np

from rpusim import configs
from rpusim.configs._base import ConfigBase
from rpusim.demo import (ALGORITHMS as DEMO_ALGORITHMS, algorithm_config, make_device,
                         make_teacher_data, train_network)
from rpusim.tile import AnalogTile

__all__ = ["Experiment", "BUILTIN", "declare_experiment", "ALGORITHMS", "DEMO_SETTINGS",
           "DIGITS_SETTINGS", "resolve_experiment", "set_config_field", "build_rpu_config",
           "demo_point", "digits_point", "digits_arrays"]

#: Every ``algorithm`` value of the built-in experiments.
ALGORITHMS = (*DEMO_ALGORITHMS, "ttv2", "c-ttv2", "agad", "mixed-precision")

#: Training settings of ``experiment = "demo"`` and their defaults (the demo's).
DEMO_SETTINGS = {"epochs": 20, "lr": 0.1, "batch_size": 10, "hidden": 16, "noise": 0.5,
                 "n_samples": 512, "data_seed": 0}

#: Training settings of ``experiment = "digits"`` and their defaults.
DIGITS_SETTINGS = {"epochs": 10, "lr": 0.05, "batch_size": 10, "hidden": 32,
                   "test_fraction": 0.25, "data_seed": 0}

_CONFIG_PREFIXES = ("device.", "compound.", "forward.", "backward.", "update.")
_INT_SETTINGS = ("epochs", "batch_size", "hidden", "n_samples", "data_seed")


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A function the sweep runs, with its name and (built-ins) its parameter check.

    Attributes
    ----------
    name : str
        ``"demo"``, ``"digits"`` or ``"module:function"``; part of every point's identity.
    function : callable
        ``function(params, seed) -> dict of metrics``.
    check : callable or None
        ``check(params)`` raises ``ValueError``/``TypeError`` naming a bad field; ``None``
        checks nothing (a user's function without declared parameters).
    metric : str or None
        The metric plotted by default.
    """

    name: str
    function: Callable[[dict, int], dict]
    check: Callable[[dict], None] | None = None
    metric: str | None = None


def resolve_experiment(ref) -> Experiment:
    """A built-in name, ``"package.module:function"`` or a callable -> :class:`Experiment`.

    Raises
    ------
    ValueError
        For an unknown name, a module that does not import or a missing attribute.
    TypeError
        For anything else, or an attribute that is not callable.
    """
    if isinstance(ref, Experiment):
        return ref
    if callable(ref):
        return _user_experiment(f"{ref.__module__}:{ref.__qualname__}", ref)
    if not isinstance(ref, str):
        raise TypeError(f"experiment must be a built-in name {sorted(BUILTIN)}, "
                        f"'module:function' or a callable, got {ref!r:.80}")
    if ref in BUILTIN:
        return BUILTIN[ref]
    module_name, colon, attribute = ref.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"experiment must be one of {sorted(BUILTIN)} or "
                         f"'package.module:function', got {ref!r}")
    try:
        target = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"experiment {ref!r}: cannot import {module_name!r}: {err}") from None
    for name in attribute.split("."):
        if not hasattr(target, name):
            raise ValueError(f"experiment {ref!r}: {module_name} has no attribute {attribute!r}")
        target = getattr(target, name)
    if not callable(target):
        raise TypeError(f"experiment {ref!r} is not callable: {target!r:.80}")
    return _user_experiment(ref, target)


def declare_experiment(*, parameters: dict | None = None, metric: str | None = None):
    """Declare a user's experiment function's parameters (and the metric to plot).

    With ``parameters`` (flat field path -> default value) a sweep refuses, before any work,
    a field path the function does not have or a value of another kind than the default
    (number, boolean, string, list). The function itself is returned unchanged.

    Examples
    --------
    >>> @declare_experiment(parameters={"lr": 0.1, "epochs": 5}, metric="loss")
    ... def my_run(params, seed):
    ...     return {"loss": params.get("lr", 0.1) * seed}
    """
    def mark(function):
        function.sweep_parameters = None if parameters is None else dict(parameters)
        function.sweep_metric = metric
        return function
    return mark


def _kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _user_experiment(name: str, function) -> Experiment:
    declared = getattr(function, "sweep_parameters", None)

    def check(params: dict) -> None:
        for path, value in params.items():
            if path not in declared:
                raise ValueError(f"unknown field path {path!r}; {name} declares "
                                 f"{', '.join(declared)}")
            if _kind(value) != _kind(declared[path]):
                raise TypeError(f"field {path!r} must be {_kind(declared[path])} (like its "
                                f"default {declared[path]!r:.40}), got {value!r:.60}")
    return Experiment(name, function, None if declared is None else check,
                      getattr(function, "sweep_metric", None))


# -- configs from flat parameters ---------------------------------------------------------------
def _kind_error(label: str, current: Any, value: Any, expected: str) -> TypeError:
    return TypeError(f"field {label!r} must be {expected} (like its default {current!r:.40}), "
                     f"got {value!r:.60}")


def _checked_value(label: str, current: Any, value: Any) -> Any:
    """``value`` if it has the kind of the field's current value (copied if a list)."""
    if isinstance(current, ConfigBase):
        raise TypeError(f"field {label!r} is a {type(current).__name__}: set its fields "
                        f"({label}.FIELD) instead")
    if isinstance(current, enum.Enum):
        if not isinstance(value, (str, type(current))):
            raise _kind_error(label, current.name, value, f"a {type(current).__name__} name")
        return value  # validate() coerces a name and lists the valid ones
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise _kind_error(label, current, value, "a boolean")
        return value
    if isinstance(current, (int, float)) or current is None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _kind_error(label, current, value, "a number")
        return value
    if isinstance(current, str):
        if not isinstance(value, str):
            raise _kind_error(label, current, value, "a string")
        return value
    if isinstance(current, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise _kind_error(label, current, value, "a list")
        return type(current)(copy.deepcopy(value))
    raise _kind_error(label, current, value, type(current).__name__)


def set_config_field(config, path: str, value, *, label: str | None = None) -> None:
    """Set a (nested) field of a config dataclass by its dotted path, checking the kind.

    Parameters
    ----------
    config : config dataclass
        E.g. an :class:`~rpusim.configs.RPUConfig` or a device config; changed in place.
    path : str
        Field names joined by dots, e.g. ``"forward.out_noise"``.
    value
        A number, boolean, string (enum fields take a member's name), or list, of the same
        kind as the field's current value. Call ``config.validate()`` afterwards for the
        value checks.
    label : str, optional
        How errors name the field (default ``path``).

    Raises
    ------
    ValueError
        An unknown field (the message lists the valid ones).
    TypeError
        A value of the wrong kind, or a path that ends at a sub-config.
    """
    label = label or path
    target = config
    names = path.split(".")
    for depth, name in enumerate(names):
        if not dataclasses.is_dataclass(target):
            raise ValueError(f"unknown field path {label!r}: "
                             f"{'.'.join(names[:depth])!r} has no fields")
        fields = [f.name for f in dataclasses.fields(target)]
        if name not in fields:
            raise ValueError(f"unknown field path {label!r}: {type(target).__name__} has no "
                             f"field {name!r}; its fields: {', '.join(fields)}")
        if depth < len(names) - 1:
            target = getattr(target, name)
    setattr(target, names[-1], _checked_value(label, getattr(target, names[-1]), value))


def _algorithm_config(algorithm, device) -> configs.RPUConfig:
    if algorithm in DEMO_ALGORITHMS:
        return algorithm_config(algorithm, device)
    pair = [copy.deepcopy(device), copy.deepcopy(device)]
    if algorithm == "ttv2":
        return configs.UnitCellRPUConfig(device=configs.BufferedTransferCompound(pair))
    if algorithm == "c-ttv2":
        return configs.UnitCellRPUConfig(device=configs.ChoppedTransferCompound(pair))
    if algorithm == "agad":
        return configs.UnitCellRPUConfig(device=configs.DynamicTransferCompound(pair))
    if algorithm == "mixed-precision":
        return configs.DigitalRankUpdateRPUConfig(
            device=configs.MixedPrecisionCompound(device=copy.deepcopy(device)))
    raise ValueError(f"field 'algorithm' must be one of {list(ALGORITHMS)}, got {algorithm!r}")


def build_rpu_config(params: dict) -> configs.RPUConfig:
    """The RPU config of a built-in experiment's point (see the module docstring).

    Raises
    ------
    ValueError, TypeError
        Naming the field path: unknown device class or field, wrong kind, invalid value.
    """
    device_class = params.get("device.class", "SoftBoundsDevice")
    if not isinstance(device_class, str):
        raise TypeError(f"field 'device.class' must be a device class name, "
                        f"got {device_class!r:.60}")
    try:
        device = make_device(device_class)
    except ValueError as err:
        raise ValueError(f"field 'device.class': {err}") from None
    for path, value in params.items():
        if path.startswith("device.") and path != "device.class":
            set_config_field(device, path[len("device."):], value, label=path)
    config = _algorithm_config(params.get("algorithm", "sgd"), device)
    for path, value in params.items():
        if path.startswith("compound."):
            if params.get("algorithm", "sgd") == "sgd":
                raise ValueError(f"field {path!r}: algorithm {params.get('algorithm', 'sgd')!r} "
                                 f"has no compound")
            set_config_field(config.device, path[len("compound."):], value, label=path)
        elif path.startswith(("forward.", "backward.", "update.")):
            set_config_field(config, path, value)
    config.validate()
    return config


def _settings(params: dict, defaults: dict) -> dict:
    """The training settings of a point: defaults updated by ``params``, kinds checked."""
    allowed = ("algorithm", *defaults)
    for path in params:
        if not path.startswith(_CONFIG_PREFIXES) and path not in allowed:
            prefixes = ", ".join(prefix + "*" for prefix in _CONFIG_PREFIXES)
            raise ValueError(f"unknown field path {path!r}; the experiment's fields: "
                             f"{', '.join(allowed)} and {prefixes}")
    settings = {name: params.get(name, default) for name, default in defaults.items()}
    for name, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"field {name!r} must be a number, got {value!r:.60}")
        if name in _INT_SETTINGS and not float(value).is_integer():
            raise TypeError(f"field {name!r} must be an integer, got {value!r}")
        if not np.isfinite(value) or value < 0 or (value == 0 and name != "data_seed"
                                                   and name != "noise"):
            raise ValueError(f"field {name!r} must be finite and > 0, got {value!r}")
    for name in _INT_SETTINGS:
        if name in settings:
            settings[name] = int(settings[name])
    if "test_fraction" in settings and not 0 < settings["test_fraction"] < 1:
        raise ValueError(f"field 'test_fraction' must be in (0, 1), "
                         f"got {settings['test_fraction']!r}")
    return settings


def _tile_seed(seed: int) -> int:
    """A well-mixed seed for the point's tiles and sample order: the experiments seed two
    tiles and an order generator from ``s, s + 1, s + 2``, and neighbouring run seeds must not
    share streams."""
    return int(np.random.SeedSequence(seed).generate_state(1)[0] >> 2)


# -- the demo's regression task -----------------------------------------------------------------
def _check_demo(params: dict) -> None:
    _settings(params, DEMO_SETTINGS)
    build_rpu_config(params)


def demo_point(params: dict, seed: int) -> dict:
    """The demo's task (:func:`rpusim.demo.train_network` on the teacher data) at one point.

    Returns ``test_mse`` (against the noise-free test targets), ``train_mse`` and
    ``initial_test_mse``, after ``epochs`` epochs. The data come from ``data_seed``; the tiles'
    draws and the sample order from ``seed``.
    """
    s = _settings(params, DEMO_SETTINGS)
    data = make_teacher_data(n_samples=s["n_samples"], hidden=16, noise=s["noise"],
                             seed=s["data_seed"])
    history = train_network(build_rpu_config(params), data, hidden=s["hidden"],
                            epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"],
                            seed=_tile_seed(seed))
    return {"test_mse": history["test MSE"][-1], "train_mse": history["train MSE"][-1],
            "initial_test_mse": history["test MSE"][0]}


# -- digits classifier --------------------------------------------------------------------------
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 images, no download): pixels 0..16, labels.

    Reads the file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``) without
    importing scikit-learn, whose import costs each worker process seconds; falls back to
    ``sklearn.datasets.load_digits`` where the file is elsewhere.
    """
    found = importlib.util.find_spec("sklearn")
    if found is None:
        raise ImportError('the digits experiment needs scikit-learn (for its bundled data): '
                          'pip install "rpusim[digits]"')
    for folder in found.submodule_search_locations or []:
        path = pathlib.Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            table = np.loadtxt(path, delimiter=",")
            return table[:, :-1], table[:, -1].astype(int)
    from sklearn.datasets import load_digits
    digits = load_digits()
    return digits.data, digits.target


@functools.lru_cache(maxsize=4)
def _digits(test_fraction: float, data_seed: int):
    """The digits with pixels scaled to [0, 1], split into training and test sets."""
    images, labels = digits_arrays()
    x = images / 16.0
    order = np.random.default_rng(data_seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    return x[train], labels[train], x[test], labels[test]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _check_digits(params: dict) -> None:
    if importlib.util.find_spec("sklearn") is None:  # refused before any run is sent
        raise ValueError('experiment "digits" needs scikit-learn (for its bundled data set): '
                         'pip install "rpusim[digits]"')
    _settings(params, DIGITS_SETTINGS)
    build_rpu_config(params)


def digits_point(params: dict, seed: int) -> dict:
    """A 64-hidden-10 analog classifier (tanh hidden layer, softmax cross-entropy) trained on
    scikit-learn's digits at one point.

    Each mini-batch: analog forward through both tiles, output error ``softmax(z) - onehot``,
    analog backward through the second tile, pulsed updates of both tiles, post-update steps.
    Returns ``test_accuracy``, ``test_loss`` (cross-entropy) and ``train_loss``, measured
    with the analog forward pass in test mode. The split comes from ``data_seed``; the tiles'
    draws and the sample order from ``seed``.
    """
    s = _settings(params, DIGITS_SETTINGS)
    x, y, x_test, y_test = _digits(float(s["test_fraction"]), s["data_seed"])
    config = build_rpu_config(params)
    base = _tile_seed(seed)
    layer1 = AnalogTile(s["hidden"], x.shape[1], config, seed=base)
    layer2 = AnalogTile(10, s["hidden"], config, seed=base + 1)
    order_rng = np.random.default_rng(base + 2)
    onehot = np.eye(10)
    batch = s["batch_size"]
    for _ in range(s["epochs"]):
        order = order_rng.permutation(len(x))
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            h = np.tanh(layer1.forward(x[rows]))
            d_out = _softmax(layer2.forward(h)) - onehot[y[rows]]
            d_hidden = layer2.backward(d_out) * (1.0 - h ** 2)
            layer2.update(h, d_out, lr=s["lr"])
            layer1.update(x[rows], d_hidden, lr=s["lr"])
            layer1.post_update_step()
            layer2.post_update_step()

    def probabilities(inputs):
        return _softmax(layer2.forward(np.tanh(layer1.forward(inputs, is_test=True)),
                                       is_test=True).astype(np.float64))

    p_test, p_train = probabilities(x_test), probabilities(x)
    tiny = 1e-12  # a probability the float32 softmax rounds to 0 must not give inf
    return {"test_accuracy": float(np.mean(p_test.argmax(axis=1) == y_test)),
            "test_loss": float(-np.mean(np.log(p_test[np.arange(len(y_test)), y_test] + tiny))),
            "train_loss": float(-np.mean(np.log(p_train[np.arange(len(y)), y] + tiny)))}


#: The built-in experiments by name.
BUILTIN = {
    "demo": Experiment("demo", demo_point, _check_demo, "test_mse"),
    "digits": Experiment("digits", digits_point, _check_digits, "test_accuracy"),
}
