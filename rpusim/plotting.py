"""PNG plots for the command line and the examples (matplotlib, the optional ``plot`` extra).

matplotlib is imported only inside these functions, so the core never needs it; without it they
raise :class:`MatplotlibMissing`, whose message says how to install it.
"""

from __future__ import annotations

import pathlib

import numpy as np

__all__ = ["MatplotlibMissing", "INSTALL_HINT", "require_matplotlib", "plot_loss_curves",
           "plot_pulse_response"]

INSTALL_HINT = 'pip install "rpusim[plot]"   (or: pip install matplotlib)'


class MatplotlibMissing(ImportError):
    """matplotlib is not installed; the message says how to install it."""


def require_matplotlib():
    """Return ``matplotlib.pyplot`` with the non-interactive Agg backend.

    Raises
    ------
    MatplotlibMissing
        When matplotlib cannot be imported.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")  # files only: no display needed (CI, ssh)
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise MatplotlibMissing(f"plotting needs matplotlib, which is not installed: "
                                f"{INSTALL_HINT}") from err
    return plt


def plot_loss_curves(curves: dict[str, dict[str, list[float]]], path, *, title: str = "",
                     floors: dict[str, tuple[float, str]] | None = None) -> pathlib.Path:
    """Plot per-epoch metrics of several runs side by side and save a PNG.

    Parameters
    ----------
    curves : dict
        ``{run label: {metric name: values per epoch (epoch 0 first)}}``; one panel per metric
        (in the order of the first run), one line per run.
    path : str or path-like
        The PNG to write (its folder is created).
    title : str
        Figure title.
    floors : dict, optional
        ``{metric: (value, label)}``: a dotted horizontal line on that metric's panel (e.g. the
        label-noise variance under a training loss).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    plt = require_matplotlib()
    metrics = list(next(iter(curves.values())))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for label, run in curves.items():
            ax.plot(np.arange(len(run[metric])), run[metric], marker="o", ms=3, label=label)
        if metric in (floors or {}):
            value, label = floors[metric]
            ax.axhline(value, color="0.4", ls=":", lw=1.2, label=label)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3, which="both")
    for ax in axes[0]:
        ax.legend(fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, plt, path)


def plot_pulse_response(trace: np.ndarray, n_up: int, path, *, title: str = "") -> pathlib.Path:
    """Plot a pulse response and the step size vs weight, and save a PNG.

    Parameters
    ----------
    trace : ndarray, shape (2 * n_up + 1, n_devices)
        The weight of each device at the start and after every pulse: ``n_up`` up pulses, then
        as many down pulses (:func:`rpusim.demo.pulse_response`).
    n_up : int
        The number of up pulses.
    path : str or path-like
        The PNG to write (its folder is created).
    title : str
        Figure title.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    plt = require_matplotlib()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    pulses = np.arange(len(trace))
    left.plot(pulses, trace, lw=1)
    left.axvline(n_up, color="0.6", ls=":", lw=1)
    left.set_xlabel(f"pulse number ({n_up} up, then {len(trace) - 1 - n_up} down)")
    left.set_ylabel("weight")
    left.set_title(f"pulse response, {trace.shape[1]} devices (device-to-device spread)",
                   fontsize=10)
    steps = np.diff(trace, axis=0)
    before = trace[:-1]
    up = slice(0, n_up)
    down = slice(n_up, None)
    right.scatter(before[up].ravel(), steps[up].ravel(), s=4, alpha=0.5, label="up pulses")
    right.scatter(before[down].ravel(), steps[down].ravel(), s=4, alpha=0.5,
                  label="down pulses")
    right.axhline(0.0, color="0.6", lw=0.8)
    right.set_xlabel("weight before the pulse")
    right.set_ylabel("weight change of one pulse")
    right.set_title("step size vs weight", fontsize=10)
    right.legend(fontsize=9, markerscale=3)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, plt, path)


def _save(fig, plt, path) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
