"""Recurrent analog layers: aihwkit 1.2.0's ``AnalogRNN`` and its cells.

A cell holds one ``AnalogLinear`` per weight matrix (``weight_ih``, ``weight_hh``; or one combined
``weight`` for :class:`AnalogLSTMCellCombinedWeight`) and unrolls over time in Python, so each
linear sees one forward per time step. Its backward therefore runs once per step in reverse time
order (autograd reaches the last step first), and ``AnalogSGD.step`` hands the tile one update of
``seq_len * batch`` rows in that order, as aihwkit does.

Module paths, state layout, gate order and initial weights follow aihwkit's
``aihwkit.nn.modules.rnn`` (``rnn.layers.0.cell.weight_ih``; bidirectional layers add
``directions.0`` / ``directions.1``). Inputs are ``(seq_len, batch, features)``.
"""

from __future__ import annotations

import math
import warnings
from collections import namedtuple

import numpy as np
import torch
from torch import nn

from rpusim.configs.enums import NoiseManagementType
from rpusim.torch.containers import AnalogContainerBase
from rpusim.torch.linear import AnalogLinear

__all__ = ["AnalogRNN", "AnalogLSTMCell", "AnalogLSTMCellCombinedWeight", "AnalogGRUCell",
           "AnalogVanillaRNNCell", "AnalogRNNLayer", "AnalogReverseRNNLayer",
           "AnalogBidirRNNLayer", "ModularRNN", "LSTMState"]

LSTMState = namedtuple("LSTMState", ["hx", "cx"])
LSTMState.__doc__ = "State of an LSTM cell: hidden state ``hx`` and cell state ``cx``."


def _child_seeds(seed: int | None, count: int) -> list:
    """``count`` independent seeds drawn from ``seed`` (all ``None`` when ``seed`` is ``None``).

    Each tile of a recurrent layer needs its own stream; spawning keeps them independent and
    reproducible from the one seed the user gives.
    """
    if seed is None:
        return [None] * count
    return [int(s.generate_state(1, np.uint64)[0] >> np.uint64(1))
            for s in np.random.SeedSequence(seed).spawn(count)]


def _linear(in_size, out_size, bias, rpu_config, tile_module_class, seed, analog_only=False):
    """An ``AnalogLinear``, or torch's ``nn.Linear`` when there is no ``rpu_config`` (aihwkit)."""
    if rpu_config is None and not analog_only:
        return nn.Linear(in_size, out_size, bias)
    return AnalogLinear(in_size, out_size, bias, rpu_config, tile_module_class, seed=seed)


def _zeros(cell: nn.Module, batch_size: int) -> torch.Tensor:
    param = next(cell.parameters())
    return torch.zeros(batch_size, cell.hidden_size, device=param.device, dtype=param.dtype)


def _lstm_update(gates: torch.Tensor, c_x: torch.Tensor):
    """LSTM state update from the pre-activations, gates in torch's order i, f, g, o."""
    in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, 1)
    c_y = torch.sigmoid(forget_gate) * c_x + torch.sigmoid(in_gate) * torch.tanh(cell_gate)
    h_y = torch.sigmoid(out_gate) * torch.tanh(c_y)
    return h_y, (h_y, c_y)


class _AnalogCell(nn.Module):
    """Shared constructor arguments and zero state of the cells."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool, rpu_config=None,
                 tile_module_class=None, *, seed: int | None = None):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)

    def get_zero_state(self, batch_size: int) -> torch.Tensor:
        """Zero hidden state ``(batch_size, hidden_size)`` in the cell's dtype and device."""
        return _zeros(self, batch_size)


class _TwoWeightCell(_AnalogCell):
    """A cell with an input and a recurrent linear of ``gates * hidden_size`` outputs.

    ``forward(x, state)`` is ``step(weight_ih(x), state)``, where each cell's ``step`` is its
    recurrence. A layer that unrolls the cell calls :meth:`input_gates` once for the whole
    sequence instead (see there).
    """

    analog_only = False

    def __init__(self, input_size: int, hidden_size: int, bias: bool, rpu_config=None,
                 tile_module_class=None, *, seed: int | None = None):
        super().__init__(input_size, hidden_size, bias, rpu_config, tile_module_class, seed=seed)
        seed_ih, seed_hh = _child_seeds(seed, 2)
        out = self.gates * self.hidden_size
        self.weight_ih = _linear(self.input_size, out, bias, rpu_config, tile_module_class,
                                 seed_ih, self.analog_only)
        self.weight_hh = _linear(self.hidden_size, out, bias, rpu_config, tile_module_class,
                                 seed_hh, self.analog_only)

    def forward(self, input_: torch.Tensor, state):
        """One step: ``(output, new state)``."""
        return self.step(self.weight_ih(input_), state)

    def input_gates(self, inputs: list) -> list:
        """``weight_ih(x_t)`` of every step in one tile call.

        ``inputs`` are the step inputs in the order the cell will process them. They go
        through ``weight_ih`` as one batch, last step first: the rows that backward stores
        for the pulsed update then come in the order per-step calls leave them (backward
        reaches the last step first), so the update is the same as aihwkit's ``seq_len``
        calls, with one call's overhead instead of ``seq_len``.
        """
        batch = inputs[0].shape[0]
        gates = self.weight_ih(torch.cat(inputs[::-1]))
        return list(gates.split(batch)[::-1])


class AnalogVanillaRNNCell(_TwoWeightCell):
    """Elman cell ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` on two analog linears.

    Parameters
    ----------
    input_size, hidden_size : int
        Features of the input and of the hidden state.
    bias : bool
        Give both linears a bias (digital or an analog column, per ``rpu_config.mapping``).
    rpu_config : RPUConfig, optional
        Configuration of both tiles; ``None`` builds torch's digital ``nn.Linear`` instead
        (aihwkit's behaviour).
    tile_module_class : optional
        Accepted for aihwkit compatibility (rpusim has one tile class).
    seed : int, optional
        Seeds both tiles (rpusim's addition); ``None`` seeds them from torch's generator.
    """

    def step(self, input_gates: torch.Tensor, state: torch.Tensor):
        """One step: returns ``(h', h')`` (the output is the new state)."""
        out = torch.tanh(input_gates + self.weight_hh(state))
        return out, out


class AnalogLSTMCell(_TwoWeightCell):
    """LSTM cell on two analog linears of ``4 * hidden_size`` outputs (gates i, f, g, o).

    Parameters are those of :class:`AnalogVanillaRNNCell`. The state is an
    :data:`LSTMState` ``(hx, cx)``.
    """

    gates = 4

    def get_zero_state(self, batch_size: int) -> LSTMState:
        """Zero ``LSTMState(hx, cx)``, each ``(batch_size, hidden_size)``."""
        return LSTMState(_zeros(self, batch_size), _zeros(self, batch_size))

    def step(self, input_gates: torch.Tensor, state):
        """One step: returns ``(h', (h', c'))``."""
        h_x, c_x = state
        return _lstm_update(input_gates + self.weight_hh(h_x), c_x)


class AnalogLSTMCellCombinedWeight(_AnalogCell):
    """LSTM cell with one analog linear ``weight`` on the concatenation ``[x, h]``.

    The tile is ``[4 * hidden_size, input_size + hidden_size]`` (gates i, f, g, o); one update
    per step covers both input and recurrent weights. Parameters are those of
    :class:`AnalogVanillaRNNCell`.
    """

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, bias: bool, rpu_config=None,
                 tile_module_class=None, *, seed: int | None = None):
        super().__init__(input_size, hidden_size, bias, rpu_config, tile_module_class, seed=seed)
        self.weight = _linear(self.input_size + self.hidden_size, 4 * self.hidden_size, bias,
                              rpu_config, tile_module_class, seed)

    def get_zero_state(self, batch_size: int) -> LSTMState:
        """Zero ``LSTMState(hx, cx)``, each ``(batch_size, hidden_size)``."""
        return LSTMState(_zeros(self, batch_size), _zeros(self, batch_size))

    def forward(self, input_: torch.Tensor, state):
        """One step: returns ``(h', (h', c'))``."""
        h_x, c_x = state
        return _lstm_update(self.weight(torch.cat((input_, h_x), 1)), c_x)


class AnalogGRUCell(_TwoWeightCell):
    """GRU cell on two analog linears of ``3 * hidden_size`` outputs (gates r, z, n).

    ``n = tanh(i_n + r * h_n)`` and ``h' = n + z * (h - n)``, as torch's ``nn.GRUCell``.
    Unlike the other cells, ``rpu_config=None`` means an ``InferenceRPUConfig()`` (analog
    linears), as in aihwkit. Other parameters are those of :class:`AnalogVanillaRNNCell`.
    """

    gates = 3
    analog_only = True

    def __init__(self, input_size: int, hidden_size: int, bias: bool, rpu_config=None,
                 tile_module_class=None, *, seed: int | None = None):
        if not rpu_config:
            from rpusim.configs import InferenceRPUConfig
            rpu_config = InferenceRPUConfig()
        super().__init__(input_size, hidden_size, bias, rpu_config, tile_module_class, seed=seed)

    def step(self, input_gates: torch.Tensor, state: torch.Tensor):
        """One step: returns ``(h', h')``."""
        i_r, i_z, i_n = input_gates.chunk(3, 1)
        h_r, h_z, h_n = self.weight_hh(state).chunk(3, 1)
        reset_gate = torch.sigmoid(i_r + h_r)
        update_gate = torch.sigmoid(i_z + h_z)
        new_gate = torch.tanh(i_n + reset_gate * h_n)
        hidden = new_gate + update_gate * (state - new_gate)
        return hidden, hidden


def _order_free(linear: nn.Module) -> bool:
    """Whether the forward rows of ``linear`` may be reordered without changing any result.

    ``AVERAGE_ABS_MAX`` noise management carries a running value from row to row, so its
    rows must come in aihwkit's per-step order; every other forward is row by row.
    """
    if not isinstance(linear, AnalogLinear):
        return True
    return all(tile.rpu_config.forward.noise_management
               != NoiseManagementType.AVERAGE_ABS_MAX for tile in linear.analog_tiles())


def _build_cell(cell, cell_args, seed):
    """``cell(*cell_args)``, passing ``seed`` only when one is given (user cells may lack it)."""
    return cell(*cell_args) if seed is None else cell(*cell_args, seed=seed)


class AnalogRNNLayer(nn.Module):
    """One direction of one recurrent layer: the cell unrolled over the first input dimension.

    Parameters
    ----------
    cell : type
        The cell class (e.g. :class:`AnalogLSTMCell`).
    *cell_args
        Its arguments (input_size, hidden_size, bias, rpu_config, tile_module_class).
    seed : int, optional
        Seed of the cell (rpusim's addition).
    """

    reverse = False

    def __init__(self, cell, *cell_args, seed: int | None = None):
        super().__init__()
        self.cell = _build_cell(cell, cell_args, seed)

    def get_zero_state(self, batch_size: int):
        """The cell's zero state."""
        return self.cell.get_zero_state(batch_size)

    def forward(self, input_: torch.Tensor, state):
        """Run the sequence ``(seq_len, batch, features)``: ``(outputs, last state)``."""
        inputs = input_.unbind(0)
        if self.reverse:
            inputs = inputs[::-1]
        if isinstance(self.cell, _TwoWeightCell) and _order_free(self.cell.weight_ih):
            inputs, step = self.cell.input_gates(inputs), self.cell.step
        else:
            step = self.cell
        outputs = []
        for item in inputs:
            out, state = step(item, state)
            outputs.append(out)
        if self.reverse:
            outputs = outputs[::-1]
        return torch.stack(outputs), state


class AnalogReverseRNNLayer(AnalogRNNLayer):
    """An :class:`AnalogRNNLayer` that reads the sequence backwards (outputs in input order)."""

    reverse = True


class AnalogBidirRNNLayer(nn.Module):
    """Forward and reverse layer side by side; outputs concatenated on the feature dimension.

    The state is a list ``[forward state, reverse state]``. Parameters are those of
    :class:`AnalogRNNLayer`.
    """

    def __init__(self, cell, *cell_args, seed: int | None = None):
        super().__init__()
        seed_f, seed_r = _child_seeds(seed, 2)
        self.directions = nn.ModuleList([AnalogRNNLayer(cell, *cell_args, seed=seed_f),
                                         AnalogReverseRNNLayer(cell, *cell_args, seed=seed_r)])

    def get_zero_state(self, batch_size: int) -> list:
        """``[forward zero state, reverse zero state]``."""
        return [direction.get_zero_state(batch_size) for direction in self.directions]

    def forward(self, input_: torch.Tensor, states):
        """Both directions over ``input_``: ``(cat(outputs, -1), [state_f, state_r])``."""
        outputs, out_states = [], []
        for direction, state in zip(self.directions, states):
            out, out_state = direction(input_, state)
            outputs.append(out)
            out_states.append(out_state)
        return torch.cat(outputs, -1), out_states


class ModularRNN(nn.Module):
    """A stack of recurrent layers with dropout between them (not after the last).

    Parameters
    ----------
    num_layers : int
    layer : type
        :class:`AnalogRNNLayer` or :class:`AnalogBidirRNNLayer`.
    dropout : float
        Dropout probability on the outputs of every layer but the last.
    first_layer_args, other_layer_args : sequence
        ``(cell, input_size, hidden_size, bias, rpu_config, tile_module_class)`` of the first
        and of the following layers.
    seed : int, optional
        Seeds every layer's tiles (rpusim's addition).
    """

    def __init__(self, num_layers: int, layer, dropout: float, first_layer_args,
                 other_layer_args, *, seed: int | None = None):
        super().__init__()
        seeds = _child_seeds(seed, num_layers)
        self.layers = nn.ModuleList(
            [layer(*(first_layer_args if i == 0 else other_layer_args), seed=seeds[i])
             for i in range(num_layers)])
        self.num_layers = num_layers
        if num_layers == 1 and dropout > 0:
            warnings.warn("dropout is applied between recurrent layers only: with num_layers=1 "
                          f"the dropout={dropout} has no effect", stacklevel=3)
        self.dropout_layer = nn.Dropout(dropout) if dropout > 0.0 else None

    def get_zero_state(self, batch_size: int) -> list:
        """One zero state per layer."""
        return [layer.get_zero_state(batch_size) for layer in self.layers]

    def forward(self, input: torch.Tensor, states: list):  # noqa: A002 - aihwkit's name
        """Run the stack: ``(output of the last layer, [state of each layer])``."""
        output = input
        out_states = []
        for i, rnn_layer in enumerate(self.layers):
            output, out_state = rnn_layer(output, states[i])
            if i < self.num_layers - 1 and self.dropout_layer is not None:
                output = self.dropout_layer(output)
            out_states.append(out_state)
        return output, out_states


class AnalogRNN(AnalogContainerBase, nn.Module):
    """A multi-layer recurrent network on analog tiles (aihwkit 1.2.0's ``AnalogRNN``).

    Parameters
    ----------
    cell : type
        :class:`AnalogLSTMCell`, :class:`AnalogGRUCell`, :class:`AnalogVanillaRNNCell`,
        :class:`AnalogLSTMCellCombinedWeight` or a compatible cell class.
    input_size : int
        Features of the input ``(seq_len, batch, input_size)``.
    hidden_size : int
        Features of each layer's hidden state.
    bias : bool
        Biases on every linear.
    rpu_config : RPUConfig, optional
        Configuration of every tile; ``None`` gives digital ``nn.Linear``s (except for the GRU
        cell, which then uses ``InferenceRPUConfig()``), as aihwkit.
    tile_module_class : optional
        Accepted for aihwkit compatibility.
    xavier : bool
        Initialise weights Xavier-uniform and biases to zero; otherwise (default) weights and
        biases uniform in ``+-1/sqrt(hidden_size)``, torch's LSTM initialisation.
    num_layers : int
        Stacked layers; layer ``k > 0`` reads ``num_dirs * hidden_size`` features.
    bidir : bool
        Bidirectional layers (outputs ``2 * hidden_size`` features).
    dropout : float
        Dropout between layers.
    seed : int, optional
        Seeds the initial weights and every tile (rpusim's addition). ``None``: the initial
        weights come from torch's global generator as in aihwkit (each linear first draws
        ``nn.Linear``'s initialisation, then ``reset_parameters`` overwrites it) and the tiles
        are seeded from its state, so ``torch.manual_seed`` makes a script reproducible.

    Notes
    -----
    ``forward(input, states=None)`` returns ``(output, states)``: output
    ``(seq_len, batch, num_dirs * hidden_size)`` and one state per layer (a
    ``LSTMState(hx, cx)``, a tensor, or for a bidirectional layer a list of two of them).
    Missing states are zeros.
    """

    def __init__(self, cell, input_size: int, hidden_size: int, bias: bool = True,
                 rpu_config=None, tile_module_class=None, xavier: bool = False,
                 num_layers: int = 1, bidir: bool = False, dropout: float = 0.0, *,
                 seed: int | None = None):
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, (int, np.integer)) \
                or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout!r}")
        layer, num_dirs = (AnalogBidirRNNLayer, 2) if bidir else (AnalogRNNLayer, 1)
        self.rnn = ModularRNN(
            int(num_layers), layer, float(dropout),
            first_layer_args=[cell, input_size, hidden_size, bias, rpu_config, tile_module_class],
            other_layer_args=[cell, num_dirs * hidden_size, hidden_size, bias, rpu_config,
                              tile_module_class],
            seed=seed)
        self.hidden_size = hidden_size
        self.num_layers = int(num_layers)
        self._seed = seed
        self.reset_parameters(xavier)

    @torch.no_grad()
    def init_layers(self, weight_init_fn, bias_init_fn=None) -> None:
        """Initialise every linear in place: ``weight_init_fn(weight)``, ``bias_init_fn(bias)``.

        Analog linears are read with ``get_weights`` and written back with ``set_weights``
        (through the device model); without ``bias_init_fn`` the weight function also sets the
        biases.
        """
        bias_fn = weight_init_fn if bias_init_fn is None else bias_init_fn
        for module in self.modules():
            if isinstance(module, AnalogLinear):
                weight, bias = module.get_weights()
                weight_init_fn(weight)
                if bias is not None:
                    bias_fn(bias)
                module.set_weights(weight, bias)
            elif isinstance(module, nn.Linear):
                weight_init_fn(module.weight)
                if module.bias is not None:
                    bias_fn(module.bias)

    def reset_parameters(self, xavier: bool = False) -> None:
        """Draw fresh initial weights (see ``xavier`` and ``seed`` in the class description)."""
        gen = None if self._seed is None else torch.Generator().manual_seed(int(self._seed))
        if xavier:
            self.init_layers(lambda t: nn.init.xavier_uniform_(t, generator=gen),
                             nn.init.zeros_)
        else:
            stdv = 1.0 / math.sqrt(self.hidden_size)
            self.init_layers(lambda t: t.uniform_(-stdv, stdv, generator=gen))

    def get_zero_state(self, batch_size: int) -> list:
        """One zero state per layer for a batch of ``batch_size``."""
        return self.rnn.get_zero_state(batch_size)

    def forward(self, input: torch.Tensor, states=None):  # noqa: A002 - aihwkit's name
        """Run ``input`` ``(seq_len, batch, input_size)``; ``(output, states)``."""
        if input.dim() != 3:
            raise ValueError("AnalogRNN expects input of shape (seq_len, batch, features), "
                             f"got shape {tuple(input.shape)}")
        if states is None:
            states = self.get_zero_state(input.shape[1])
        return self.rnn(input, states)
