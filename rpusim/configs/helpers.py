"""``build_config``: a training configuration from a device and the name of an algorithm."""

from __future__ import annotations

import copy
from typing import Any, Callable

from rpusim.compounds import (ChoppedTransferCompound, DynamicTransferCompound,
                              MixedPrecisionCompound, TransferCompound, VectorUnitCell)
from rpusim.configs.enums import (BoundManagementType, NoiseManagementType,
                                  VectorUnitCellUpdatePolicy)
from rpusim.configs.io import IOParameters
from rpusim.configs.rpu import DigitalRankUpdateRPUConfig, SingleRPUConfig, UnitCellRPUConfig
from rpusim.configs.update import UpdateParameters
from rpusim.devices import PulsedDevice

__all__ = ["build_config"]

_ALGORITHMS = {
    "sgd": "sgd",
    "tiki-taka": "ttv1", "tt": "ttv1", "ttv1": "ttv1",
    "ttv2": "ttv2",
    "chopped-ttv2": "ttv3", "ttv3": "ttv3", "c-ttv2": "ttv3",
    "agad": "ttv4", "ttv4": "ttv4",
    "mp": "mp", "mixed-precision": "mp",
}


def _factory(spec: Any, base: type, what: str) -> Callable[..., Any]:
    """``spec`` as a callable taking field overrides: a class is called, an instance is copied
    and its fields overwritten."""
    if isinstance(spec, base):
        def make(**fields):
            made = copy.deepcopy(spec)
            for name, value in fields.items():
                setattr(made, name, value)
            return made
        return make
    if callable(spec):
        return spec
    raise TypeError(f"{what} must be a {base.__name__} class, instance or factory, "
                    f"got {spec!r:.80}")


def build_config(algorithm: str, device: Any, io_parameters: Any = IOParameters,
                 up_parameters: Any = UpdateParameters, n_devices: int = 1,
                 construction_seed: int = 0, **kwargs: Any):
    """An RPU configuration training with ``algorithm`` on devices like ``device``.

    aihwkit's ``build_config`` with its choices of compounds and settings per algorithm.

    Parameters
    ----------
    algorithm : str
        ``"sgd"`` (plain pulsed SGD); ``"tiki-taka"``/``"tt"``/``"ttv1"``
        (``TransferCompound``); ``"ttv2"`` (``ChoppedTransferCompound`` without chopping);
        ``"chopped-ttv2"``/``"ttv3"``/``"c-ttv2"`` (chopped, auto-scaled);
        ``"agad"``/``"ttv4"`` (``DynamicTransferCompound``); ``"mp"``/``"mixed-precision"``
        (``MixedPrecisionCompound``, digital rank update). Case-insensitive.
    device : PulsedDevice class, instance or factory
        Every device of the configuration is a fresh copy (an instance is deep-copied).
    io_parameters, up_parameters : IOParameters / UpdateParameters class, instance or factory
        Used for forward, backward and transfer reads, and for updates and transfer writes.
    n_devices : int
        With ``"sgd"``, more than 1 makes a ``VectorUnitCell`` of that many devices, one
        randomly chosen per update.
    construction_seed : int
        Seed of the device-to-device draws (on the device, or on the compound).
    **kwargs
        Further fields of the configuration (e.g. ``mapping``).

    Returns
    -------
    SingleRPUConfig, UnitCellRPUConfig or DigitalRankUpdateRPUConfig

    Raises
    ------
    ValueError
        An unknown algorithm (the message lists the known ones).
    """
    if not isinstance(algorithm, str) or algorithm.lower() not in _ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(_ALGORITHMS)}, got {algorithm!r}")
    kind = _ALGORITHMS[algorithm.lower()]
    dev = _factory(device, PulsedDevice, "device")
    io = _factory(io_parameters, IOParameters, "io_parameters")
    up = _factory(up_parameters, UpdateParameters, "up_parameters")
    quiet_io = dict(noise_management=NoiseManagementType.NONE,
                    bound_management=BoundManagementType.NONE)
    common = dict(forward=io(), backward=io(), **kwargs)
    if kind == "sgd" and n_devices == 1:
        return SingleRPUConfig(device=dev(construction_seed=construction_seed), update=up(),
                               **common)
    if kind == "sgd":
        cell = VectorUnitCell(unit_cell_devices=[dev() for _ in range(n_devices)],
                              update_policy=VectorUnitCellUpdatePolicy.SINGLE_RANDOM,
                              construction_seed=construction_seed)
        return UnitCellRPUConfig(device=cell, update=up(), **common)
    if kind == "mp":
        return DigitalRankUpdateRPUConfig(
            device=MixedPrecisionCompound(device=dev(construction_seed=construction_seed)),
            update=up(), **common)
    pair = dict(unit_cell_devices=[dev(), dev()], construction_seed=construction_seed)
    if kind == "ttv1":
        compound = TransferCompound(**pair, transfer_forward=io(**quiet_io),
                                    transfer_update=up(), units_in_mbatch=True)
        return UnitCellRPUConfig(device=compound, update=up(), **common)
    single_pulse = dict(desired_bl=1, update_bl_management=False, update_management=False)
    if kind == "ttv2":
        compound = ChoppedTransferCompound(**pair, transfer_forward=io(**quiet_io),
                                           transfer_update=up(**single_pulse), in_chop_prob=0.0,
                                           units_in_mbatch=False, auto_scale=False)
    elif kind == "ttv3":
        compound = ChoppedTransferCompound(**pair, transfer_forward=io(**quiet_io),
                                           transfer_update=up(**single_pulse),
                                           units_in_mbatch=False, fast_lr=0.1, auto_scale=True)
    else:
        compound = DynamicTransferCompound(
            **pair, transfer_forward=io(),
            transfer_update=up(desired_bl=1, update_bl_management=True, update_management=True),
            auto_scale=True, fast_lr=0.1, units_in_mbatch=False)
    return UnitCellRPUConfig(device=compound, update=up(desired_bl=5), **common)
