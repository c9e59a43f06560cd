"""Dump every preset of aihwkit 1.2.0 (``aihwkit.simulator.presets``) to JSON, field by field.

Run with the aihwkit oracle environment (not with rpusim)::

    /tmp/aihwkit-venv/bin/python scripts/dump_presets.py [output.json [responses.json]]

The output (default ``tests/golden/aihwkit_presets.json``) maps each preset class name to its
default instance, serialized recursively (nested devices, IO and update parameters, noise
models) by ``scripts/dump_defaults.py``'s ``plain``: class names under ``"__class__"``, enums
as member names. ``"presets"`` holds the names ``aihwkit.simulator.presets`` exports;
``"web_presets"`` the classes of its ``web`` module (the inference composer's defaults,
not exported by the package). ``"bases"`` names the aihwkit base class of each preset.
``tests/test_presets.py`` compares rpusim's presets with this file.

A second file (default ``tests/golden/aihwkit_preset_responses.json``) holds the pulse
response of every preset device, in distribution: ``N_ELEMENTS`` elements of a one-column
tile start at their lower bound (weights set to -1000) and receive ``n`` single up pulses
(``DETERMINISTIC_IMPLICIT``, bit length 1, no management), then ``n`` down pulses; the mean
and the variance over the elements at a few pulse counts are recorded.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
N_ELEMENTS = 300
# preset device -> up pulses (then as many down): enough to cross most of the range
RESPONSE_PULSES = {
    "IdealizedPresetDevice": 2000, "GokmenVlasovPresetDevice": 1000,
    "ReRamESPresetDevice": 1000, "ReRamSBPresetDevice": 1000, "ReRamArrayOMPresetDevice": 50,
    "ReRamArrayHfO2PresetDevice": 20, "CapacitorPresetDevice": 400,
    "EcRamPresetDevice": 1000, "EcRamMOPresetDevice": 3000, "PCMPresetDevice": 300,
}


def checkpoints(n: int) -> list[int]:
    """Pulse counts at which the response is recorded (0 is the start)."""
    return [0, n // 4, n // 2, n, n + n // 2, 2 * n]


def _plain():
    """``plain`` of scripts/dump_defaults.py (one serializer for both fixtures)."""
    spec = importlib.util.spec_from_file_location("dump_defaults", ROOT / "scripts" /
                                                  "dump_defaults.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.plain


def _classes(module) -> list[type]:
    """The dataclasses defined in ``module`` itself, in source order."""
    found = [cls for _, cls in inspect.getmembers(module, inspect.isclass)
             if cls.__module__ == module.__name__]
    return sorted(found, key=lambda cls: inspect.getsourcelines(cls)[1])


def pulse_response_stats(presets, name: str, n: int) -> dict:
    """Mean and variance over the elements of the response to n up, then n down pulses."""
    import numpy as np
    import torch
    from aihwkit.simulator.configs import SingleRPUConfig
    from aihwkit.simulator.parameters import UpdateParameters
    from aihwkit.simulator.parameters.enums import PulseType

    update = UpdateParameters(pulse_type=PulseType.DETERMINISTIC_IMPLICIT, desired_bl=1,
                              update_management=False, update_bl_management=False)
    config = SingleRPUConfig(device=getattr(presets, name)(), update=update)
    tile = config.tile_class(N_ELEMENTS, 1, config).tile
    tile.set_learning_rate(1.0)
    tile.set_weights(torch.full((N_ELEMENTS, 1), -1e3))
    trace = [tile.get_weights().numpy()[:, 0].astype(np.float64)]
    x = torch.ones((1, 1))
    for direction in (-1.0, 1.0):  # d < 0 with x > 0: an up pulse
        d = torch.full((1, N_ELEMENTS), direction)
        for _ in range(n):
            tile.update(x, d, False)
            trace.append(tile.get_weights().numpy()[:, 0].astype(np.float64))
    at = np.array(trace)[checkpoints(n)]
    return {"pulses": n, "checkpoints": checkpoints(n), "mean": at.mean(axis=1).tolist(),
            "var": at.var(axis=1).tolist()}


def main(argv: list[str]) -> None:
    import aihwkit
    from aihwkit.simulator import presets
    from aihwkit.simulator.presets import web

    plain = _plain()
    target = pathlib.Path(argv[1]) if len(argv) > 1 else ROOT / "tests/golden/aihwkit_presets.json"
    names = [name for name in dir(presets)
             if inspect.isclass(getattr(presets, name))
             and getattr(presets, name).__module__.startswith("aihwkit.simulator.presets.")]
    web_names = [cls.__name__ for cls in _classes(web)]
    everything = {name: getattr(presets, name) for name in names}
    everything.update({name: getattr(web, name) for name in web_names})
    data = {
        "aihwkit_version": aihwkit.__version__,
        "presets": sorted(names),
        "web_presets": web_names,
        "bases": {name: cls.__mro__[1].__name__ for name, cls in everything.items()},
        "classes": {name: plain(cls()) for name, cls in everything.items()},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {len(names)} presets and {len(web_names)} web presets to {target}")

    responses = (pathlib.Path(argv[2]) if len(argv) > 2
                 else ROOT / "tests/golden/aihwkit_preset_responses.json")
    stats = {name: pulse_response_stats(presets, name, n)
             for name, n in RESPONSE_PULSES.items()}
    responses.write_text(json.dumps({"aihwkit_version": aihwkit.__version__,
                                     "elements": N_ELEMENTS, "devices": stats}, indent=1) + "\n")
    print(f"wrote the pulse responses of {len(stats)} preset devices to {responses}")


if __name__ == "__main__":
    main(sys.argv)
