"""Device presets: device models fitted to measured hardware (aihwkit 1.2.0's values).

Each preset is a subclass of an rpusim device config that changes only defaults, so it runs
as its base model everywhere (single tiles, every compound, save/load, ``python -m rpusim
response NAME``). Weights are normalised to a range of about ``[-1, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rpusim.configs import (ConstantStepDevice, ExpStepDevice, LinearStepDevice,
                            SoftBoundsReferenceDevice)

__all__ = ["ReRamESPresetDevice", "ReRamSBPresetDevice", "CapacitorPresetDevice",
           "EcRamPresetDevice", "EcRamMOPresetDevice", "IdealizedPresetDevice",
           "GokmenVlasovPresetDevice", "PCMPresetDevice", "ReRamArrayOMPresetDevice",
           "ReRamArrayHfO2PresetDevice"]


@dataclass
class ReRamESPresetDevice(ExpStepDevice):
    """ReRAM, :class:`~rpusim.configs.ExpStepDevice` fitted to Gong et al., Nat. Commun. 2018.

    About 1500 small steps across ``[-1, 1]`` with strongly asymmetric exponential saturation
    (``A_up``/``A_down``), large cycle-to-cycle noise (``dw_min_std`` 5) and write noise
    (``write_noise_std`` 75, relative to ``dw_min``).
    """

    dw_min: float = 0.00135
    up_down: float = 0.259359
    w_max: float = 1.0
    w_min: float = -1.0
    a: float = -0.5
    b: float = -0.5
    gamma_up: float = 5.0
    gamma_down: float = 5.0
    A_up: float = -1.18445
    A_down: float = -0.081404
    dw_min_dtod: float = 0.2
    up_down_dtod: float = 0.05
    w_max_dtod: float = 0.3
    w_min_dtod: float = 0.3
    dw_min_std: float = 5.0
    write_noise_std: float = 75.0


@dataclass
class ReRamSBPresetDevice(SoftBoundsReferenceDevice):
    """ReRAM, soft bounds loosely fitted to Gong et al., Nat. Commun. 2018.

    A :class:`~rpusim.configs.SoftBoundsReferenceDevice` with an asymmetric range
    ``[-0.75, 1.25]`` whose symmetry point is assumed calibrated to zero (hence the small
    ``up_down_dtod``); additive cycle-to-cycle noise and write noise. The Tiki-taka family
    presets turn on ``subtract_symmetry_point``. :class:`ReRamESPresetDevice` is the closer fit.
    """

    dw_min: float = 0.002
    up_down: float = 0.0
    w_max: float = 1.25
    w_min: float = -0.75
    mult_noise: bool = False
    dw_min_dtod: float = 0.3
    up_down_dtod: float = 0.01
    w_max_dtod: float = 0.3 / 1.25
    w_min_dtod: float = 0.3 / 0.75
    dw_min_std: float = 3.75
    write_noise_std: float = 56.0


@dataclass
class CapacitorPresetDevice(LinearStepDevice):
    """Capacitor cell, :class:`~rpusim.configs.LinearStepDevice` fitted to Li et al., VLSI 2018.

    400 nearly linear steps across ``[-1, 1]`` (``gamma`` 0.05, slope independent of each
    element's bounds) with leakage: ``lifetime`` 1e6 (spread 0.3) acts through
    ``decay_weights``, i.e. per call of ``post_update_step`` (once per mini-batch). How many
    mini-batches the physical leak time corresponds to depends on the assumed speed of a
    forward/backward cycle, so adapt ``lifetime`` to your setting.
    """

    dw_min: float = 0.005
    up_down: float = 0.0
    w_max: float = 1.0
    w_min: float = -1.0
    mult_noise: bool = False
    gamma_up: float = 0.05
    gamma_down: float = 0.05
    dw_min_dtod: float = 0.1
    up_down_dtod: float = 0.06
    w_max_dtod: float = 0.07
    w_min_dtod: float = 0.07
    gamma_up_dtod: float = 0.01
    gamma_down_dtod: float = 0.01
    dw_min_std: float = 0.3
    write_noise_std: float = 0.0
    mean_bound_reference: bool = True
    lifetime: float = 1.0e6
    lifetime_dtod: float = 0.3


@dataclass
class EcRamPresetDevice(LinearStepDevice):
    """Lithium ECRAM, :class:`~rpusim.configs.LinearStepDevice` fitted to Tang et al., IEDM 2018.

    The measured range is shifted so that the symmetry point is at zero
    (``[-0.8276, 1.1724]``); up and down slopes differ (``gamma`` 0.1153 and 0.5085).
    """

    dw_min: float = 0.002
    up_down: float = 0.0
    w_max: float = 1.1724
    w_min: float = -0.8276
    mult_noise: bool = True
    gamma_up: float = 0.1153
    gamma_down: float = 0.5085
    dw_min_dtod: float = 0.1
    up_down_dtod: float = 0.01
    w_max_dtod: float = 0.05
    w_min_dtod: float = 0.05
    gamma_up_dtod: float = 0.05
    gamma_down_dtod: float = 0.05
    dw_min_std: float = 0.3
    write_noise_std: float = 0.0
    mean_bound_reference: bool = True


@dataclass
class EcRamMOPresetDevice(LinearStepDevice):
    """Metal-oxide ECRAM, :class:`~rpusim.configs.LinearStepDevice` from Kim et al., IEDM 2019.

    Very fine steps (``dw_min`` 2.8e-4, about 7000 across the range) with large
    cycle-to-cycle noise (``dw_min_std`` 2); range shifted to put the symmetry point at zero.
    """

    dw_min: float = 2.8214e-4
    up_down: float = 0.0
    w_max: float = 1.1714
    w_min: float = -0.8286
    mult_noise: bool = True
    gamma_up: float = 0.4152
    gamma_down: float = 0.7342
    dw_min_dtod: float = 0.1
    up_down_dtod: float = 0.01
    w_max_dtod: float = 0.05
    w_min_dtod: float = 0.05
    gamma_up_dtod: float = 0.05
    gamma_down_dtod: float = 0.05
    dw_min_std: float = 2.0
    write_noise_std: float = 0.0
    mean_bound_reference: bool = True


@dataclass
class IdealizedPresetDevice(ConstantStepDevice):
    """Idealized device: :class:`~rpusim.configs.ConstantStepDevice` with 10000 steps.

    The device of Gokmen & Vlasov, Front. Neurosci. 2016 (see
    :class:`GokmenVlasovPresetDevice`) with symmetric steps on average (``up_down_dtod`` 0)
    and about 8 times more states; used in Rasch, Gokmen & Haensch, IEEE Design & Test 2019.
    """

    dw_min: float = 0.0002
    dw_min_dtod: float = 0.3
    dw_min_std: float = 0.3
    up_down: float = 0.0
    up_down_dtod: float = 0.0
    w_max: float = 1.0
    w_min: float = -1.0
    w_max_dtod: float = 0.3
    w_min_dtod: float = 0.3


@dataclass
class GokmenVlasovPresetDevice(ConstantStepDevice):
    """The RPU device specification of Gokmen & Vlasov, Front. Neurosci. 2016.

    A :class:`~rpusim.configs.ConstantStepDevice` with about 1200 states, scaled to the
    weight range ``[-1, 1]``, with the paper's device-to-device and cycle-to-cycle spread.
    """

    dw_min: float = 0.0016
    dw_min_dtod: float = 0.3
    dw_min_std: float = 0.3
    up_down: float = 0.0
    up_down_dtod: float = 0.01
    w_max: float = 1.0
    w_min: float = -1.0
    w_max_dtod: float = 0.3
    w_min_dtod: float = 0.3


@dataclass
class PCMPresetDevice(ExpStepDevice):
    """Phase-change memory (GST), :class:`~rpusim.configs.ExpStepDevice` from Nandakumar et
    al., Front. Neurosci. 2020.

    A one-directional conductance in ``[0, 2]``: it is used in pairs of opposite sign with
    refresh (:class:`~rpusim.presets.PCMPresetUnitCell`). Its cycle-to-cycle noise depends
    on the conductance (``dw_min_std_add``, ``dw_min_std_slope``); a reset (``reset``,
    ``reset_dtod``) leaves each element near its own reset value.
    """

    dw_min: float = 0.01
    up_down: float = 0.0
    w_max: float = 2.0
    w_min: float = 0.0
    a: float = -1.0
    b: float = 0.0
    gamma_up: float = 2.5
    gamma_down: float = 2.5
    A_up: float = -27.235
    A_down: float = -2.235
    dw_min_dtod: float = 0.2
    up_down_dtod: float = 0.05
    w_max_dtod: float = 0.1
    w_min_dtod: float = 0.0
    dw_min_std: float = 0.6
    dw_min_std_add: float = 0.042
    dw_min_std_slope: float = 0.108
    write_noise_std: float = 0.0
    reset: float = 0.01
    reset_dtod: float = 0.02


@dataclass
class ReRamArrayOMPresetDevice(SoftBoundsReferenceDevice):
    """ReRAM array, "optimized material", from Gong & Rasch et al., IEDM 2022.

    :class:`~rpusim.configs.SoftBoundsReferenceDevice` fitted to array measurements, range
    compliance-adjusted to ``[-1, 1]``, log-normal step spread, the symmetry point
    subtracted with a 5 % reference error (``reference_std``). The measured array had 13.5 %
    stuck devices; set ``corrupt_devices_prob`` to 0.1348 to model them (0 here).
    """

    enforce_consistency: bool = True
    dw_min_dtod_log_normal: bool = True
    dw_min: float = 0.0949
    up_down: float = 0.0
    w_max: float = 1.0
    w_min: float = -1.0
    mult_noise: bool = False
    dw_min_dtod: float = 0.7829
    up_down_dtod: float = 0.01
    w_max_dtod: float = 0.3499
    w_min_dtod: float = 0.5695
    dw_min_std: float = 0.4158
    write_noise_std: float = 1.4113
    corrupt_devices_range: float = 0.0100
    corrupt_devices_prob: float = 0.0
    subtract_symmetry_point: bool = True
    reference_std: float = 0.05


@dataclass
class ReRamArrayHfO2PresetDevice(SoftBoundsReferenceDevice):
    """ReRAM array, "baseline HfO2", from Gong & Rasch et al., IEDM 2022.

    As :class:`ReRamArrayOMPresetDevice`, fitted to the baseline array: fewer, larger steps
    (``dw_min`` 0.46). The measured array had about 10 % stuck devices
    (``corrupt_devices_prob`` 0.0977 models them; 0 here).
    """

    enforce_consistency: bool = True
    dw_min_dtod_log_normal: bool = True
    dw_min: float = 0.4622
    up_down: float = 0.0
    w_max: float = 1.0
    w_min: float = -1.0
    mult_noise: bool = False
    dw_min_dtod: float = 0.7125
    up_down_dtod: float = 0.01
    w_max_dtod: float = 0.4295
    w_min_dtod: float = 0.5990
    dw_min_std: float = 0.2174
    write_noise_std: float = 0.5841
    corrupt_devices_range: float = 0.0100
    corrupt_devices_prob: float = 0.0
    subtract_symmetry_point: bool = True
    reference_std: float = 0.05
