"""PyTorch layers on analog tiles (optional extra ``rpusim[torch]``): aihwkit's ``aihwkit.nn`` and
``aihwkit.optim`` under one flat namespace.

Each analog layer holds its weights in a :class:`~rpusim.torch.mapping.TileGrid` of
:class:`~rpusim.AnalogTile` s; forward and backward run through the tiles, and the weight
gradient is not a tensor but the (x, d) pairs of every forward/backward, which
:class:`AnalogSGD` turns into pulsed tile updates, as aihwkit's layers and optimizer do. The core
of rpusim never imports this package.
"""

try:
    import torch  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised only without torch
    raise ImportError("rpusim.torch needs PyTorch: pip install 'rpusim[torch]' "
                      "(or pip install torch)") from err

from rpusim.torch.base import AnalogContext, AnalogLayerBase
from rpusim.torch.containers import (AnalogContainerBase, AnalogSequential, AnalogWrapper,
                                     convert_to_analog, convert_to_digital)
from rpusim.torch.conv import (AnalogConv1d, AnalogConv1dMapped, AnalogConv2d,
                               AnalogConv2dMapped, AnalogConv3d, AnalogConv3dMapped)
from rpusim.torch.info import AnalogInfo, analog_summary
from rpusim.torch.linear import AnalogLinear, AnalogLinearMapped
from rpusim.torch.mapping import TileGrid, split_sizes
from rpusim.torch.optim import AnalogAdam, AnalogOptimizer, AnalogOptimizerMixin, AnalogSGD

__all__ = ["AnalogContext", "AnalogLayerBase", "AnalogContainerBase", "AnalogSequential",
           "AnalogWrapper", "convert_to_analog", "convert_to_digital", "AnalogLinear",
           "AnalogLinearMapped", "AnalogConv1d", "AnalogConv2d", "AnalogConv3d",
           "AnalogConv1dMapped", "AnalogConv2dMapped", "AnalogConv3dMapped", "TileGrid",
           "split_sizes", "AnalogSGD", "AnalogAdam", "AnalogOptimizer", "AnalogOptimizerMixin",
           "AnalogInfo", "analog_summary"]

# recurrent layers (aihwkit.nn.modules.rnn)
from rpusim.torch.recurrent import *  # noqa: E402,F401,F403
from rpusim.torch.recurrent import __all__ as _recurrent_names  # noqa: E402

__all__ += _recurrent_names
