"""Compound devices: unit cells, the Tiki-taka transfer family and mixed precision.

Configs are plain data (:mod:`rpusim.compounds.configs`); each is bound here to the builder of
its runtime model, which :func:`rpusim.devices.model.make_device_model` consults.
"""

from rpusim.compounds.configs import (BufferedTransferCompound, ChoppedTransferCompound,
                                      DifferenceUnitCell, DynamicTransferCompound,
                                      MixedPrecisionCompound, OneSidedUnitCell,
                                      ReferenceUnitCell, TransferCompound, VectorUnitCell)
from rpusim.devices.model import register_model_builder

__all__ = ["VectorUnitCell", "ReferenceUnitCell", "OneSidedUnitCell", "DifferenceUnitCell",
           "TransferCompound", "BufferedTransferCompound", "ChoppedTransferCompound",
           "DynamicTransferCompound", "MixedPrecisionCompound"]

_BUILDERS: dict = {}


def builder_for(config):
    """The model builder of a compound config (``None`` for a single device)."""
    for cls in type(config).__mro__:
        if cls in _BUILDERS:
            return _BUILDERS[cls]
    return None


def _register(config_class, builder) -> None:
    _BUILDERS[config_class] = builder
    register_model_builder(config_class, builder)


def _register_all() -> None:
    from rpusim.compounds.vector import build_vector
    from rpusim.compounds.transfer import build_transfer
    for cls in (VectorUnitCell, ReferenceUnitCell):
        _register(cls, build_vector)
    for cls in (TransferCompound, BufferedTransferCompound, ChoppedTransferCompound,
                DynamicTransferCompound):
        _register(cls, build_transfer)
    from rpusim.compounds.onesided import build_onesided
    for cls in (OneSidedUnitCell, DifferenceUnitCell):
        _register(cls, build_onesided)
    from rpusim.compounds.mixed import build_mixed
    _register(MixedPrecisionCompound, build_mixed)


_register_all()
