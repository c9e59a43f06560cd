"""One training epoch on scikit-learn's 8x8 digits: rpusim's layers against aihwkit 1.2.0's.

Networks: an MLP 64-32-10 (sigmoid) and a CNN conv 1->8 k3 -> tanh -> conv 8->16 k3 -> tanh ->
linear 256->10; log-softmax and NLL loss; batch 10 over the 1437 training images of a seeded
80/20 split (144 mini-batches, same order every epoch); ``AnalogSGD`` at lr 0.05. Configs:
``SingleRPUConfig(device=ConstantStepDevice())`` and
``UnitCellRPUConfig(device=TransferCompound(unit_cell_devices=[SoftBoundsDevice(),
SoftBoundsDevice()]))`` and ``TorchInferenceRPUConfig()`` (hardware-aware training on aihwkit's
torch-based tile), defaults otherwise (default IO noise and bounds on both sides).

Timing: one warm-up epoch per library (numba compiles, aihwkit allocates), then epochs
alternate rpusim, aihwkit, rpusim, ... on the same two models (training continues); the table
gives the median epoch time of each and the median of the pairwise ratios rpusim/aihwkit.
Run from the aihwkit environment with rpusim (and numba) importable, e.g.::

    PYTHONPATH=.:<dir with numba and llvmlite> /tmp/aihwkit-venv/bin/python scripts/bench_epoch.py

``--profile`` prints the top of a cProfile of one rpusim epoch per workload instead.
``scripts/bench.py --epochs`` runs the same workloads after the tile workloads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

# Both read when their library loads, hence before any import. OpenBLAS: see bench.py's
# docstring. OpenMP: aihwkit's extension and torch load libgomp before rpusim can ask for the
# passive wait policy (rpusim sets it at import, too late once torch is loaded); spinning
# OpenMP workers then take the cores from the main thread: an MLP epoch took 10 s instead of
# 0.9 s (rpusim) and 11 s instead of 0.6 s (aihwkit) in this process on 2 busy cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# rpusim starts numba's threads when it loads, keeping torch's thread count as set below; a
# start from elsewhere (numba.get_num_threads() before rpusim is loaded) would set torch's
# OpenMP threads to numba's count (rpusim/threads.py).
import rpusim  # noqa: E402,F401

LR = 0.05
BATCH = 10


def libraries() -> dict:
    """``{name: (layers namespace, configs namespace)}`` of the libraries that import."""
    import rpusim.configs
    import rpusim.torch
    libs = {"rpusim": (rpusim.torch, rpusim.configs)}
    try:
        import aihwkit.nn
        import aihwkit.optim
        import aihwkit.simulator.configs as ac

        class _Aihwkit:
            AnalogSGD = aihwkit.optim.AnalogSGD

            def __getattr__(self, name):
                return getattr(aihwkit.nn, name)
        libs["aihwkit"] = (_Aihwkit(), ac)
    except Exception:  # aihwkit is optional: any import failure means "not available"
        pass
    return libs


def digits_batches():
    """The training mini-batches: [(images (10, 1, 8, 8), labels)], fixed order."""
    from sklearn.datasets import load_digits
    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target, dtype=torch.long)
    train = torch.from_numpy(np.random.default_rng(0).permutation(len(y))[:int(0.8 * len(y))])
    return [(x[idx], y[idx]) for idx in train.split(BATCH)]


CONFIGS = {
    "ConstantStep SGD": lambda c: c.SingleRPUConfig(device=c.ConstantStepDevice()),
    "TransferCompound": lambda c: c.UnitCellRPUConfig(device=c.TransferCompound(
        unit_cell_devices=[c.SoftBoundsDevice(), c.SoftBoundsDevice()])),
    # hardware-aware training on aihwkit's torch-based tile: torch's optimizer on the weights
    "TorchInference HWA": lambda c: c.TorchInferenceRPUConfig(),
}


def mlp(layers, config):
    return layers.AnalogSequential(
        nn.Flatten(), layers.AnalogLinear(64, 32, rpu_config=config), nn.Sigmoid(),
        layers.AnalogLinear(32, 10, rpu_config=config), nn.LogSoftmax(dim=1))


def cnn(layers, config):
    return layers.AnalogSequential(
        layers.AnalogConv2d(1, 8, kernel_size=3, rpu_config=config), nn.Tanh(),
        layers.AnalogConv2d(8, 16, kernel_size=3, rpu_config=config), nn.Tanh(),
        nn.Flatten(), layers.AnalogLinear(256, 10, rpu_config=config), nn.LogSoftmax(dim=1))


NETWORKS = {"MLP 64-32-10": mlp, "CNN 8-16 k3": cnn}


def epoch_runner(lib, network: str, config: str, batches):
    """A function that trains one epoch of a fresh model (same initial weights every time)."""
    layers, configs = lib
    torch.manual_seed(0)
    model = NETWORKS[network](layers, CONFIGS[config](configs))
    opt = layers.AnalogSGD(model.parameters(), lr=LR)
    opt.regroup_param_groups(model)
    loss_fn = nn.NLLLoss()

    def epoch():
        for x, y in batches:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    return epoch


class _NumpyLinearFunction(torch.autograd.Function):
    """The least a layer glued to torch in Python can do: NumPy products forward and
    backward, the (x, d) pair kept for an SGD update in the optimizer step."""

    @staticmethod
    def forward(ctx, handle, x, layer):
        x_np = x.detach().numpy()
        ctx.layer, ctx.x = layer, x_np
        return torch.from_numpy(x_np @ layer.w.T)

    @staticmethod
    def backward(ctx, grad_y):
        d = grad_y.numpy()
        ctx.layer.pending = (ctx.x, d)
        return None, torch.from_numpy(d @ ctx.layer.w), None


class _NumpyLinear(nn.Module):
    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        bound = 1 / np.sqrt(n_in)
        self.w = np.random.default_rng(0).uniform(-bound, bound, (n_out, n_in)).astype(np.float32)
        self.handle = nn.Parameter(torch.zeros(0))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.pending = None

    def forward(self, x):
        return _NumpyLinearFunction.apply(self.handle, x, self) + self.bias


def floor_runners(batches, network: str = "MLP 64-32-10") -> dict:
    """Epochs of ``network`` whose time no analog simulator glued to torch can undercut. The
    MLP: with torch's ``nn.Linear`` (digital) and with :class:`_NumpyLinear` (the same Python
    round trips per layer as an analog layer, without any analog work). The CNN: with torch's
    own ``nn.Conv2d`` and ``nn.Linear`` (digital, the same shapes and loop)."""
    loss_fn = nn.NLLLoss()
    torch.manual_seed(0)
    if network.startswith("CNN"):
        cnn_model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Tanh(), nn.Conv2d(8, 16, 3), nn.Tanh(),
                                  nn.Flatten(), nn.Linear(256, 10), nn.LogSoftmax(dim=1))
        cnn_opt = torch.optim.SGD(cnn_model.parameters(), lr=LR)

        def cnn_epoch():
            for x, y in batches:
                cnn_opt.zero_grad()
                loss_fn(cnn_model(x), y).backward()
                cnn_opt.step()
        return {"torch nn.Conv2d": cnn_epoch}
    digital = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Sigmoid(), nn.Linear(32, 10),
                            nn.LogSoftmax(dim=1))
    digital_opt = torch.optim.SGD(digital.parameters(), lr=LR)
    glued = [_NumpyLinear(64, 32), _NumpyLinear(32, 10)]
    python = nn.Sequential(nn.Flatten(), glued[0], nn.Sigmoid(), glued[1], nn.LogSoftmax(dim=1))
    python_opt = torch.optim.SGD([p for m in glued for p in (m.bias,)], lr=LR)

    def digital_epoch():
        for x, y in batches:
            digital_opt.zero_grad()
            loss_fn(digital(x), y).backward()
            digital_opt.step()

    def python_epoch():
        for x, y in batches:
            python_opt.zero_grad()
            loss_fn(python(x), y).backward()
            python_opt.step()
            for layer in glued:
                x_in, d = layer.pending
                layer.w -= LR * (d.T @ x_in)
    return {"torch nn.Linear": digital_epoch, "NumPy autograd.Function": python_epoch}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(rounds: int, only: str | None = None) -> list[dict]:
    """A/B-alternated epoch times of every workload; prints one line each."""
    libs = libraries()
    batches = digits_batches()
    rows = []
    for network in NETWORKS:
        for config in CONFIGS:
            name = f"epoch {network}, {config}, batch {BATCH}"
            if only and only not in name:
                continue
            runners = {lib: epoch_runner(libs[lib], network, config, batches) for lib in libs}
            for fn in runners.values():
                fn()  # warm-up
            times = {lib: [] for lib in runners}
            for _ in range(rounds):
                for lib, fn in runners.items():
                    times[lib].append(timed(fn))
            row = {"workload": name, "rpusim_s": statistics.median(times["rpusim"])}
            line = f"{name:52s} rpusim {row['rpusim_s']:7.3f} s"
            if "aihwkit" in times:
                row["aihwkit_s"] = statistics.median(times["aihwkit"])
                row["ratio"] = statistics.median(
                    a / b for a, b in zip(times["rpusim"], times["aihwkit"]))
                line += f"   aihwkit {row['aihwkit_s']:7.3f} s   ratio {row['ratio']:.3f}"
            rows.append(row)
            print(line, flush=True)
            if config == next(iter(CONFIGS)):
                rows += floors(runners.get("aihwkit"), batches, rounds, network)
    return rows


def floors(aihwkit_epoch, batches, rounds: int, network: str) -> list[dict]:
    """The floors of ``network`` (:func:`floor_runners`), A/B-alternated with aihwkit's
    ConstantStep epoch of it when given; their ratios say how far any layer glued to torch in
    Python could go."""
    rows = []
    for name, fn in floor_runners(batches, network).items():
        fn()
        times, ratios = [], []
        for _ in range(rounds):
            t = timed(fn)
            times.append(t)
            if aihwkit_epoch is not None:
                ratios.append(t / timed(aihwkit_epoch))
        row = {"workload": f"epoch {network} floor: {name}",
               "rpusim_s": statistics.median(times)}
        line = f"{row['workload']:52s} time   {row['rpusim_s']:7.3f} s"
        if ratios:
            row["ratio"] = statistics.median(ratios)
            line += f"   / aihwkit ConstantStep {network[:3]} epoch: {row['ratio']:.3f}"
        rows.append(row)
        print(line, flush=True)
    return rows


def profile(only: str | None, top: int = 25) -> None:
    """cProfile of one rpusim epoch per workload (after a warm-up epoch)."""
    import cProfile
    import pstats
    lib = libraries()["rpusim"]
    batches = digits_batches()
    for network in NETWORKS:
        for config in CONFIGS:
            name = f"epoch {network}, {config}"
            if only and only not in name:
                continue
            fn = epoch_runner(lib, network, config, batches)
            fn()
            prof = cProfile.Profile()
            prof.runcall(fn)
            print(f"== {name}")
            pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def settings() -> str:
    from numba import get_num_threads
    return (f"torch threads {torch.get_num_threads()}, numba threads {get_num_threads()}, "
            f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="A/B rounds per workload")
    parser.add_argument("--only", default=None, help="workloads whose name contains this")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch.set_num_threads for both libraries (0: torch's default)")
    parser.add_argument("--profile", action="store_true", help="cProfile one rpusim epoch")
    args = parser.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    print(settings(), flush=True)
    if args.profile:
        profile(args.only)
    else:
        run(args.rounds, args.only)


if __name__ == "__main__":
    main()
