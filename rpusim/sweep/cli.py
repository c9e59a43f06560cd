"""``python -m rpusim sweep``: the command line of :mod:`rpusim.sweep`."""

from __future__ import annotations

import importlib.util
import sys

from rpusim.sweep.records import SweepMismatch
from rpusim.sweep.spec import EXAMPLE_SPEC, SpecError

__all__ = ["run_cli"]

INSTALL_HINT = 'pip install "rpusim[sweep]"   (or: pip install "dask[distributed]")'


def run_cli(parser, args) -> int:
    """Run the ``sweep`` subcommand; return the exit status (0 ok, 1 some runs failed or were
    lost, 2 bad usage, a refused SPEC or folder, an unreachable scheduler, or dask missing,
    130 interrupted)."""
    if args.example:
        if args.spec is not None:
            parser.error("--example takes no SPEC")
        sys.stdout.write(EXAMPLE_SPEC)
        return 0
    if args.spec is None:
        parser.error("a SPEC file is needed (python -m rpusim sweep --example prints one)")
    if args.workers is not None and args.workers < 0:
        parser.error(f"--workers must be >= 0, got {args.workers}")
    if args.workers is not None and args.scheduler is not None:
        parser.error("--workers sizes the local cluster; with --scheduler the cluster's own "
                     "workers run the sweep")
    if args.workers != 0 and importlib.util.find_spec("distributed") is None:
        print(f"python -m rpusim sweep: Dask is not installed: {INSTALL_HINT}",
              file=sys.stderr)
        return 2
    from rpusim.sweep import run_spec
    try:
        result = run_spec(args.spec, out=args.out, scheduler=args.scheduler,
                          workers=args.workers, retry_failed=args.retry_failed)
    except (SpecError, SweepMismatch, ConnectionError) as err:
        print(f"python -m rpusim sweep: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("python -m rpusim sweep: interrupted; every finished run is recorded, and the "
              "same command resumes the sweep", file=sys.stderr)
        return 130
    return 1 if result.failed or result.lost else 0
