"""PNG plots for the command line and the examples (matplotlib, the optional ``plot`` extra).

matplotlib is imported only inside these functions, so the core never needs it; without it they
raise :class:`MatplotlibMissing`, whose message says how to install it.
"""

from __future__ import annotations

import pathlib

import numpy as np

__all__ = ["MatplotlibMissing", "INSTALL_HINT", "require_matplotlib", "plot_loss_curves",
           "plot_pulse_response", "plot_device", "plot_device_compact", "plot_response_overview",
           "compute_pulse_response", "compute_pulse_statistics", "estimate_n_steps",
           "get_tile_for_plotting"]

INSTALL_HINT = 'pip install "rpusim[plot]"   (or: pip install matplotlib)'


class MatplotlibMissing(ImportError):
    """matplotlib is not installed; the message says how to install it."""


def _pyplot():
    """``matplotlib.pyplot`` with the user's backend (figures to show, as aihwkit's)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise MatplotlibMissing(f"plotting needs matplotlib, which is not installed: "
                                f"{INSTALL_HINT}") from err
    return plt


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


# -- device response figures (aihwkit.utils.visualization) -------------------------------------

def _read_io() -> "IOParameters":
    """Forward IO that reads weights almost exactly: no DAC/ADC, no out noise, no management."""
    from rpusim.configs import (BoundManagementType, IOParameters, NoiseManagementType,
                                WeightNoiseType)
    return IOParameters(out_noise=0.0, inp_res=-1.0, out_bound=100.0, out_res=-1.0,
                        bound_management=BoundManagementType.NONE,
                        noise_management=NoiseManagementType.NONE,
                        w_noise_type=WeightNoiseType.ADDITIVE_CONSTANT)


def _device_config(device, w_noise: float):
    """A single-device or unit-cell config around ``device`` with a weight-reading forward."""
    from rpusim.configs import PulsedDevice, SingleRPUConfig, UnitCellRPUConfig
    io = _read_io()
    io.w_noise = float(w_noise)
    config_class = SingleRPUConfig if isinstance(device, PulsedDevice) else UnitCellRPUConfig
    return config_class(device=device, forward=io)


def _directions(n_steps: int, total: int) -> np.ndarray:
    """``n_steps`` up pulses (+1), then ``n_steps`` down (-1), repeated, ``total`` in all."""
    return np.sign(np.sin(np.pi * (np.arange(total) + 1) / n_steps))


def estimate_n_steps(rpu_config) -> int:
    """Pulses from the lowest to the highest weight, assuming equal steps.

    A rough guess for nonlinear devices; 1000 for anything but a single device
    (``SingleRPUConfig``).
    """
    from rpusim.configs import SingleRPUConfig
    if not isinstance(rpu_config, SingleRPUConfig):
        return 1000
    dev = rpu_config.device.resolved_device()
    return int(np.round((dev.w_max - dev.w_min) / dev.granularity(dev.dw_min)))


def _silence(dev) -> None:
    """Turn off a device's cycle-to-cycle noise and a compound's reads and transfers."""
    from rpusim.configs import IOParameters, PulseType, UpdateParameters
    if hasattr(dev, "dw_min_std"):
        dev.dw_min_std = 0.0
    if hasattr(dev, "refresh_forward"):
        dev.refresh_forward = IOParameters(is_perfect=True)
    if hasattr(dev, "refresh_update"):
        dev.refresh_update = UpdateParameters(pulse_type=PulseType.NONE)
    if hasattr(dev, "transfer_update"):
        dev.transfer_update = UpdateParameters(pulse_type=PulseType.NONE)
    if getattr(dev, "write_noise_std", 0.0) > 0.0:
        # tiny but nonzero: the hidden parameters (persistent_weights) stay the same set
        dev.write_noise_std = 1e-6


def get_tile_for_plotting(rpu_config, n_traces: int, use_cuda: bool = False,
                          noise_free: bool = False, w_init: float | None = None,
                          seed: int | None = None):
    """A ``n_traces x 1`` tile that takes single pulses, its weights at ``w_init``.

    Parameters
    ----------
    rpu_config : RPUConfig
        Copied; its update is set to one pulse per call (no update or bit-length management).
    n_traces : int
        Devices (rows) of the tile: the device-to-device spread.
    use_cuda : bool
        Accepted for aihwkit's signature; rpusim has no CUDA build, so it changes nothing.
    noise_free : bool
        Perfect forward and no cycle-to-cycle noise, reads or transfers.
    w_init : float, optional
        Initial weight (default the device's ``w_min``, -1 for compounds).
    seed : int, optional
        Seed of the tile.
    """
    import copy

    from rpusim.tile import AnalogTile
    del use_cuda
    config = copy.deepcopy(rpu_config)
    config.update.update_bl_management = False
    config.update.update_management = False
    config.update.desired_bl = 1
    if noise_free:
        config.forward.is_perfect = True
        for dev in (config.device, *getattr(config.device, "unit_cell_devices", ()),
                    getattr(config.device, "device", None)):
            if dev is not None:
                _silence(dev)
    tile = AnalogTile(n_traces, 1, config, seed=seed)
    tile.set_learning_rate(1.0)
    if w_init is None:
        resolve = getattr(config.device, "resolved_device", None)
        w_init = getattr(resolve() if resolve else config.device, "w_min", -1.0)
    tile.set_weights(np.full((n_traces, 1), float(w_init)))
    return tile


def compute_pulse_response(analog_tile, direction: np.ndarray, use_forward: bool = False
                           ) -> np.ndarray:
    """Weights after each pulse of ``direction`` (+1 up, -1 down), shape (len, out, in).

    Every pulse is one update of all elements with ``x = -1``, ``d = direction[i]``, so with
    learning rate 1 each weight moves by one step in that direction. ``use_forward`` reads the
    weights by forward passes of the unit vectors (with the read noise of the forward IO);
    otherwise they are the exact weights.
    """
    out_size, in_size = analog_tile.out_size, analog_tile.in_size
    trace = np.zeros((len(direction), out_size, in_size))
    x = -np.ones((1, in_size))
    eye = np.eye(in_size)
    for i, sign in enumerate(np.asarray(direction, dtype=float)):
        analog_tile.update(x, np.full((1, out_size), sign))
        trace[i] = analog_tile.forward(eye).T if use_forward else analog_tile.get_weights()
    return trace


def compute_pulse_statistics(w_nodes: np.ndarray, w_trace: np.ndarray, direction: np.ndarray,
                             up_direction: bool, smoothness: float = 0.5
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the step size as a function of the weight, per element.

    The steps of one direction (pulses followed by a pulse of the same sign) are averaged
    with Gaussian weights of width ``smoothness * (node spacing) / 2`` around each node;
    nodes with too little data (total weight < 0.1) are NaN.

    Returns
    -------
    dw_mean, dw_std : ndarray, shape (len(w_nodes), out, in)
    """
    steps = np.diff(w_trace, axis=0)
    sign = 1 if up_direction else -1
    keep = (np.sign(direction[:-1]) == sign) & (np.diff(direction) == 0)
    w_at, dw_at = w_trace[:-1][keep], steps[keep]
    width = (w_nodes[1] - w_nodes[0]) / 2 * smoothness
    mean = np.zeros((len(w_nodes),) + w_trace.shape[1:])
    std = np.zeros_like(mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, node in enumerate(w_nodes):
            kernel = np.exp(-0.5 * ((node - w_at) / width) ** 2)
            total = kernel.sum(axis=0)
            kernel[:, total < 0.1] = np.nan
            kernel /= total
            mean[k] = np.sum(kernel * dw_at, axis=0)
            std[k] = np.sqrt(np.sum(kernel * (dw_at - mean[k]) ** 2, axis=0))
    return mean, std


def _plot_trace(plt, tile, direction, use_forward: bool) -> np.ndarray:
    trace = compute_pulse_response(tile, direction, use_forward)
    plt.plot(trace.reshape(trace.shape[0], -1))
    name = type(tile.rpu_config.device).__name__
    plt.title(name if use_forward else f"{name} (without cycle/read noise)")
    plt.ylabel("Weight [conductance]")
    plt.xlabel("Pulse number \\#")
    return trace


def _plot_statistics(plt, trace, direction, up_direction: bool, num_nodes: int,
                     smoothness: float) -> None:
    nodes = np.linspace(trace.min(), trace.max(), num_nodes)
    mean, std = compute_pulse_statistics(nodes, trace, direction, up_direction, smoothness)
    mean, std = mean.reshape(num_nodes, -1), std.reshape(num_nodes, -1)
    for i in range(mean.shape[1]):
        line = plt.plot(nodes, mean[:, i])[0]
        plt.fill_between(nodes, mean[:, i] - std[:, i], mean[:, i] + std[:, i],
                         edgecolor=None, facecolor=line.get_color(), alpha=0.5)
    plt.xlabel("Weight $w$")
    plt.ylabel("Avg. step $\\Delta w$")
    plt.title("up-direction" if up_direction else "down-direction")


def _same_hidden(source, target) -> None:
    """Give ``target`` the device-to-device draws of ``source`` (same names only)."""
    names = set(target.get_hidden_parameter_names())
    target.set_hidden_parameters({k: v for k, v in source.get_hidden_parameters().items()
                                  if k in names})


def plot_response_overview(rpu_config, n_loops: int = 5, n_steps: int | None = None,
                           n_traces: int = 5, use_cuda: bool = False, smoothness: float = 0.1,
                           seed: int | None = None) -> None:
    """Draw, on the current figure, a device's pulse response and step statistics.

    Top: ``n_traces`` devices under ``n_loops`` cycles of ``n_steps`` up and down pulses, read
    through the forward pass. Middle: the same devices without cycle-to-cycle and read noise.
    Bottom: mean step (with std band) against the weight, up and down (aihwkit's
    ``plot_response_overview``). ``n_steps`` defaults to :func:`estimate_n_steps`.
    """
    plt = _pyplot()
    if n_steps is None:
        n_steps = estimate_n_steps(rpu_config)
    total = min(max(n_loops * 2 * n_steps, 1000), max(50000, 2 * n_steps))
    direction = _directions(n_steps, total)
    plt.clf()
    noisy = get_tile_for_plotting(rpu_config, n_traces, use_cuda, noise_free=False, seed=seed)
    plt.subplot(3, 1, 1)
    _plot_trace(plt, noisy, direction, use_forward=True)
    quiet = get_tile_for_plotting(rpu_config, n_traces, use_cuda, noise_free=True, seed=seed)
    _same_hidden(noisy, quiet)
    plt.subplot(3, 1, 2)
    trace = _plot_trace(plt, quiet, direction, use_forward=False)
    num_nodes = min(n_steps, 100)
    for position, up in ((5, True), (6, False)):
        plt.subplot(3, 2, position)
        _plot_statistics(plt, trace, direction, up, num_nodes, smoothness)
    plt.tight_layout()


def plot_device(device, w_noise: float = 0.0, **kwargs) -> None:
    """A new 7 x 7 in figure with a device's (or unit cell's) response overview.

    Parameters
    ----------
    device : PulsedDevice or unit cell / compound config
    w_noise : float
        Std of the additive weight read noise of the forward reads.
    **kwargs
        ``n_loops``, ``n_steps``, ``n_traces``, ``use_cuda``, ``smoothness``, ``seed`` of
        :func:`plot_response_overview`.
    """
    plt = _pyplot()
    plt.figure(figsize=(7, 7))
    plot_response_overview(_device_config(device, w_noise), **kwargs)


def plot_device_compact(device, w_noise: float = 0.0, n_steps: int | None = None,
                        n_traces: int = 3, n_loops: int = 2, w_init: float | None = None,
                        use_cuda: bool = False, axes=None, seed: int | None = None,
                        **plot_kwargs):
    """One-row figure of a device's response: traces, flanked by the step sizes.

    The middle axes shows ``n_traces`` devices under ``n_loops`` cycles of ``n_steps`` up and
    down pulses (read through the forward pass, with read noise ``w_noise``); the narrow left
    and right axes show the mean up and down step against the weight of the same devices
    without cycle-to-cycle noise (aihwkit's ``plot_device_compact``).

    Parameters
    ----------
    device : PulsedDevice or unit cell / compound config
    w_noise, n_steps, n_traces, n_loops, w_init, use_cuda, seed
        As :func:`plot_response_overview` and :func:`get_tile_for_plotting`.
    axes : matplotlib Axes, optional
        Draw only the traces, on these axes, and return them.
    **plot_kwargs
        Passed to the traces' ``plot`` (``linewidth`` 1 by default).

    Returns
    -------
    matplotlib Figure, or ``axes`` when given.
    """
    plt = _pyplot()
    from matplotlib import ticker
    figure = plt.figure(figsize=(12, 4)) if axes is None else None
    config = _device_config(device, w_noise)
    if n_steps is None:
        n_steps = estimate_n_steps(config)
    total = n_loops * 2 * n_steps
    noisy = get_tile_for_plotting(config, n_traces, use_cuda, False, w_init, seed)
    trace = compute_pulse_response(noisy, _directions(n_steps, total), True).reshape(-1, n_traces)
    main = axes if axes is not None else figure.add_subplot(1, 1, 1)
    plot_kwargs.setdefault("linewidth", 1)
    main.plot(trace, **plot_kwargs)
    main.set_title(type(config.device).__name__)
    main.set_xlabel("Pulse number \\#")
    w_limit = np.abs(trace).max() * 1.2
    main.set_ylim(-w_limit, w_limit)
    main.set_xlim(0, total - 1)
    main.xaxis.set_major_formatter(ticker.ScalarFormatter(useMathText=True))
    if axes is not None:
        return axes
    _step_panels(figure, main, config, noisy, n_steps, n_traces, w_init, seed, w_limit)
    return figure


def _step_panels(figure, main, config, noisy, n_steps, n_traces, w_init, seed, w_limit):
    """The narrow up/down step-size axes on both sides of the compact figure's traces."""
    direction = _directions(n_steps, min(max(2 * n_steps, 1000), max(50000, 2 * n_steps)))
    quiet = get_tile_for_plotting(config, n_traces, False, True, w_init, seed)
    _same_hidden(noisy, quiet)
    trace = compute_pulse_response(quiet, direction, False)
    nodes = np.linspace(trace.min(), trace.max(), min(n_steps, 100))
    up = compute_pulse_statistics(nodes, trace, direction, True)[0].reshape(-1, n_traces)
    down = compute_pulse_statistics(nodes, trace, direction, False)[0].reshape(-1, n_traces)
    left0, bottom, width, height = main.get_position().bounds
    side, gap = 0.1, 0.01
    main.set_position((left0 + gap + side, bottom, width - 2 * gap - 2 * side, height))
    main.set_yticks([])
    left = figure.add_axes((left0, bottom, side, height))
    left.plot(up, nodes)
    left.set_xlabel("Up pulse size")
    left.set_ylabel("Weight \n [conductance]")
    right = figure.add_axes((left0 + width - side, bottom, side, height))
    right.plot(np.abs(down), nodes)
    right.set_yticks([])
    right.set_xlabel("Down pulse size")
    with np.errstate(invalid="ignore"):
        dw_limit = 1.2 * max(np.nanmax(np.abs(down)), np.nanmax(np.abs(up)))
    for ax in (left, right):
        ax.set_ylim(-w_limit, w_limit)
        ax.set_xlim(0.0, dw_limit)
