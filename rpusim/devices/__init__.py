"""Device models: one module per model (config, dtod sampling, hidden parameters, step kernel).

Adding a model: write its module and add it to the import list below.
"""

from rpusim.devices.base import PulsedDevice, register_device
from rpusim.devices.constant_step import ConstantStepDevice
from rpusim.devices.custom import define_device
from rpusim.devices.exp_step import ExpStepDevice
from rpusim.devices.ideal import FloatingPointDevice, IdealDevice
from rpusim.devices.linear_step import LinearStepDevice
from rpusim.devices.lookup_table import LookupTableDevice
from rpusim.devices.piecewise_step import PiecewiseStepDevice
from rpusim.devices.pow_step import PowStepDevice
from rpusim.devices.pow_step_reference import PowStepReferenceDevice
from rpusim.devices.soft_bounds import SoftBoundsDevice
from rpusim.devices.soft_bounds_pmax import SoftBoundsPmaxDevice
from rpusim.devices.soft_bounds_reference import SoftBoundsReferenceDevice

__all__ = ["PulsedDevice", "register_device", "FloatingPointDevice", "IdealDevice",
           "ConstantStepDevice", "LinearStepDevice", "SoftBoundsDevice", "SoftBoundsPmaxDevice",
           "SoftBoundsReferenceDevice", "ExpStepDevice", "PowStepDevice",
           "PowStepReferenceDevice", "PiecewiseStepDevice", "define_device",
           "LookupTableDevice"]
