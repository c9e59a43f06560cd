"""aihwkit's ``aihwkit.utils`` for scripts that import it as a package.

``from aihwkit.utils import visualization, analog_info`` becomes ``from rpusim.utils import
visualization, analog_info``: ``visualization`` is :mod:`rpusim.plotting` (device response
figures; needs matplotlib when plotting) and ``analog_info`` is
:mod:`rpusim.torch.analog_info` (``analog_summary``; needs PyTorch). Their public names are also
available here directly (``rpusim.utils.plot_device``, ``rpusim.utils.analog_summary``). Both
are loaded on first use, so importing this module needs neither extra.
"""

from __future__ import annotations

import importlib

__all__ = ["visualization", "analog_info"]

_SUBMODULES = {"visualization": "rpusim.plotting", "analog_info": "rpusim.torch.analog_info"}
# names of rpusim.torch.analog_info, listed here so that looking up a plotting name never
# imports torch
_ANALOG_INFO_NAMES = ("analog_summary", "AnalogInfo", "LayerInfo", "TileInfo")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(_SUBMODULES[name])
    if name in _ANALOG_INFO_NAMES:
        return getattr(importlib.import_module(_SUBMODULES["analog_info"]), name)
    plotting = importlib.import_module(_SUBMODULES["visualization"])
    if name in plotting.__all__:
        return getattr(plotting, name)
    raise AttributeError(f"module 'rpusim.utils' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
