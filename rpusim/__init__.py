"""rpusim: a reference simulator of analog in-memory training hardware (NumPy + Numba)."""

from rpusim import configs
from rpusim.tile import AnalogTile

__all__ = ["AnalogTile", "configs"]
__version__ = "0.1.0"
