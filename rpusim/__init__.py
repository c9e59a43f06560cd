"""rpusim: a reference simulator of analog in-memory training hardware (NumPy + Numba)."""

import os

# The kernels run many tiny parallel regions. With numba's OpenMP layer, idle workers spin by
# default; on a machine with other load a spinning worker that loses its core delays every
# region by a scheduler time slice (measured: 0.13 s instead of 0.2 ms per update call of a
# 3x6 tile on 2 busy cores). libgomp reads this when numba first loads it, at the first
# parallel kernel call, so setting it at import is in time; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Started here, before any of rpusim's kernels can start it, so that the start never changes
# the OpenMP thread count of a library imported before rpusim (torch's; see rpusim.threads).
from rpusim.threads import start_numba_threads  # noqa: E402

start_numba_threads()

from rpusim import configs  # noqa: E402
from rpusim.tile import AnalogTile  # noqa: E402
from rpusim.tiles import (FloatingPointTile, InferenceTile,  # noqa: E402
                          InferenceTileWithPeriphery, TileModule, TorchInferenceTile,
                          TorchTransferTile)

__all__ = ["AnalogTile", "configs", "TileModule", "FloatingPointTile", "InferenceTile",
           "InferenceTileWithPeriphery", "TorchInferenceTile", "TorchTransferTile"]
__version__ = "0.1.0"
