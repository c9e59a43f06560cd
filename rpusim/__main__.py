"""Command line: ``python -m rpusim demo``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rpusim",
        description="rpusim: reference simulator of analog in-memory training hardware.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a small linear regression on analog devices",
                          description="Train an analog tile on generated regression data and "
                                      "print the loss per epoch.")
    demo.add_argument("--device", default="ConstantStepDevice",
                      help="device config class name (default: ConstantStepDevice)")
    demo.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from rpusim.demo import run_demo
        try:
            run_demo(args.device, epochs=args.epochs, seed=args.seed, lr=args.lr)
        except ValueError as err:
            parser.error(str(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
