"""Peripheral (IO) and update presets shared by the RPU-config presets (aihwkit 1.2.0's values)."""

from __future__ import annotations

from dataclasses import dataclass

from rpusim.configs import (BoundManagementType, IOParameters, NoiseManagementType, PulseType,
                            UpdateParameters, WeightNoiseType)

__all__ = ["PresetIOParameters", "PresetUpdateParameters", "StandardIOParameters"]


@dataclass
class PresetIOParameters(IOParameters):
    """Forward/backward periphery of most presets: 7-bit DAC, 9-bit ADC.

    The DAC has ``2**7 - 1`` levels over ``[-1, 1]`` (deterministic rounding), the ADC
    ``2**9 - 1`` levels over ``[-20, 20]``: 20 fully-on inputs on maximal weights (weights
    normalised to ``[-1, 1]``) saturate it. The output noise 0.1 is about one ADC step. No
    weight read noise; bound management ``ITERATIVE`` and noise management ``ABS_MAX``.
    """

    bound_management: BoundManagementType = BoundManagementType.ITERATIVE
    noise_management: NoiseManagementType = NoiseManagementType.ABS_MAX
    inp_res: float = 1.0 / (2**7 - 2)
    inp_sto_round: bool = False
    out_bound: float = 20.0
    out_noise: float = 0.1
    out_res: float = 1.0 / (2**9 - 2)
    w_noise: float = 0.0
    w_noise_type: WeightNoiseType = WeightNoiseType.NONE


@dataclass
class PresetUpdateParameters(UpdateParameters):
    """Update of most presets: stochastic compressed pulse trains of at most 31 pulses.

    Update management and bit-length management are on, so the train length adapts to each
    sample's gradient (``desired_bl`` is the maximum), as in Gokmen & Vlasov, Front.
    Neurosci. 2016.
    """

    desired_bl: int = 31
    pulse_type: PulseType = PulseType.STOCHASTIC_COMPRESSED
    update_bl_management: bool = True
    update_management: bool = True


@dataclass
class StandardIOParameters(IOParameters):
    """Periphery of the standard hardware-aware-training setting (Rasch et al. 2023), managed.

    8-bit DAC and 8-bit ADC (``2**8 - 1`` levels each), output range ``[-10, 10]``, output
    noise 0.04, as the forward pass of ``StandardHWATrainingPreset``; but with bound
    management ``ITERATIVE``, noise management ``ABS_MAX``, no IR drop and no weight noise.
    """

    bound_management: BoundManagementType = BoundManagementType.ITERATIVE
    noise_management: NoiseManagementType = NoiseManagementType.ABS_MAX
    inp_res: float = 1.0 / (2**8 - 2)
    inp_sto_round: bool = False
    out_bound: float = 10.0
    out_noise: float = 0.04
    out_res: float = 1.0 / (2**8 - 2)
    w_noise: float = 0.0
    w_noise_type: WeightNoiseType = WeightNoiseType.NONE
