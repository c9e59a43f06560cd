"""Time per training step of networks from aihwkit's example scripts: rpusim against aihwkit
1.2.0, alternated in one process.

``scripts/bench_epoch.py`` times the digits MLP and CNN of issue 14; this script looks wider,
for workloads where rpusim might fall behind: the MNIST MLP of example 03 (784-256-128-10,
batch 64; its 784 inputs split over two tiles) with ConstantStep, SoftBounds, a Tiki-taka
preset, mixed precision and hardware-aware training; the LeNet-5 of examples 04, 06 and 25
(batch 8 with ``build_config("agad")`` and ``"ttv2"`` on SoftBoundsReference, ConstantStep;
batch 50 with ``InferenceRPUConfig`` and ``TorchInferenceRPUConfig``); the LSTMs of examples 15
and 22; and the VGG-8 of example 11 (batch 16). Inputs are random (no data set is downloaded);
the loss is NLL on log-softmax outputs, ``AnalogSGD`` at lr 0.05.

Each workload trains a few steps per library (warm-up), then five rounds alternate rpusim
and aihwkit, each round as many steps as take aihwkit about 0.3 s; the table gives the median
time per step and the median ratio rpusim / aihwkit. Run from the aihwkit environment with
rpusim importable, e.g.::

    PYTHONPATH=.:<dir with numba> /tmp/aihwkit-venv/bin/python scripts/bench_examples.py [NAME ...]

(``NAME``: workloads whose name contains it). ``--presets`` runs every preset of aihwkit's
instead, each in a digits-size MLP (64-32-10) and CNN (conv 1->8 k3, linear 288->10) at batch
10, 20 steps a round.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

# read when the libraries load (see bench_epoch.py)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import rpusim  # noqa: E402,F401  (starts numba's threads keeping torch's count)

LR = 0.05


def library(name: str):
    """``(layers, configs, presets, AnalogSGD)`` of ``name`` ("rpusim" or "aihwkit")."""
    if name == "rpusim":
        import rpusim.configs as configs
        import rpusim.presets as presets
        import rpusim.torch as layers
        return layers, configs, presets, layers.AnalogSGD
    import aihwkit.nn as layers
    import aihwkit.simulator.configs as configs
    import aihwkit.simulator.presets as presets
    from aihwkit.optim import AnalogSGD
    return layers, configs, presets, AnalogSGD


def mlp(L, cfg):
    """Example 03's MLP."""
    return L.AnalogSequential(
        L.AnalogLinear(784, 256, True, rpu_config=cfg), nn.Sigmoid(),
        L.AnalogLinear(256, 128, True, rpu_config=cfg), nn.Sigmoid(),
        L.AnalogLinear(128, 10, True, rpu_config=cfg), nn.LogSoftmax(dim=1))


def lenet(L, cfg):
    """Examples 04, 06 and 25's LeNet-5."""
    return L.AnalogSequential(
        L.AnalogConv2d(1, 16, 5, rpu_config=cfg), nn.Tanh(), nn.MaxPool2d(2),
        L.AnalogConv2d(16, 32, 5, rpu_config=cfg), nn.Tanh(), nn.MaxPool2d(2), nn.Tanh(),
        nn.Flatten(), L.AnalogLinear(512, 128, rpu_config=cfg), nn.Tanh(),
        L.AnalogLinear(128, 10, rpu_config=cfg), nn.LogSoftmax(dim=1))


def vgg8(L, cfg):
    """Example 11's VGG-8 (CIFAR-10 sized inputs)."""
    c = [48, 96, 144]

    def conv(n_in, n_out):
        return L.AnalogConv2d(n_in, n_out, 3, stride=1, padding=1, rpu_config=cfg)
    return L.AnalogSequential(
        nn.Conv2d(3, c[0], 3, padding=1), nn.ReLU(), conv(c[0], c[0]), nn.BatchNorm2d(c[0]),
        nn.ReLU(), nn.MaxPool2d(2),
        conv(c[0], c[1]), nn.ReLU(), conv(c[1], c[1]), nn.BatchNorm2d(c[1]), nn.ReLU(),
        nn.MaxPool2d(2),
        conv(c[1], c[2]), nn.ReLU(), conv(c[2], c[2]), nn.BatchNorm2d(c[2]), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), L.AnalogLinear(16 * c[2], 8 * c[0], rpu_config=cfg),
        nn.ReLU(), nn.Linear(8 * c[0], 10), nn.LogSoftmax(dim=1))


class RecurrentNet(nn.Module):
    """An ``AnalogRNN`` of ``cell`` and an analog decoder of its last output (examples 15, 22)."""

    def __init__(self, L, cfg, cell: str, n_in: int, hidden: int, n_out: int,
                 num_layers: int = 1):
        super().__init__()
        self.rnn = L.AnalogRNN(getattr(L, cell), n_in, hidden, num_layers=num_layers,
                               rpu_config=cfg)
        self.decoder = L.AnalogLinear(hidden, n_out, rpu_config=cfg)

    def forward(self, x):
        out, _ = self.rnn(x)
        return torch.log_softmax(self.decoder(out[-1]), dim=1)


def config(C, P, name: str):
    """The rpu_config ``name`` of the configs ``C`` and presets ``P`` of one library."""
    if name == "ConstantStep":
        return C.SingleRPUConfig(device=C.ConstantStepDevice())
    if name == "SoftBounds":
        return C.SingleRPUConfig(device=C.SoftBoundsDevice())
    if name in ("agad", "ttv2"):
        return C.build_config(name, device=C.SoftBoundsReferenceDevice(dw_min=0.05))
    if name == "MixedPrecision":
        return C.DigitalRankUpdateRPUConfig(
            device=C.MixedPrecisionCompound(device=C.SoftBoundsDevice()))
    if name == "Inference":
        return C.InferenceRPUConfig()
    if name == "TorchInference":
        return C.TorchInferenceRPUConfig()
    if name == "GokmenVlasov":
        return P.GokmenVlasovPreset()
    if name == "TikiTakaReRamSB":
        return P.TikiTakaReRamSBPreset()
    if name == "RPU_Baseline":  # example 22
        cfg = C.SingleRPUConfig(
            device=C.SoftBoundsDevice(), update=C.UpdateParameters(desired_bl=10),
            mapping=C.MappingParameter(digital_bias=True, max_input_size=0, max_output_size=0))
        cfg.forward.out_res = 1 / (2**9 - 2)
        cfg.forward.inp_res = 1 / (2**7 - 2)
        cfg.forward.out_scale = 2 / 0.6
        cfg.backward = cfg.forward
        return cfg
    raise KeyError(name)


# name: (network, config, input shape, classes); recurrent inputs are (sequence, batch, features)
WORKLOADS = {
    "MLP 784 ConstantStep b64": (mlp, "ConstantStep", (64, 784), 10),
    "MLP 784 SoftBounds b64": (mlp, "SoftBounds", (64, 784), 10),
    "MLP 784 TikiTakaReRamSB b64": (mlp, "TikiTakaReRamSB", (64, 784), 10),
    "MLP 784 MixedPrecision b64": (mlp, "MixedPrecision", (64, 784), 10),
    "MLP 784 Inference b64": (mlp, "Inference", (64, 784), 10),
    "LeNet agad b8": (lenet, "agad", (8, 1, 28, 28), 10),
    "LeNet ttv2 b8": (lenet, "ttv2", (8, 1, 28, 28), 10),
    "LeNet ConstantStep b8": (lenet, "ConstantStep", (8, 1, 28, 28), 10),
    "LeNet Inference b50": (lenet, "Inference", (50, 1, 28, 28), 10),
    "LeNet TorchInference b50": (lenet, "TorchInference", (50, 1, 28, 28), 10),
    "LSTM h50 GokmenVlasov b5 s50": (
        lambda L, c: RecurrentNet(L, c, "AnalogLSTMCell", 1, 50, 10), "GokmenVlasov",
        (50, 5, 1), 10),
    "LSTM 2x64 RPU_Baseline b8 s30": (
        lambda L, c: RecurrentNet(L, c, "AnalogLSTMCellCombinedWeight", 20, 64, 20, 2),
        "RPU_Baseline", (30, 8, 20), 20),
    "VGG-8 GokmenVlasov b16": (vgg8, "GokmenVlasov", (16, 3, 32, 32), 10),
}


def trainer(lib: str, workload: str):
    """A function ``steps(n)`` training ``n`` steps of a fresh model of ``lib``."""
    L, C, P, sgd = library(lib)
    build, cfg, shape, classes = WORKLOADS[workload]
    torch.manual_seed(0)
    model = build(L, config(C, P, cfg))
    batch = shape[1] if isinstance(model, RecurrentNet) else shape[0]
    return _steps(model, sgd, shape, batch, classes)


def _steps(model, sgd, shape: tuple, batch: int, classes: int):
    """``steps(n)``: ``n`` training steps of ``model`` with the library's ``AnalogSGD`` on
    four fixed random batches of inputs ``shape`` and ``batch`` labels, NLL loss."""
    opt = sgd(model.parameters(), lr=LR)
    opt.regroup_param_groups(model)
    gen = torch.Generator().manual_seed(1)
    data = [(torch.rand(shape, generator=gen), torch.randint(0, classes, (batch,), generator=gen))
            for _ in range(4)]
    loss_fn = nn.NLLLoss()

    def steps(n: int) -> None:
        for i in range(n):
            x, y = data[i % len(data)]
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    return steps


def preset_trainer(lib: str, workload: str):
    """``trainer`` of the ``--presets`` workloads: ``"<preset name> mlp"`` (64-32-10) or
    ``"<preset name> cnn"`` (conv 1->8 k3, linear 288->10) on digits-sized inputs, batch 10."""
    L, _, P, sgd = library(lib)
    name, kind = workload.rsplit(" ", 1)
    cfg = getattr(P, name)()
    torch.manual_seed(0)
    if kind == "cnn":
        model = L.AnalogSequential(
            L.AnalogConv2d(1, 8, 3, rpu_config=cfg), nn.Tanh(), nn.Flatten(),
            L.AnalogLinear(8 * 36, 10, rpu_config=cfg), nn.LogSoftmax(dim=1))
        shape = (10, 1, 8, 8)
    else:
        model = L.AnalogSequential(
            L.AnalogLinear(64, 32, rpu_config=cfg), nn.Sigmoid(),
            L.AnalogLinear(32, 10, rpu_config=cfg), nn.LogSoftmax(dim=1))
        shape = (10, 64)
    return _steps(model, sgd, shape, 10, 10)


def preset_workloads() -> list[str]:
    """Every preset of aihwkit's (rpusim's names), as an MLP and as a CNN workload."""
    import rpusim.presets as presets
    names = sorted(n for n in dir(presets)
                   if n.endswith("Preset") and n != "FloatingPointPreset")
    return [f"{name} {kind}" for name in names for kind in ("mlp", "cnn")]


def run(only: list[str], presets: bool = False) -> None:
    workloads, make = ((preset_workloads(), preset_trainer) if presets
                       else (list(WORKLOADS), trainer))
    for workload in workloads:
        if only and not any(o in workload for o in only):
            continue
        runners = {lib: make(lib, workload) for lib in ("rpusim", "aihwkit")}
        for steps in runners.values():
            steps(2)
        start = time.perf_counter()
        runners["aihwkit"](2)
        n = 20 if presets else max(1, min(50, int(0.3 / ((time.perf_counter() - start) / 2))))
        times = {lib: [] for lib in runners}
        for _ in range(5):
            for lib, steps in runners.items():
                start = time.perf_counter()
                steps(n)
                times[lib].append((time.perf_counter() - start) / n)
        ratio = statistics.median(a / b for a, b in zip(times["rpusim"], times["aihwkit"]))
        print(f"{workload:38s} rpusim {statistics.median(times['rpusim']) * 1e3:8.2f} ms   "
              f"aihwkit {statistics.median(times['aihwkit']) * 1e3:8.2f} ms   "
              f"ratio {ratio:.3f}", flush=True)


def main() -> None:
    torch.set_num_threads(1)
    from numba import get_num_threads
    print(f"torch threads 1, numba threads {get_num_threads()}, "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}", flush=True)
    args = sys.argv[1:]
    presets = "--presets" in args
    run([a for a in args if a != "--presets"], presets)


if __name__ == "__main__":
    main()
