"""What ``python -m rpusim drift`` runs: hardware-aware training, programming, drift.

A two-layer network (64-H-10, tanh hidden layer, digital biases; each weight matrix one
:class:`~rpusim.AnalogTile` with an :class:`~rpusim.configs.InferenceRPUConfig`) is trained on
scikit-learn's bundled digits (8x8 images, no download) with plain NumPy around the tile API:
``forward``, ``backward``, ``update``, then ``post_update_step`` (weight clipping, remapping and
the noise the weight modifier injects). The trained tiles are then programmed onto PCM-like
devices (``program_weights``, programming noise) and read ``t_inference`` seconds later
(``drift_weights``: conductance drift and read noise), from 1 second to 10 years, with and
without global drift compensation, over several independent programmings.

Without compensation the test outputs are read as a tile with ``drift_compensation=None``
reads them: the compensated test-mode outputs divided by the tile's alpha (the only place
compensation acts), so both curves read the same drifted conductances.
"""

from __future__ import annotations

import copy
import sys
import time
from typing import Callable, NamedTuple, TextIO

import numpy as np

from rpusim.configs import (InferenceRPUConfig, WeightClipParameter, WeightClipType,
                            WeightModifierParameter, WeightModifierType, WeightRemapParameter,
                            WeightRemapType)
from rpusim.tile import AnalogTile

__all__ = ["TIMES", "DigitsData", "load_digits_data", "hwa_config", "AnalogMLP",
           "train_hwa", "drift_accuracy", "run_drift"]

_YEAR = 365.25 * 86400.0
#: The inference times of the study (seconds after programming) and their labels.
TIMES = {"1 s": 1.0, "1 min": 60.0, "1 h": 3600.0, "1 d": 86400.0, "1 week": 7 * 86400.0,
         "1 month": _YEAR / 12, "1 year": _YEAR, "10 years": 10 * _YEAR}


class DigitsData(NamedTuple):
    """scikit-learn's digits, pixels scaled to [0, 1], split into train and test sets."""

    x: np.ndarray       #: (n_train, 64) training images
    y: np.ndarray       #: (n_train,) training labels 0..9
    x_test: np.ndarray  #: (n_test, 64) test images
    y_test: np.ndarray  #: (n_test,) test labels


def load_digits_data(test_fraction: float = 0.25, seed: int = 0) -> DigitsData:
    """Load scikit-learn's bundled digits (1797 images, no download) and split them.

    Raises
    ------
    ImportError
        scikit-learn is not installed (``pip install "rpusim[digits]"``).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError('the digits data set needs scikit-learn: pip install '
                          '"rpusim[digits]"') from err
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    digits = load_digits()
    x = digits.data / 16.0
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    return DigitsData(x[train], digits.target[train], x[test], digits.target[test])


def hwa_config(std_dev: float = 0.08) -> InferenceRPUConfig:
    """The study's config: aihwkit's inference defaults (PCM-like noise model, global drift
    compensation, noisy 7-bit DAC / 9-bit ADC forward) plus hardware-aware training:
    additive Gaussian weight noise ``std_dev * max|W|`` per mini-batch, Gaussian clipping at
    2.5 sigma and channelwise remapping into the conductance range."""
    return InferenceRPUConfig(
        modifier=WeightModifierParameter(type=WeightModifierType.ADD_NORMAL, std_dev=std_dev),
        clip=WeightClipParameter(type=WeightClipType.LAYER_GAUSSIAN, sigma=2.5),
        remap=WeightRemapParameter(type=WeightRemapType.CHANNELWISE_SYMMETRIC))


class AnalogMLP:
    """``softmax(W2 tanh(W1 x + b1) + b2)``: W1 and W2 analog tiles, b1 and b2 digital.

    Parameters
    ----------
    rpu_config : InferenceRPUConfig
    hidden : int
        Hidden units.
    seed : int
        Seed of both tiles (and their initial weights).
    """

    def __init__(self, rpu_config, hidden: int = 32, n_in: int = 64, n_out: int = 10,
                 seed: int = 0):
        self.tiles = [AnalogTile(hidden, n_in, rpu_config, seed=seed),
                      AnalogTile(n_out, hidden, rpu_config, seed=seed + 1)]
        init = np.random.default_rng(seed)
        for tile in self.tiles:
            # Xavier-uniform start: the tiles' default [-0.1, 0.1] is small for 64 inputs
            bound = np.sqrt(6.0 / (tile.in_size + tile.out_size))
            tile.set_weights(init.uniform(-bound, bound, (tile.out_size, tile.in_size)))
        self.biases = [np.zeros(hidden), np.zeros(n_out)]

    def logits(self, x: np.ndarray, is_test: bool = False, compensated: bool = True):
        """Output logits and the hidden activations (test mode: programmed/drifted tiles)."""
        h = np.tanh(self._layer(0, x, is_test, compensated) + self.biases[0])
        return self._layer(1, h, is_test, compensated) + self.biases[1], h

    def _layer(self, k: int, x: np.ndarray, is_test: bool, compensated: bool) -> np.ndarray:
        tile = self.tiles[k]
        y = tile.forward(x, is_test=is_test).astype(np.float64)
        if is_test and not compensated and tile.rpu_config.drift_compensation is not None:
            y = y / tile.get_drift_compensation_alpha()
        return y

    def train_batch(self, x: np.ndarray, labels: np.ndarray, lr: float) -> float:
        """One SGD step on the cross-entropy; returns the batch loss."""
        logits, h = self.logits(x)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        n = len(x)
        loss = -np.log(p[np.arange(n), labels] + 1e-12).mean()
        d_out = p
        d_out[np.arange(n), labels] -= 1.0
        d_out /= n
        d_hidden = self.tiles[1].backward(d_out) * (1.0 - h ** 2)
        self.tiles[1].update(h, d_out, lr=lr)
        self.tiles[0].update(x, d_hidden, lr=lr)
        self.biases[1] -= lr * d_out.sum(axis=0)
        self.biases[0] -= lr * d_hidden.sum(axis=0)
        for tile in self.tiles:
            tile.post_update_step()  # clip, remap, new modifier draw: what AnalogSGD does
        return float(loss)

    def accuracy(self, x: np.ndarray, labels: np.ndarray, is_test: bool = True,
                 compensated: bool = True) -> float:
        return float((self.logits(x, is_test, compensated)[0].argmax(axis=1) == labels).mean())

    def program(self) -> None:
        for tile in self.tiles:
            tile.program_weights()

    def drift(self, t_inference: float) -> None:
        for tile in self.tiles:
            tile.drift_weights(t_inference)


def train_hwa(model: AnalogMLP, data: DigitsData, *, epochs: int = 15, lr: float = 0.2,
              batch_size: int = 16, seed: int = 0,
              progress: Callable[[int, float, float], None] | None = None) -> list[float]:
    """Train hardware-aware; return the test accuracy (test mode, before programming) per
    epoch. ``progress(epoch, loss, accuracy)`` is called after each epoch."""
    order_rng = np.random.default_rng(seed)
    history = []
    for epoch in range(1, epochs + 1):
        order = order_rng.permutation(len(data.x))
        losses = [model.train_batch(data.x[idx], data.y[idx], lr)
                  for idx in np.array_split(order, max(1, len(order) // batch_size))]
        history.append(model.accuracy(data.x_test, data.y_test))
        if progress is not None:
            progress(epoch, float(np.mean(losses)), history[-1])
    return history


def drift_accuracy(model: AnalogMLP, data: DigitsData, times: dict[str, float], n_programs: int,
                   progress: Callable[[int, np.ndarray, np.ndarray], None] | None = None
                   ) -> dict[str, np.ndarray]:
    """Test accuracy after each of ``n_programs`` independent programmings, at each time.

    Returns ``{"compensated": (n_programs, n_times), "uncompensated": ...}``. The model's
    tiles stay programmed and drifted to the last time afterwards.
    """
    shape = (n_programs, len(times))
    out = {"compensated": np.empty(shape), "uncompensated": np.empty(shape)}
    for r in range(n_programs):
        model.program()
        for k, t in enumerate(times.values()):
            model.drift(t)
            out["compensated"][r, k] = model.accuracy(data.x_test, data.y_test)
            out["uncompensated"][r, k] = model.accuracy(data.x_test, data.y_test,
                                                        compensated=False)
        if progress is not None:
            progress(r + 1, out["compensated"][r], out["uncompensated"][r])
    return out


def run_drift(*, epochs: int = 15, n_programs: int = 5, hidden: int = 32, lr: float = 0.2,
              batch_size: int = 16, std_dev: float = 0.08, seed: int = 0,
              out: str | None = "rpusim_drift", stream: TextIO | None = None) -> dict:
    """Train hardware-aware on digits, program, drift; print a table, write the plot and CSV.

    Parameters
    ----------
    epochs, hidden, lr, batch_size : training settings.
    n_programs : int
        Independent programmings of the trained weights (mean and spread).
    std_dev : float
        Weight noise of the hardware-aware training (``WeightModifierParameter.std_dev``).
    seed : int
        Seed of the data split, the tiles and the batch order.
    out : str or None
        Folder for ``drift_accuracy.png`` and ``.csv`` (None: write nothing).
    stream : text file, optional
        Where progress and tables go (default ``sys.stdout``).

    Returns
    -------
    dict
        ``times``, ``history`` (test accuracy per epoch), ``accuracy`` (from
        :func:`drift_accuracy`), ``config`` and the written ``files``.
    """
    for name, value in (("epochs", epochs), ("n_programs", n_programs), ("hidden", hidden),
                        ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be finite and > 0, got {lr!r}")
    stream = sys.stdout if stream is None else stream

    def say(text=""):
        print(text, file=stream, flush=True)

    data = load_digits_data(seed=seed)
    config = hwa_config(std_dev)
    say(f"config of both tiles: {config}")
    say(f"digits: {len(data.x)} training and {len(data.x_test)} test images; network "
        f"64-{hidden}-10 (tanh), two analog tiles, digital biases")
    model = AnalogMLP(copy.deepcopy(config), hidden=hidden, seed=seed)
    began = time.perf_counter()
    history = train_hwa(model, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                        progress=lambda e, loss, acc: say(
                            f"epoch {e:3d}/{epochs}  loss {loss:.4f}  test accuracy {acc:.4f}  "
                            f"({time.perf_counter() - began:.1f}s)"))
    say(f"programming {n_programs} times, reading at {', '.join(TIMES)}")
    accuracy = drift_accuracy(model, data, TIMES, n_programs, progress=lambda r, c, u: say(
        f"programming {r}/{n_programs}: accuracy at 1 s {c[0]:.4f}, at 10 years "
        f"{c[-1]:.4f} compensated / {u[-1]:.4f} uncompensated"))
    say()
    say(_table(history[-1], accuracy))
    files = []
    if out is not None:
        title = (f"64-{hidden}-10 digits MLP, hardware-aware training ({epochs} epochs, "
                 f"weight noise {std_dev:g}); {n_programs} programmings")
        files = _write(out, accuracy, history[-1], title)
        for path in files:
            say(f"wrote {path}")
    return {"times": dict(TIMES), "history": history, "accuracy": accuracy, "config": config,
            "files": files}


def _table(trained: float, accuracy: dict[str, np.ndarray]) -> str:
    n = accuracy["compensated"].shape[0]
    lines = [f"test accuracy after programming, mean +- std over {n} programmings "
             f"(before programming: {trained:.4f})",
             f"  {'t_inference':>12}  {'compensated':>17}  {'uncompensated':>17}"]
    for k, label in enumerate(TIMES):
        c, u = accuracy["compensated"][:, k], accuracy["uncompensated"][:, k]
        lines.append(f"  {label:>12}  {c.mean():8.4f} +- {c.std():.4f}  "
                     f"{u.mean():8.4f} +- {u.std():.4f}")
    return "\n".join(lines)


def _write(out: str, accuracy: dict[str, np.ndarray], trained: float, title: str) -> list:
    import pathlib

    from rpusim.plotting import MatplotlibMissing
    folder = pathlib.Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "drift_accuracy.csv"
    rows = ["t_inference_s,label,compensated_mean,compensated_std,uncompensated_mean,"
            "uncompensated_std"]
    for k, (label, t) in enumerate(TIMES.items()):
        c, u = accuracy["compensated"][:, k], accuracy["uncompensated"][:, k]
        rows.append(f"{t:.6g},{label},{c.mean():.6f},{c.std():.6f},{u.mean():.6f},"
                    f"{u.std():.6f}")
    csv.write_text("\n".join(rows) + "\n")
    files = [csv]
    try:
        files.insert(0, plot_drift_accuracy(accuracy, folder / "drift_accuracy.png",
                                            trained=trained, title=title))
    except MatplotlibMissing as err:
        print(f"no plot: {err}", file=sys.stderr)
    return files


def plot_drift_accuracy(accuracy: dict[str, np.ndarray], path, *, trained: float | None = None,
                        title: str = ""):
    """Test accuracy against t_inference (log axis): mean and min-max band per curve."""
    from rpusim.plotting import _save, require_matplotlib
    plt = require_matplotlib()
    times = np.array(list(TIMES.values()))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, color in (("compensated", "C0"), ("uncompensated", "C3")):
        acc = accuracy[key]
        ax.plot(times, acc.mean(axis=0), "o-", color=color,
                label=f"{'with' if key == 'compensated' else 'without'} drift compensation")
        ax.fill_between(times, acc.min(axis=0), acc.max(axis=0), color=color, alpha=0.2)
    if trained is not None:
        ax.axhline(trained, color="gray", ls="--", lw=1, label="before programming")
    ax.set_xscale("log")
    ax.set_xticks(times)
    ax.set_xticklabels(list(TIMES), rotation=30)
    ax.minorticks_off()
    ax.set_xlabel("time after programming (t_inference)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, plt, path)
