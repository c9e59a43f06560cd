"""Digital pre- and post-processing around a tile: learned input ranges (aihwkit's ``pre_post``).

Like :mod:`rpusim.configs.mapping`, the tile itself ignores these fields: they are read by the
layers on top (``rpusim.torch``), as aihwkit's ``PrePostProcessingParameter`` is read by its torch
tile modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from rpusim.configs._base import ConfigBase
from rpusim.configs.enums import BoundManagementType, NoiseManagementType
from rpusim.configs.io import IOParameters

__all__ = ["InputRangeParameter", "PrePostProcessingParameter"]


@dataclass
class InputRangeParameter(ConfigBase):
    """Learning of a static input range per tile (aihwkit's fields and defaults).

    With ``enable``, the layer clips the inputs of each tile to ``[-r, r]`` with a digital,
    learned range ``r`` and feeds ``x / r`` to the tile (whose input bound is then taken as 1),
    multiplying the outputs by ``r`` again. The learned range replaces the dynamic noise and bound
    management, which are therefore usually ``NONE`` (not enforced).

    Attributes
    ----------
    enable : bool
        Use an input range at all. ``False`` (default): no clipping, inputs pass unchanged.
    learn_input_range : bool
        Learn ``r`` by gradient descent when enabled; otherwise ``r`` stays at its initial (or
        calibrated) value.
    init_value : float
        Initial range ``r``.
    init_from_data : int
        Number of first training batches from which ``r`` is initialised (0: keep
        ``init_value``).
    init_std_alpha : float
        The data initialisation sets ``r`` to ``init_std_alpha`` times the input standard
        deviation (averaged over the ``init_from_data`` batches).
    decay : float
        Rate by which ``r`` shrinks when few inputs are clipped.
    input_min_percentage : float
        The decay (gradient ``+= decay * r``) acts only while the fraction of non-clipped
        inputs is above this value.
    manage_output_clipping : bool
        Grow ``r`` when the tile outputs clip at ``forward.out_bound``. Needs a non-perfect
        forward with noise and bound management ``NONE``.
    output_min_percentage : float
        With ``manage_output_clipping``, ``r`` grows (gradient ``-= (1 - p) * r``) while the
        fraction ``p`` of non-clipped outputs is below this value.
    gradient_scale : float
        Scale (learning rate factor) of the gradient of ``r``.
    gradient_relative : bool
        Make the gradient of ``r`` relative to the current value of ``r``.
    calibration_info : str or None
        Free-form note left by a post-training calibration of the ranges.
    """

    enable: bool = False
    learn_input_range: bool = True
    init_value: float = 3.0
    init_from_data: int = 100
    init_std_alpha: float = 3.0
    decay: float = 0.001
    input_min_percentage: float = 0.95
    manage_output_clipping: bool = False
    output_min_percentage: float = 0.95
    gradient_scale: float = 1.0
    gradient_relative: bool = True
    calibration_info: Optional[str] = None

    def validate(self) -> None:
        super().validate()
        for name in ("enable", "learn_input_range", "manage_output_clipping",
                     "gradient_relative"):
            self._check_bool(name)
        self._check_number("init_value", lo=0.0, lo_open=True)
        self._check_int("init_from_data", lo=0)
        self._check_number("init_std_alpha", lo=0.0, lo_open=True)
        self._check_number("decay", lo=0.0)
        self._check_number("input_min_percentage", lo=0.0, hi=1.0)
        self._check_number("output_min_percentage", lo=0.0, hi=1.0)
        self._check_number("gradient_scale", lo=0.0)
        self._check_optional_str("calibration_info")

    def _check_optional_str(self, name: str) -> None:
        """Raise ``TypeError`` unless field ``name`` is ``None`` or a string."""
        value = getattr(self, name)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{type(self).__name__}.{name} must be None or a str, "
                            f"got {value!r:.80}")

    @staticmethod
    def supports_manage_output_clipping(rpu_config: Any) -> bool:
        """Whether ``rpu_config`` allows ``manage_output_clipping`` (as aihwkit decides).

        Parameters
        ----------
        rpu_config : RPUConfig
            The configuration whose forward IO is checked.

        Returns
        -------
        bool
            True if the forward IO is a non-perfect ``IOParameters`` with noise and bound
            management ``NONE``.
        """
        forward = getattr(rpu_config, "forward", None)
        if not isinstance(forward, IOParameters) or forward.is_perfect:
            return False
        return (forward.noise_management == NoiseManagementType.NONE
                and forward.bound_management == BoundManagementType.NONE)


@dataclass
class PrePostProcessingParameter(ConfigBase):
    """Digital processing of a tile's inputs and outputs in the layers (aihwkit's name).

    Attributes
    ----------
    input_range : InputRangeParameter
        The learned input range (off by default).
    """

    input_range: InputRangeParameter = field(default_factory=InputRangeParameter)
