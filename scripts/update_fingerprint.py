"""A fingerprint of the pulsed update: one SHA-256 per case over weights, hidden parameters and
pulse counters after a few seeded updates (and post-update steps).

    python scripts/update_fingerprint.py [--out FILE] [--compare FILE]

The cases cover every pulsed device, the four pulse kinds, bit trains longer than 64 bits,
write noise, pulse counters, float64 tiles, decay and diffusion, the small-update
composite and the parallel kernels, and the compounds. A change of the update kernels that
is meant to be bit-identical must leave every digest as it was: run this on the old code with
``--out``, then on the new one with ``--compare`` (and with ``NUMBA_NUM_THREADS=1`` and ``=2``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

import rpusim  # noqa: E402
from rpusim import configs as rc  # noqa: E402

DEVICES = ["ConstantStepDevice", "SoftBoundsDevice", "LinearStepDevice", "ExpStepDevice",
           "PowStepDevice", "PiecewiseStepDevice", "SoftBoundsPmaxDevice",
           "SoftBoundsReferenceDevice", "PowStepReferenceDevice", "LookupTableDevice"]
PULSES = ["STOCHASTIC_COMPRESSED", "STOCHASTIC", "DETERMINISTIC_IMPLICIT", "MEAN_COUNT"]
# (out, in, batch): the composite (small), the parallel kernels (large), odd sizes
SHAPES = [(8, 12, 1), (33, 17, 7), (96, 80, 40)]


def _cases():
    for dev in DEVICES:
        for shape in SHAPES:
            yield f"{dev} {shape}", lambda dev=dev: rc.SingleRPUConfig(
                device=getattr(rc, dev)(dw_min_std=0.3)), shape, np.float32, 0.05
    for pulse in PULSES:
        for shape in SHAPES:
            for ubm in (True, False):
                yield (f"ConstantStep {pulse} ubm={ubm} {shape}",
                       lambda pulse=pulse, ubm=ubm: rc.SingleRPUConfig(
                           device=rc.ConstantStepDevice(dw_min_std=0.2, count_pulses=True),
                           update=rc.UpdateParameters(pulse_type=getattr(rc.PulseType, pulse),
                                                      update_bl_management=ubm)),
                       shape, np.float32, 0.05)
    for shape in SHAPES:
        yield (f"long trains BL=100 {shape}", lambda: rc.SingleRPUConfig(
            device=rc.SoftBoundsDevice(count_pulses=True),
            update=rc.UpdateParameters(desired_bl=100, update_bl_management=False,
                                       update_management=False)), shape, np.float32, 0.5)
        yield (f"write noise {shape}", lambda: rc.SingleRPUConfig(
            device=rc.SoftBoundsDevice(write_noise_std=1.0, count_pulses=True)), shape,
               np.float32, 0.05)
        yield (f"float64 {shape}", lambda: rc.SingleRPUConfig(device=rc.SoftBoundsDevice()),
               shape, np.float64, 0.05)
        yield (f"decay+diffusion {shape}", lambda: rc.SingleRPUConfig(
            device=rc.ConstantStepDevice(lifetime=50.0, diffusion=0.01)), shape, np.float32,
               0.05)
        for comp in ("TransferCompound", "ChoppedTransferCompound", "BufferedTransferCompound",
                     "DynamicTransferCompound"):
            yield (f"{comp} {shape}", lambda comp=comp: rc.UnitCellRPUConfig(
                device=getattr(rc, comp)(unit_cell_devices=[rc.SoftBoundsDevice(),
                                                            rc.SoftBoundsDevice()],
                                         transfer_every=1)), shape, np.float32, 0.05)
        yield (f"VectorUnitCell {shape}", lambda: rc.UnitCellRPUConfig(device=rc.VectorUnitCell(
            unit_cell_devices=[rc.ConstantStepDevice(), rc.SoftBoundsDevice()])), shape,
               np.float32, 0.05)
        yield (f"OneSidedUnitCell {shape}", lambda: rc.UnitCellRPUConfig(
            device=rc.OneSidedUnitCell(unit_cell_devices=[rc.SoftBoundsDevice()],
                                       refresh_every=2)), shape, np.float32, 0.05)
        yield (f"MixedPrecision {shape}", lambda: rc.DigitalRankUpdateRPUConfig(
            device=rc.MixedPrecisionCompound(device=rc.SoftBoundsDevice()))
               if hasattr(rc, "DigitalRankUpdateRPUConfig") else None, shape, np.float32, 0.05)


def digest(config, shape, dtype, lr) -> str:
    n_out, n_in, batch = shape
    tile = rpusim.AnalogTile(n_out, n_in, config, seed=3, dtype=dtype)
    gen = np.random.default_rng(11)
    h = hashlib.sha256()
    for _ in range(3):
        x = gen.uniform(-1, 1, (batch, n_in)).astype(dtype)
        d = gen.uniform(-0.5, 0.5, (batch, n_out)).astype(dtype)
        tile.update(x, d, lr=lr)
        tile.post_update_step()
    h.update(np.ascontiguousarray(tile.get_weights()).tobytes())
    for name, value in sorted(tile.get_hidden_parameters().items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(value).tobytes())
    counters = getattr(tile, "get_pulse_counters", None)
    if counters is not None:
        try:
            h.update(np.ascontiguousarray(counters()).tobytes())
        except Exception:  # tiles without counters
            pass
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out")
    parser.add_argument("--compare")
    args = parser.parse_args()
    result = {}
    for name, make, shape, dtype, lr in _cases():
        config = make()
        if config is None:
            continue
        result[name] = digest(config, shape, dtype, lr)
    print(f"{len(result)} cases")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)
    if args.compare:
        with open(args.compare) as fh:
            ref = json.load(fh)
        bad = [k for k in ref if result.get(k) != ref[k]]
        print(f"{len(ref) - len(bad)} of {len(ref)} identical" + (f"; differ: {bad}" if bad
                                                                  else ""))
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
