"""Random deterministic tile scenarios from aihwkit 1.2.0, replayed on rpusim: a fuzzer for
the golden fixtures.

``make_golden.py`` records hand-picked scenarios, one feature at a time. This script draws
combinations nobody picked: a random device model with random parameters (device-to-device
variation included: aihwkit draws it, and the scenario copies every hidden parameter into
rpusim), random deterministic update settings, random noise-free forward and backward IO,
random shapes, learning rates, batches and inputs, interleaved updates, MVMs, decay, drift and
column resets. Every result must agree within the fixtures' tolerance. Two steps, two
environments::

    /tmp/aihwkit-venv/bin/python scripts/fuzz_golden.py record --n 200 --seed 0 --out /tmp/fuzz
    python scripts/fuzz_golden.py replay /tmp/fuzz [-v]

``record`` needs aihwkit (not rpusim), ``replay`` needs rpusim (not aihwkit). The files have the
golden format (tests/golden/README.md), so a failing one can be copied into tests/golden.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


# -- record (aihwkit) -------------------------------------------------------------------------
def _device(rng: np.random.Generator, C):
    """A random pulsed device config without cycle-to-cycle, write or reset noise."""
    quiet = dict(dw_min_std=0.0, reset_std=0.0, diffusion=0.0)
    w_max = float(rng.uniform(0.2, 1.0))
    w_min = -float(rng.uniform(0.2, 1.0))
    common = dict(dw_min=float(rng.choice([0.002, 0.01, 0.03, 0.08])), w_max=w_max, w_min=w_min,
                  up_down=float(rng.choice([0.0, 0.0, 0.2, -0.3])),
                  dw_min_dtod=float(rng.choice([0.0, 0.3])),
                  w_max_dtod=float(rng.choice([0.0, 0.2])),
                  w_min_dtod=float(rng.choice([0.0, 0.2])),
                  up_down_dtod=float(rng.choice([0.0, 0.05])),
                  lifetime=float(rng.choice([0.0, 0.0, 20.0])),
                  lifetime_dtod=float(rng.choice([0.0, 0.1])),
                  reset=float(rng.choice([0.0, 0.05])),
                  reset_dtod=float(rng.choice([0.0, 0.05])),
                  **quiet)
    if rng.random() < 0.2:
        # deterministic drift: no nu_std or w_noise_std (nu_dtod is a hidden parameter)
        common["drift"] = C.DriftParameter(
            nu=float(rng.choice([0.05, 0.1])), nu_dtod=float(rng.choice([0.0, 0.3])),
            t_0=float(rng.choice([1.0, 10.0])), nu_k=float(rng.choice([0.0, 0.02])),
            log_g0=float(rng.choice([0.0, 0.1])), wg_ratio=float(rng.choice([1.0, 2.0])),
            g_offset=float(rng.choice([0.0, 0.5])), w_offset=float(rng.choice([0.0, 0.1])))
    kind = str(rng.choice(["ConstantStep", "LinearStep", "SoftBounds", "ExpStep", "PowStep",
                           "PiecewiseStep", "SoftBoundsReference", "PowStepReference"]))
    if kind == "ConstantStep":
        return C.ConstantStepDevice(**common)
    if kind == "LinearStep":
        reverse_up, reverse_down = bool(rng.random() < 0.2), bool(rng.random() < 0.2)
        return C.LinearStepDevice(
            **common, gamma_up=float(rng.uniform(-0.2, 0.8)),
            gamma_down=float(rng.uniform(-0.2, 0.8)),
            gamma_up_dtod=float(rng.choice([0.0, 0.05])),
            gamma_down_dtod=float(rng.choice([0.0, 0.05])),
            allow_increasing=bool(rng.random() < 0.3),
            mean_bound_reference=bool(rng.random() < 0.7),
            # aihwkit refuses reversal without multiplicative steps (not always: it skips
            # the test for the last of three transfer devices); rpusim refuses it always
            mult_noise=bool(rng.random() < 0.5) or reverse_up or reverse_down,
            reverse_up=reverse_up, reverse_down=reverse_down)
    if kind == "SoftBounds":
        reverse_up, reverse_down = bool(rng.random() < 0.2), bool(rng.random() < 0.2)
        mult_noise = bool(rng.random() < 0.5) or reverse_up or reverse_down
        return C.SoftBoundsDevice(**common, mult_noise=mult_noise,
                                  reverse_up=reverse_up, reverse_down=reverse_down,
                                  reverse_offset=float(rng.choice([0.01, 0.1])))
    if kind == "ExpStep":
        return C.ExpStepDevice(**common, A_up=float(rng.uniform(0.0, 0.5)),
                               A_down=float(rng.uniform(0.0, 0.5)),
                               gamma_up=float(rng.uniform(0.5, 12)),
                               gamma_down=float(rng.uniform(0.5, 12)),
                               a=float(rng.uniform(0.0, 0.5)), b=float(rng.uniform(0.0, 0.5)))
    if kind == "PowStep":
        return C.PowStepDevice(**common, pow_gamma=float(rng.uniform(0.5, 2.5)),
                               pow_gamma_dtod=float(rng.choice([0.0, 0.1])),
                               pow_up_down=float(rng.choice([0.0, 0.2, -0.2])),
                               pow_up_down_dtod=float(rng.choice([0.0, 0.05])))
    if kind == "PiecewiseStep":
        n = int(rng.integers(2, 7))
        return C.PiecewiseStepDevice(
            **common, piecewise_up=[float(v) for v in rng.uniform(0.2, 1.5, n)],
            piecewise_down=[float(v) for v in rng.uniform(0.2, 1.5, n)])
    if kind == "SoftBoundsReference":
        return C.SoftBoundsReferenceDevice(
            **common, slope_up_dtod=float(rng.choice([0.0, 0.05])),
            slope_down_dtod=float(rng.choice([0.0, 0.05])),
            reference_mean=float(rng.choice([0.0, 0.1])),
            reference_std=float(rng.choice([0.0, 0.05])),
            subtract_symmetry_point=bool(rng.random() < 0.5))
    return C.PowStepReferenceDevice(
        **common, pow_gamma=float(rng.uniform(0.5, 2.5)),
        pow_gamma_dtod=float(rng.choice([0.0, 0.1])),
        pow_up_down=float(rng.choice([0.0, 0.2])),
        reference_mean=float(rng.choice([0.0, 0.1])),
        reference_std=float(rng.choice([0.0, 0.05])),
        subtract_symmetry_point=bool(rng.random() < 0.5))


def _update(rng: np.random.Generator, C):
    """Deterministic pulse trains (implicit or mean count) with random management."""
    kind = rng.choice(["DETERMINISTIC_IMPLICIT", "MEAN_COUNT"])
    kw = dict(pulse_type=getattr(C.PulseType, str(kind)),
              desired_bl=int(rng.choice([1, 3, 10, 31, 100])),
              fixed_bl=bool(rng.random() < 0.5),
              update_management=bool(rng.random() < 0.7),
              update_bl_management=bool(rng.random() < 0.6),
              um_grad_scale=float(rng.choice([1.0, 1.0, 0.5, 3.0])))
    if kind == "DETERMINISTIC_IMPLICIT":
        kw.update(x_res_implicit=float(rng.choice([0.0, 0.1, 1 / 7])),
                  d_res_implicit=float(rng.choice([0.0, 0.1, 1 / 5])))
    else:
        kw.update(res=float(rng.choice([0.0, 1 / 16, 0.05])))
    return C.UpdateParameters(**kw)


def _io(rng: np.random.Generator, C):
    """Noise-free analog IO with random quantisation, bounds and management."""
    if rng.random() < 0.15:
        return C.IOParameters(is_perfect=True)
    NM, BM = C.NoiseManagementType, C.BoundManagementType
    nm = rng.choice([NM.ABS_MAX, NM.ABS_MAX, NM.NONE, NM.MAX, NM.ABS_MAX_NP_SUM,
                     NM.AVERAGE_ABS_MAX, NM.CONSTANT])
    bm = rng.choice([BM.ITERATIVE, BM.ITERATIVE, BM.NONE, BM.ITERATIVE_WORST_CASE])
    kw = dict(out_noise=0.0, noise_management=nm, bound_management=bm,
              inp_res=float(rng.choice([1 / 126, 1 / 254, 1 / 30, 0.0])),
              out_res=float(rng.choice([1 / 510, 1 / 62, 0.0])),
              # aihwkit refuses other input bounds under noise management
              inp_bound=1.0 if nm != NM.NONE else float(rng.choice([1.0, 0.5, 2.0])),
              out_bound=float(rng.choice([12.0, 12.0, 2.0, 0.0])),
              nm_thres=float(rng.choice([0.0, 0.0, 0.5])) if nm != NM.CONSTANT else 2.0,
              out_scale=float(rng.choice([1.0, 1.0, 2.0])),
              inp_asymmetry=float(rng.choice([0.0, 0.0, 0.1])),
              out_asymmetry=float(rng.choice([0.0, 0.0, 0.2])))
    if rng.random() < 0.2:
        kw["mv_type"] = rng.choice([C.AnalogMVType.POS_NEG_SEPARATE,
                                    C.AnalogMVType.POS_NEG_SEPARATE_DIGITAL_SUM])
    if rng.random() < 0.15:
        kw["out_nonlinearity"] = float(rng.uniform(0.1, 0.5))
    if rng.random() < 0.1:
        kw.update(ir_drop=1.0, ir_drop_g_ratio=1000.0)
    return C.IOParameters(**kw)


def _compound(rng: np.random.Generator, C):
    """A random compound of random devices; transfers read through random noise-free IO."""
    devices = [_device(rng, C) for _ in range(int(rng.integers(2, 4)))]
    kind = str(rng.choice(["Vector", "OneSided", "Reference", "Transfer", "Transfer",
                           "BufferedTransfer", "ChoppedTransfer", "MixedPrecision"]))
    if kind == "Vector":
        VP = C.VectorUnitCellUpdatePolicy
        policy = rng.choice([VP.ALL, VP.SINGLE_FIXED, VP.SINGLE_SEQUENTIAL])
        gammas = ([] if rng.random() < 0.5
                  else [float(g) for g in rng.uniform(0.2, 1.5, len(devices))])
        return C.UnitCellRPUConfig(device=C.VectorUnitCell(
            unit_cell_devices=devices, update_policy=policy, gamma_vec=gammas,
            first_update_idx=int(rng.integers(0, len(devices)))))
    if kind == "OneSided":
        return C.UnitCellRPUConfig(device=C.OneSidedUnitCell(
            # no refresh: aihwkit writes a dense refresh with the wrong sign (spec compounds
            # §4), and a stochastic one cannot be compared value by value
            unit_cell_devices=devices[:1], refresh_every=0,
            refresh_forward=_io(rng, C), refresh_update=_update(rng, C),
            units_in_mbatch=bool(rng.random() < 0.5)))
    if kind == "Reference":
        return C.UnitCellRPUConfig(device=C.ReferenceUnitCell(unit_cell_devices=devices[:2]))
    if kind == "MixedPrecision":
        return C.DigitalRankUpdateRPUConfig(device=C.MixedPrecisionCompound(
            device=devices[0], stoc_round_x=False, stoc_round_d=False,
            granularity=float(rng.choice([0.0, 0.0, 0.02])),
            transfer_lr=float(rng.choice([1.0, 0.5])),
            n_rows_per_transfer=int(rng.choice([1, 1, 2, -1])),
            transfer_every=int(rng.choice([1, 2])),
            # both bin counts or neither: with exactly one aihwkit writes d into the wrong
            # rows and past its buffer (spec README bug 23)
            **(dict(n_x_bins=5, n_d_bins=7) if rng.random() < 0.3 else {})))
    common = dict(unit_cell_devices=devices[:2] if kind != "Transfer" else devices,
                  transfer_forward=_io(rng, C), transfer_update=_update(rng, C),
                  gamma=float(rng.choice([0.0, 0.3, 0.5])),
                  transfer_every=float(rng.choice([1.0, 2.0, 0.5])),
                  units_in_mbatch=bool(rng.random() < 0.6),
                  n_reads_per_transfer=int(rng.choice([1, 1, 2])),
                  transfer_lr=float(rng.choice([1.0, 0.5, 2.0])),
                  scale_transfer_lr=bool(rng.random() < 0.7),
                  transfer_columns=bool(rng.random() < 0.7))
    if kind == "BufferedTransfer":
        # aihwkit's buffered row transfers write past their buffer on tiles with fewer
        # outputs than inputs (glibc aborts under MALLOC_CHECK_=3 on e.g. a 5x14 tile)
        common["transfer_columns"] = True
    if kind == "ChoppedTransfer":
        common["n_reads_per_transfer"] = 1  # aihwkit (and rpusim) refuse more
    if kind == "Transfer":
        return C.UnitCellRPUConfig(device=C.TransferCompound(
            **common, fast_lr=float(rng.choice([0.0, 0.0, 0.5])),
            with_reset_prob=float(rng.choice([0.0, 0.0, 1.0]))))
    if kind == "BufferedTransfer":
        return C.UnitCellRPUConfig(device=C.BufferedTransferCompound(
            **common, thres_scale=float(rng.choice([1.0, 0.5, 2.0])),
            step=float(rng.choice([1.0, 2.0])), momentum=float(rng.choice([0.0, 0.3])),
            forget_buffer=bool(rng.random() < 0.7)))
    chop = float(rng.choice([0.0, 0.5, 1.0]))
    if chop > 0 or not common["transfer_columns"]:
        # aihwkit de-chops the weight with wrong signs, and in row mode reads its chopper
        # vector out of range (spec README bug 22)
        common["gamma"] = 0.0
    return C.UnitCellRPUConfig(device=C.ChoppedTransferCompound(
        **common, in_chop_prob=chop, in_chop_random=False,
        momentum=float(rng.choice([0.0, 0.2])),
        buffer_granularity=float(rng.choice([1.0, 2.0]))))


def record_one(index: int, seed: int):
    """Scenario ``index`` of the fuzz run ``seed`` (a ``make_golden.Scenario``)."""
    import torch
    from aihwkit.simulator import configs as C

    from make_golden import Scenario

    rng = np.random.default_rng([seed, index])
    torch.manual_seed(int(rng.integers(2**31)))
    out_size, in_size = int(rng.integers(1, 17)), int(rng.integers(1, 25))
    if rng.random() < 0.4:
        config = _compound(rng, C)
    else:
        config = C.SingleRPUConfig(device=_device(rng, C))
    config.update, config.forward, config.backward = _update(rng, C), _io(rng, C), _io(rng, C)
    sc = Scenario("fuzz", f"s{seed}_{index:04d}", out_size, in_size, config,
                  seed=int(rng.integers(2**31)))
    # every hidden parameter as aihwkit drew it (device-to-device variation), diffusion off
    hidden = sc.hidden()
    if "diffusion_rates" in hidden:
        hidden["diffusion_rates"] = np.zeros_like(hidden["diffusion_rates"])
    sc.set_hidden_parameters(hidden, check=False)
    w = float(rng.uniform(0.1, 1.0))
    sc.set_weights(sc.uniform(-w, w, (out_size, in_size)))
    sc.check_hidden()
    for _ in range(int(rng.integers(3, 12))):
        op = rng.random()
        if op < 0.55:
            sc.set_learning_rate(float(rng.choice([0.001, 0.01, 0.05, 0.2, 1.0])))
            sc.random_update(int(rng.integers(1, 9)), x_scale=float(rng.choice([0.3, 1.0])),
                             d_scale=float(rng.choice([0.1, 0.5, 1.0])))
            if rng.random() < 0.4:
                sc.post_update_step()
        elif op < 0.75:
            x = sc.uniform(-1, 1, (int(rng.integers(1, 5)), in_size))
            x *= float(rng.choice([0.2, 1.0, 3.0]))
            sc.forward(x, is_test=bool(rng.random() < 0.3))
        elif op < 0.9:
            d = sc.uniform(-1, 1, (int(rng.integers(1, 5)), out_size))
            sc.backward(d * float(rng.choice([0.2, 1.0, 3.0])))
        elif op < 0.93:
            sc.decay_weights(float(rng.choice([1.0, 0.5])))
        elif op < 0.96:
            sc.drift_weights(float(rng.choice([1.0, 10.0, 100.0])))
        else:
            start = int(rng.integers(0, in_size))
            sc.reset_columns(start, int(rng.integers(1, in_size - start + 1)))
    sc.check_hidden()
    return sc


def record_scenarios(n: int, seed: int, out: pathlib.Path, make, save) -> None:
    """Record scenarios ``make(index, seed)`` for ``index < n`` into ``out`` with ``save(scenario,
    out)``; a scenario whose config aihwkit refuses (``make`` raises) is reported and skipped."""
    sys.path.insert(0, str(HERE))
    out.mkdir(parents=True, exist_ok=True)
    skipped = 0
    for index in range(n):
        try:
            scenario = make(index, seed)
        except Exception as err:  # a config aihwkit refuses: not a scenario
            skipped += 1
            print(f"s{seed}_{index:04d}: aihwkit refused: {type(err).__name__}: {err}"[:200])
            continue
        save(scenario, out)
    print(f"recorded {n - skipped} scenarios into {out} ({skipped} refused by aihwkit)")


# -- replay (rpusim) --------------------------------------------------------------------------
def replay_checks(paths: list, check, describe, noun: str, verbose: bool) -> int:
    """Run ``check(path)`` (a golden test) on each recorded scenario, print each failure (and
    with ``verbose`` the lines ``describe(path)`` returns) and the count; the exit status. The
    replay of ``fuzz_golden_layers.py`` and ``fuzz_golden_rnn.py``."""
    failed = 0
    for path in paths:
        try:
            check(path)
        except Exception as err:
            failed += 1
            text = " ".join(str(err).split())
            print(f"FAIL {path.stem}: {type(err).__name__}: {text}"[:400])
            if verbose:
                for line in describe(path):
                    print(f"     {line}")
    print(f"{len(paths) - failed} of {len(paths)} {noun} scenarios agree")
    return 1 if failed else 0


def replay(out: pathlib.Path, verbose: bool) -> int:
    sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]
    import test_golden

    paths = sorted(out.glob("fuzz__*.npz"))
    failed = 0
    worst_rel = worst_abs = 0.0
    for path in paths:
        try:
            meta, _ = test_golden.load(path)
        except Exception as err:  # e.g. cut short by a crash of the recording process
            print(f"SKIP {path.name}: unreadable ({type(err).__name__})")
            continue
        try:
            cmp = test_golden.replay(path, stop_at_first=True)
            failures = cmp.failures
        except Exception as err:
            failures = [f"{type(err).__name__}: {' '.join(str(err).split())}"]
        if failures:
            failed += 1
            print(f"FAIL {path.stem}: {failures[0]}"[:400])
            if verbose:
                print(f"     config: {meta['rpu_config']}")
        else:
            worst_rel, worst_abs = max(worst_rel, cmp.worst_rel), max(worst_abs, cmp.worst_abs)
    print(f"{len(paths) - failed} of {len(paths)} scenarios agree "
          f"(worst relative error {worst_rel:.3g}, absolute {worst_abs:.3g})")
    return 1 if failed else 0


def command_line(argv: list[str], description: str, make, save, replay_dir) -> int:
    """``record --n N --seed S --out DIR`` (with aihwkit) or ``replay DIR [-v]`` (on rpusim):
    the command line of this fuzzer and of ``fuzz_golden_layers.py``."""
    parser = argparse.ArgumentParser(description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="record scenarios with aihwkit")
    rec.add_argument("--n", type=int, default=100)
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--out", type=pathlib.Path, required=True)
    rep = sub.add_parser("replay", help="replay recorded scenarios on rpusim")
    rep.add_argument("dir", type=pathlib.Path)
    rep.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "record":
        record_scenarios(args.n, args.seed, args.out, make, save)
        return 0
    return replay_dir(args.dir, args.verbose)


def main(argv: list[str]) -> int:
    return command_line(argv, __doc__.split("\n")[0], record_one,
                        lambda scenario, out: scenario.save(out), replay)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
