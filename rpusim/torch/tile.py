"""The tile a layer holds: an :class:`~rpusim.AnalogTile` plus aihwkit's tensor attributes.

aihwkit's layers hold tile modules whose attributes are tensors; scripts read some of them
directly from ``layer.analog_tiles()`` (the drift-compensation factor ``alpha``, the drift
coefficients ``drift_noise_parameters``). Everything of the tile API stays as it is (NumPy in,
NumPy out); only these read-only attributes are tensors.
"""

from __future__ import annotations

import numpy as np
import torch

from rpusim.tile import AnalogTile

__all__ = ["LayerTile"]


class LayerTile(AnalogTile):
    """An :class:`~rpusim.AnalogTile` with aihwkit's tensor attributes for scripts."""

    @property
    def alpha(self) -> torch.Tensor:
        """Drift-compensation factor of the test-mode outputs (``InferenceRPUConfig`` tiles):
        a 0-d tensor, or one value per output for a per-column compensation.

        Raises
        ------
        AttributeError
            The tile has no inference configuration (aihwkit's training tiles have no alpha).
        """
        if self._inference is None:
            raise AttributeError(f"alpha exists on InferenceRPUConfig tiles only, this one "
                                 f"has {type(self.rpu_config).__name__}")
        return torch.as_tensor(np.asarray(self.get_drift_compensation_alpha()))

    @property
    def drift_noise_parameters(self) -> list[torch.Tensor] | None:
        """The drift coefficients (nu) drawn at programming, one ``(out, in)`` tensor per
        conductance of the converter (``None`` before programming or without inference)."""
        state = self._inference
        if state is None or state.drift_coefficients is None:
            return None
        return [None if c is None else torch.as_tensor(np.array(c, copy=True))
                for c in state.drift_coefficients]
