"""Device models: one module per model (config, dtod sampling, hidden parameters, step kernel).

Adding a model: write its module and add it to the import list below.
"""

from rpusim.devices.base import PulsedDevice, register_device
from rpusim.devices.constant_step import ConstantStepDevice
from rpusim.devices.ideal import FloatingPointDevice, IdealDevice

__all__ = ["PulsedDevice", "register_device", "FloatingPointDevice", "IdealDevice",
           "ConstantStepDevice"]
