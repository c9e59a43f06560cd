"""Command line: ``python -m rpusim demo``, ``response DEVICE`` and ``drift``.

Run ``python -m rpusim --help`` (or ``demo --help``, ``response --help``) for the options.
"""

from __future__ import annotations

import argparse
import sys

EPILOG_DEMO = """\
what it shows:
  A two-layer analog network (8-16-4, tanh hidden layer; each layer one tile) learns a
  random teacher network from 512 samples whose labels carry Gaussian noise (std 0.5).
  Plain analog SGD on devices with unbalanced up/down steps (the default
  SoftBoundsDevice) is biased by the noisy gradient toward the devices' symmetry point
  and stalls; Tiki-taka (TransferCompound: gradient pulses on a fast device A, its mean
  transferred column by column into the weight device C) learns the teacher. Both use
  aihwkit's default (noisy, quantised) forward/backward IO. The full configs are printed.

output:
  progress per epoch, a results table (test MSE against noise-free targets, train MSE
  against the noisy labels, time), OUT/loss_curves.png (needs matplotlib:
  pip install "rpusim[plot]") and OUT/loss_curves.csv.

examples:
  python -m rpusim demo
  python -m rpusim demo --device ConstantStepDevice --epochs 10 --out /tmp/cs
  python -m rpusim demo --algorithm tiki-taka --device-field dw_min=0.002
"""

EPILOG_RESPONSE = """\
DEVICE is a device config class name of rpusim.configs (e.g. SoftBoundsDevice,
ExpStepDevice, PiecewiseStepDevice) or a preset device of rpusim.presets (e.g.
ReRamSBPresetDevice, EcRamPresetDevice, PCMPresetDevice, the PCM pair PCMPresetUnitCell);
its fields start at aihwkit's defaults (a preset's own values) and can be set with
--FIELD VALUE pairs after the device name, e.g.

  python -m rpusim response SoftBoundsDevice --dw_min 0.01 --w_max_dtod 0.1 --pulses 200
  python -m rpusim response LinearStepDevice --gamma_up 0.6 --dw_min_std 0 --out ls.png
  python -m rpusim response PiecewiseStepDevice --piecewise_up 1.6,1.2,0.8,0.5,0.2
  python -m rpusim response ReRamESPresetDevice --pulses 2000

Values are parsed to the field's type: numbers, true/false, comma-separated lists, enum
names. The PNG shows the weight of several devices of one tile over N up then N down
pulses (device-to-device spread, cycle-to-cycle noise) and each pulse's weight change
against the weight before it. Needs matplotlib: pip install "rpusim[plot]".
"""

EPILOG_SWEEP = """\
examples:
  python -m rpusim sweep --example > example.toml
  python -m rpusim sweep example.toml --out example_sweep
  dask scheduler --host HOST &            # on one machine; dask worker tcp://HOST:8786 on others
  python -m rpusim sweep example.toml --scheduler tcp://HOST:8786 --out example_sweep

Rerunning with the same SPEC and DIR skips finished runs; a different SPEC is refused.
Exit status: 0 all runs ok, 1 some runs failed (recorded with their errors) or were lost,
2 a refused SPEC or folder or an unreachable scheduler, 130 interrupted (rerun to resume).
Needs dask[distributed]: pip install "rpusim[sweep]".
"""


EPILOG_DRIFT = """\
what it shows:
  A 64-H-10 network (tanh hidden layer, digital biases, two analog tiles with an
  InferenceRPUConfig: PCM-like noise model, global drift compensation, noisy forward IO)
  is trained hardware-aware on scikit-learn's bundled digits: additive weight noise drawn
  after every mini-batch, Gaussian weight clipping, channelwise remapping. The trained
  tiles are then programmed N times (programming noise) and read from 1 s to 10 years
  after programming (PCM drift and read noise), with and without drift compensation.

output:
  progress, a table (mean +- std over the programmings), OUT/drift_accuracy.png (needs
  matplotlib: pip install "rpusim[plot]") and OUT/drift_accuracy.csv. Needs scikit-learn
  for the data: pip install "rpusim[digits]".

examples:
  python -m rpusim drift
  python -m rpusim drift --programs 10 --epochs 30 --out /tmp/drift
  python -m rpusim drift --weight-noise 0 --out /tmp/no_hwa
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rpusim",
        description="rpusim: reference simulator of analog in-memory training hardware "
                    "(resistive crossbar tiles, the physics of IBM aihwkit 1.2.0).")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{demo,response,drift,sweep}")
    demo = sub.add_parser(
        "demo", help="train with analog SGD and Tiki-taka, print a table, plot the losses",
        description="Train a small analog network on built-in generated data with plain "
                    "analog SGD and with Tiki-taka on the same devices.",
        epilog=EPILOG_DEMO, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--device", default="SoftBoundsDevice", metavar="NAME",
                      help="device config class name (default: SoftBoundsDevice)")
    demo.add_argument("--device-field", action="append", default=[], metavar="FIELD=VALUE",
                      help="set a device field, e.g. dw_min=0.002 (repeatable)")
    demo.add_argument("--algorithm", choices=["both", "sgd", "tiki-taka"], default="both",
                      help="what to train (default: both)")
    demo.add_argument("--epochs", type=int, default=20, help="training epochs (default: 20)")
    demo.add_argument("--seed", type=int, default=0, help="seed of data and tiles (default: 0)")
    demo.add_argument("--lr", type=float, default=0.1, help="learning rate (default: 0.1)")
    demo.add_argument("--batch-size", type=int, default=10,
                      help="mini-batch size (default: 10)")
    demo.add_argument("--hidden", type=int, default=16,
                      help="hidden units of the trained network (default: 16)")
    demo.add_argument("--out", default="rpusim_demo", metavar="FOLDER",
                      help="output folder for loss_curves.png/.csv (default: ./rpusim_demo)")

    response = sub.add_parser(
        "response", help="plot a device model's pulse response and step size vs weight",
        usage="python -m rpusim response DEVICE [--FIELD VALUE ...] [--pulses N] "
              "[--devices K] [--seed S] [--out FILE.png] [--import MODULE_OR_FILE]",
        description="Pulse response of a device model: N up then N down pulses on several "
                    "devices of one tile, and the step size vs weight, to a PNG.",
        epilog=EPILOG_RESPONSE, formatter_class=argparse.RawDescriptionHelpFormatter)
    response.add_argument("device", metavar="DEVICE", help="device config class name")
    response.add_argument("--pulses", type=int, default=None,
                          help="up pulses, then as many down (default: enough to cross the "
                               "range, 1.5 (w_max - w_min) / dw_min, at most 5000)")
    response.add_argument("--devices", type=int, default=6,
                          help="devices of the tile to draw (default: 6)")
    response.add_argument("--seed", type=int, default=0, help="tile seed (default: 0)")
    response.add_argument("--out", default=None, metavar="FILE.png",
                          help="PNG to write (default: response_DEVICE.png)")
    response.add_argument("--import", dest="imports", action="append", default=[],
                          metavar="MODULE_OR_FILE",
                          help="import a module (or run a .py file) first, e.g. one that "
                               "defines a custom device model; may be repeated")
    drift = sub.add_parser(
        "drift", help="hardware-aware training on digits, then accuracy under PCM drift",
        description="Train a small network hardware-aware on the digits data, program it onto "
                    "PCM-like devices and plot the test accuracy from 1 s to 10 years after "
                    "programming, with and without drift compensation.",
        epilog=EPILOG_DRIFT, formatter_class=argparse.RawDescriptionHelpFormatter)
    drift.add_argument("--epochs", type=int, default=15, help="training epochs (default: 15)")
    drift.add_argument("--programs", type=int, default=5, metavar="N",
                       help="independent programmings (default: 5)")
    drift.add_argument("--hidden", type=int, default=32, help="hidden units (default: 32)")
    drift.add_argument("--lr", type=float, default=0.2, help="learning rate (default: 0.2)")
    drift.add_argument("--batch-size", type=int, default=16,
                       help="mini-batch size (default: 16)")
    drift.add_argument("--weight-noise", type=float, default=0.08, metavar="STD",
                       help="std of the additive weight noise of the training, relative to "
                            "max|W| (default: 0.08; 0: no weight noise)")
    drift.add_argument("--seed", type=int, default=0, help="seed of everything (default: 0)")
    drift.add_argument("--out", default="rpusim_drift", metavar="FOLDER",
                       help="output folder for drift_accuracy.png/.csv (default: "
                            "./rpusim_drift)")
    sweep = sub.add_parser(
        "sweep", help="run an experiment over a grid of config fields and seeds on Dask",
        usage="python -m rpusim sweep SPEC [--scheduler ADDRESS] [--out DIR] [--workers N] "
              "[--retry-failed] | --example",
        description="Run a TOML SPEC's experiment at every grid point and seed on a Dask "
                    "cluster (a local one by default), one record per finished run in DIR "
                    "(a rerun skips them), then DIR/results.csv and DIR/sweep.png.",
        epilog=EPILOG_SWEEP, formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("spec", nargs="?", metavar="SPEC", help="the sweep's TOML file")
    sweep.add_argument("--example", action="store_true",
                       help="print a runnable example SPEC and exit")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="a running Dask scheduler, e.g. tcp://HOST:8786 (default: a new "
                            "local cluster)")
    sweep.add_argument("--out", metavar="DIR",
                       help="results folder (default: ./sweep_<SPEC name>)")
    sweep.add_argument("--workers", type=int, metavar="N",
                       help="worker processes of the local cluster (default: one per core; "
                            "0: run in this process without Dask)")
    sweep.add_argument("--retry-failed", action="store_true",
                       help="recompute runs recorded with an error")
    parser.subparsers = {"demo": demo, "response": response, "drift": drift,
                         "sweep": sweep}
    return parser


def _field_pairs(parser, words: list[str]) -> dict[str, str]:
    """``["--dw_min", "0.01", ...]`` -> ``{"dw_min": "0.01", ...}``."""
    fields = {}
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--") or len(word) == 2:
            parser.error(f"expected --FIELD VALUE, got {word!r}")
        name, eq, value = word[2:].partition("=")
        if not eq:
            if i + 1 >= len(words):
                parser.error(f"--{name} needs a value")
            i += 1
            value = words[i]
        fields[name.replace("-", "_")] = value
        i += 1
    return fields


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 bad usage or missing matplotlib)."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    sub = parser.subparsers[args.command]  # its usage line comes with its errors
    if args.command == "demo":
        if extra:
            sub.error(f"unrecognized arguments: {' '.join(extra)}")
        return _demo(sub, args)
    if args.command == "drift":
        if extra:
            sub.error(f"unrecognized arguments: {' '.join(extra)}")
        return _drift(sub, args)
    if args.command == "sweep":
        if extra:
            sub.error(f"unrecognized arguments: {' '.join(extra)}")
        from rpusim.sweep.cli import run_cli
        return run_cli(sub, args)
    return _response(sub, args, _field_pairs(sub, extra))


def _demo(parser, args) -> int:
    from rpusim.demo import run_demo
    fields = {}
    for item in args.device_field:
        name, eq, value = item.partition("=")
        if not eq or not name:
            parser.error(f"--device-field expects FIELD=VALUE, got {item!r}")
        fields[name] = value
    try:
        run_demo(args.device, algorithm=args.algorithm, epochs=args.epochs, seed=args.seed,
                 out=args.out, lr=args.lr, batch_size=args.batch_size, hidden=args.hidden,
                 device_fields=fields)
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    return 0


def _drift(parser, args) -> int:
    from rpusim.drift_demo import run_drift
    try:
        run_drift(epochs=args.epochs, n_programs=args.programs, hidden=args.hidden,
                  lr=args.lr, batch_size=args.batch_size, std_dev=args.weight_noise,
                  seed=args.seed, out=args.out)
    except ImportError as err:
        print(f"python -m rpusim drift: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    return 0


def _import(name: str) -> None:
    """Import a module by name, or a Python file by path (its device models register)."""
    import importlib
    import importlib.util
    import pathlib
    path = pathlib.Path(name)
    if name.endswith(".py") or path.is_file():
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {name}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    else:
        importlib.import_module(name)


def _response(parser, args, fields: dict[str, str]) -> int:
    import numpy as np

    from rpusim.demo import default_pulses, describe_config, make_device, pulse_response
    from rpusim.plotting import MatplotlibMissing, plot_pulse_response, require_matplotlib
    for name in args.imports:
        try:
            _import(name)
        except Exception as err:  # any failure of user code: report it as a usage error
            parser.error(f"--import {name}: {type(err).__name__}: {err}")
    if (args.pulses is not None and args.pulses < 1) or args.devices < 1:
        parser.error(f"--pulses and --devices must be >= 1, got {args.pulses} and "
                     f"{args.devices}")
    try:
        device = make_device(args.device, fields)
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    if type(device).__name__ in ("IdealDevice", "FloatingPointDevice"):
        parser.error(f"{args.device} updates in floating point: it has no pulse response")
    if args.pulses is None:
        args.pulses = default_pulses(device)
    try:
        require_matplotlib()  # before the simulation: fail fast
    except MatplotlibMissing as err:
        print(f"python -m rpusim response: {err}", file=sys.stderr)
        return 2
    try:
        trace = pulse_response(device, args.pulses, args.devices, args.seed)
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    out = args.out or f"response_{args.device}.png"
    title = (f"{describe_config(device)}: {args.pulses} up, then {args.pulses} down pulses, "
             f"seed {args.seed}")
    path = plot_pulse_response(trace, args.pulses, out, title=title)
    first_up = trace[1] - trace[0]
    print(f"{describe_config(device)}: {args.pulses} up then {args.pulses} down pulses on "
          f"{args.devices} devices of one tile")
    print(f"  start (lower bounds) {np.round(trace[0], 4)}")
    print(f"  after the up pulses  {np.round(trace[args.pulses], 4)}")
    print(f"  first up step        {np.round(first_up, 5)}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
