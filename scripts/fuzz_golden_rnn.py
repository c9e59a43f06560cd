"""Random deterministic recurrent-layer scenarios from aihwkit 1.2.0, replayed on rpusim.torch: a
fuzzer for the recurrent goldens.

``make_golden_rnn.py`` records hand-picked ``AnalogRNN`` networks. This script draws random
ones: the cell (LSTM, LSTM with combined weights, GRU, vanilla), sizes, layers, one or two
directions, sequence length and batch; a random tile config (a device model or a compound of
them without device-to-device variation, random deterministic update settings, random
noise-free IO on both sides, as ``fuzz_golden.py`` draws them; or floating point); a random
mapping (splits over tiles, digital or analog bias); known initial weights and states and a
few ``AnalogSGD`` steps on random data. Every output, final state, gradient and weight must
agree within the recurrent goldens' tolerance. Two steps, two environments::

    /tmp/aihwkit-venv/bin/python scripts/fuzz_golden_rnn.py record --n 100 --out /tmp/rfuzz
    python scripts/fuzz_golden_rnn.py replay /tmp/rfuzz

The files have the recurrent goldens' format (``make_golden_rnn.py``).
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fuzz_golden  # noqa: E402  (imports numpy only; aihwkit inside record_one)
from fuzz_golden_layers import tile_config  # noqa: E402

CELLS = ["lstm", "lstm", "gru", "gru", "vanilla", "lstm_combined"]


def record_one(index: int, seed: int):
    import torch
    from aihwkit.simulator import configs as C

    from make_golden_rnn import run

    rng = np.random.default_rng([seed, index])
    torch.manual_seed(int(rng.integers(2**31)))
    if rng.random() < 0.15:
        config = C.FloatingPointRPUConfig()
    else:
        config = tile_config(rng, C, rng.random() < 0.35)
    mapping = dict(digital_bias=bool(rng.random() < 0.6))
    if rng.random() < 0.3:
        mapping["max_input_size"] = int(rng.integers(2, 8))
    if rng.random() < 0.3:
        mapping["max_output_size"] = int(rng.integers(2, 9))
    config.mapping = C.MappingParameter(**mapping)
    cell = str(rng.choice(CELLS))
    meta, arrays = run(f"fuzz_s{seed}_{index:04d}", cell, config,
                       input_size=int(rng.integers(1, 6)), hidden_size=int(rng.integers(1, 5)),
                       bias=bool(rng.random() < 0.8), num_layers=int(rng.choice([1, 1, 2])),
                       bidir=bool(rng.random() < 0.3), seq_len=int(rng.integers(1, 5)),
                       batch=int(rng.integers(1, 4)), steps=int(rng.integers(1, 4)),
                       lr=float(rng.choice([0.01, 0.05, 0.2])))
    if not all(np.isfinite(v).all() for v in arrays.values()):
        raise ValueError("aihwkit's results are not finite")
    return meta, arrays


def _save(scenario, out: pathlib.Path) -> None:
    meta, arrays = scenario
    np.savez_compressed(out / f"{meta['name']}.npz", meta=np.array(json.dumps(meta)), **arrays)


def replay(out: pathlib.Path, verbose: bool) -> int:
    sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]
    import test_rnn

    def describe(path):
        meta, _ = test_rnn.load(path)
        return [f"cell: {meta['cell']} layers: {meta['num_layers']} bidir: {meta['bidir']} "
                f"mapping: {meta['mapping']}", f"config: {meta['rpu_config']}"]

    return fuzz_golden.replay_checks(sorted(out.glob("fuzz_*.npz")), test_rnn.test_golden_training,
                                     describe, "recurrent", verbose)


def main(argv: list[str]) -> int:
    return fuzz_golden.command_line(argv, __doc__.split("\n")[0], record_one, _save, replay)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
