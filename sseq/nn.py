"""Recurrent layers written from scratch: the Elman RNN, the LSTM and the GRU.

Each layer is one short *cell* function — the equations of the paper, read top to
bottom — and a loop over time that carries the state. The parameters have exactly
the names, shapes and gate order of ``torch.nn.RNN``/``LSTM``/``GRU`` with one
layer and ``batch_first=True`` (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
``bias_hh_l0``), so a ``state_dict`` moves between the two and gives the same
outputs. What differs from PyTorch: the loop over time is Python, written to be
read, so it is slower than PyTorch's fused kernels; and only one layer,
one direction and biases are supported.

Shapes: ``b`` batch, ``l`` length, ``d`` input channels, ``n`` hidden (state) size
(``hidden_size``, ``d_hidden``: the size of h_t, the book's n); a gated layer stacks its
``G`` gates along the first weight axis. ``h`` is the hidden state itself, never a size.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

__all__ = ["GRU", "LSTM", "RNN", "RecurrentHead", "gru_cell", "lstm_cell", "rnn_cell",
           "set_forget_bias"]


# --- The cells: one time step each ----------------------------------------------------


def rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity="tanh"):
    """One step of the Elman RNN.

        h' = tanh(W_ih x + b_ih + W_hh h + b_hh)

    Args:
        x: input at this step, ``(b, d)``.
        h: previous hidden state, ``(b, n)``.
        weight_ih: ``(n, d)``; weight_hh: ``(n, n)``; bias_ih, bias_hh: ``(n,)``.
        nonlinearity: ``"tanh"`` (torch's default; Elman used sigmoids) or ``"relu"``.

    Returns:
        The new hidden state, ``(b, n)``.
    """
    pre = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh  # (b, n)
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def lstm_cell(x, state, weight_ih, weight_hh, bias_ih, bias_hh):
    """One step of the LSTM, gates in PyTorch's order (i, f, g, o).

        i  = σ(W_ii x + b_ii + W_hi h + b_hi)        input gate
        f  = σ(W_if x + b_if + W_hf h + b_hf)        forget gate
        g  = tanh(W_ig x + b_ig + W_hg h + b_hg)     candidate
        o  = σ(W_io x + b_io + W_ho h + b_ho)        output gate
        c' = f ⊙ c + i ⊙ g                           the cell: additive, the error carousel
        h' = o ⊙ tanh(c')

    Args:
        x: ``(b, d)``; state: ``(h, c)``, each ``(b, n)``.
        weight_ih: ``(4n, d)``; weight_hh: ``(4n, n)``; bias_ih, bias_hh: ``(4n,)``.

    Returns:
        ``(h', c')``, each ``(b, n)``.
    """
    h, c = state
    pre = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh  # (b, 4n)
    i, f, g, o = pre.chunk(4, dim=-1)  # each (b, n)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """One step of the GRU, gates in PyTorch's order (r, z, n): n is PyTorch's name for the
    candidate h̃.

        r  = σ(W_ir x + b_ir + W_hr h + b_hr)            reset gate
        z  = σ(W_iz x + b_iz + W_hz h + b_hz)            update gate
        h̃  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))   candidate
        h' = (1 − z) ⊙ h̃ + z ⊙ h

    Args:
        x: ``(b, d)``; h: ``(b, n)``.
        weight_ih: ``(3n, d)``; weight_hh: ``(3n, n)``; bias_ih, bias_hh: ``(3n,)``.

    Returns:
        The new hidden state, ``(b, n)``.
    """
    x_r, x_z, x_n = (x @ weight_ih.T + bias_ih).chunk(3, dim=-1)  # each (b, n)
    h_r, h_z, h_n = (h @ weight_hh.T + bias_hh).chunk(3, dim=-1)  # each (b, n)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    h_tilde = torch.tanh(x_n + r * h_n)
    return (1 - z) * h_tilde + z * h


# --- The layers: a loop over time ------------------------------------------------------


def _positive_int(name, value) -> int:
    """value as a Python int >= 1; NumPy integers are accepted, bools and floats are not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class _Recurrent(nn.Module):
    """A single-layer, batch-first recurrent layer; subclasses supply ``step``."""

    n_gates = 1  # how many (n, .) blocks are stacked in each weight
    n_states = 1  # 1: the state is h; 2: the state is (h, c)

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size = _positive_int("input_size", input_size)
        self.hidden_size = hidden_size = _positive_int("hidden_size", hidden_size)
        rows = self.n_gates * hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(rows))
        self.bias_hh_l0 = nn.Parameter(torch.empty(rows))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's initialization: every parameter uniform in ±1/sqrt(n)."""
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    @property
    def weights(self):
        return self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, batch_first=True"

    def forward(self, x, state=None):
        """Run the layer over a sequence.

        Args:
            x: ``(b, l, d)`` floating point, ``d = input_size``.
            state: the initial state, PyTorch's layout: ``h_0`` of shape ``(1, b, n)``
                (for the LSTM, a pair ``(h_0, c_0)``); zeros when ``None``.

        Returns:
            ``(output, final_state)``: ``output`` ``(b, l, n)`` holds h_t for every t;
            ``final_state`` is the last state ``(1, b, n)`` (PyTorch's ``h_n``), or a pair
            for the LSTM.
        """
        self._check_input(x)
        states = self._initial_state(x, state)  # tuple of (b, n)
        outputs = []
        for t in range(x.shape[1]):
            states = self.step(x[:, t], states)
            outputs.append(states[0])
        output = torch.stack(outputs, dim=1)  # (b, l, n)
        final = tuple(s.unsqueeze(0) for s in states)  # each (1, b, n)
        return output, (final if self.n_states == 2 else final[0])

    def _check_input(self, x):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 3 or x.shape[-1] != self.input_size or x.shape[1] == 0:
            raise ValueError(f"x must have shape (b, l, {self.input_size}) with l >= 1 "
                             f"(batch first), got {tuple(x.shape)}")
        if x.dtype != self.weight_ih_l0.dtype:
            raise TypeError(f"x must have dtype {self.weight_ih_l0.dtype} like the layer's "
                            f"weights, got {x.dtype}")

    def _initial_state(self, x, state):
        b, n = x.shape[0], self.hidden_size
        if state is None:
            zeros = x.new_zeros(b, n)
            return (zeros,) * self.n_states
        parts = tuple(state) if self.n_states == 2 else (state,)
        if len(parts) != self.n_states or not all(isinstance(s, torch.Tensor) for s in parts):
            raise TypeError(f"state must be {self._state_doc()}")
        for s in parts:
            if tuple(s.shape) != (1, b, n):
                raise ValueError(f"each state tensor must have shape (1, b, n) = {(1, b, n)}, "
                                 f"got {tuple(s.shape)}")
            if s.dtype != self.weight_hh_l0.dtype:
                raise TypeError(f"state must have dtype {self.weight_hh_l0.dtype} like the "
                                f"layer's weights, got {s.dtype}")
        return tuple(s[0] for s in parts)

    def _state_doc(self):
        return "(h_0, c_0), two tensors (1, b, n)" if self.n_states == 2 else "a tensor (1, b, n)"

    def step(self, x, states):
        raise NotImplementedError


class RNN(_Recurrent):
    """The Elman RNN, a drop-in for ``torch.nn.RNN(d, n, batch_first=True)``.

    Args:
        input_size: ``d``; hidden_size: ``n``.
        nonlinearity: ``"tanh"`` or ``"relu"``, as in PyTorch.
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, nonlinearity={self.nonlinearity!r}"

    def step(self, x, states):
        return (rnn_cell(x, states[0], *self.weights, nonlinearity=self.nonlinearity),)


class LSTM(_Recurrent):
    """The LSTM, a drop-in for ``torch.nn.LSTM(d, n, batch_first=True)``."""

    n_gates, n_states = 4, 2

    def step(self, x, states):
        return lstm_cell(x, states, *self.weights)


class GRU(_Recurrent):
    """The GRU, a drop-in for ``torch.nn.GRU(d, n, batch_first=True)``."""

    n_gates = 3

    def step(self, x, states):
        return (gru_cell(x, states[0], *self.weights),)


# --- A small model for the book's tasks ------------------------------------------------

_CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
_TORCH_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def set_forget_bias(lstm, value: float = 1.0):
    """Start an LSTM remembering: set the forget gate's total bias b_if + b_hf to ``value``.

    With a positive bias, f = σ(value) is near 1 before training, so the cell
    carries its content (and its gradient) across many steps from the start, as
    Gers et al. (2000) advise. Works for ``sseq.nn.LSTM`` and ``torch.nn.LSTM``.

    Returns:
        ``lstm``, changed in place.
    """
    if not hasattr(lstm, "bias_hh_l0") or lstm.bias_hh_l0.shape[0] != 4 * lstm.hidden_size:
        raise TypeError(f"set_forget_bias needs an LSTM layer, got {type(lstm).__name__}")
    n = lstm.hidden_size
    with torch.no_grad():
        lstm.bias_ih_l0[n:2 * n] = 0.0  # gate order (i, f, g, o): f is the second block
        lstm.bias_hh_l0[n:2 * n] = value
    return lstm


class RecurrentHead(nn.Module):
    """A recurrent layer and a linear readout: the book's small sequence model.

    Args:
        cell: ``"rnn"``, ``"lstm"``, ``"gru"``, or a callable ``cell(d_in, d_hidden)``
            returning a batch-first layer that returns ``(output, state)``.
        d_in: input channels; for token inputs, the vocabulary size.
        d_hidden: n, the size of the state h_t.
        d_out: output channels (classes, or 1 for a regression).
        readout: ``"last"`` reads out h_l only; ``"all"`` reads out every h_t.
        backend: ``"sseq"`` (this module's layers) or ``"torch"`` (PyTorch's fused
            layers: the same parameters and equations, several times faster on a CPU).
        forget_bias: for an LSTM, the initial forget-gate bias (see :func:`set_forget_bias`);
            ``None`` keeps PyTorch's initialization.

    Inputs are ``(b, l, d_in)`` floats, or ``(b, l)`` integer token ids in
    ``[0, d_in)``, which are one-hot encoded. The output is ``(b, d_out)`` for
    ``readout="last"`` and ``(b, l, d_out)`` for ``readout="all"``.
    """

    def __init__(self, cell, d_in: int, d_hidden: int, d_out: int, readout: str = "last", *,
                 backend: str = "sseq", forget_bias: float | None = None):
        super().__init__()
        if isinstance(cell, str) and cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)} or a callable, got {cell!r}")
        if not isinstance(cell, str) and not callable(cell):
            raise TypeError(f"cell must be a name or a callable, got {type(cell).__name__}")
        if readout not in ("last", "all"):
            raise ValueError(f"readout must be 'last' or 'all', got {readout!r}")
        if backend not in ("sseq", "torch"):
            raise ValueError(f"backend must be 'sseq' or 'torch', got {backend!r}")
        self.d_in = d_in = _positive_int("d_in", d_in)
        d_hidden, d_out = _positive_int("d_hidden", d_hidden), _positive_int("d_out", d_out)
        self.readout = readout
        if not isinstance(cell, str):
            self.recurrent = cell(d_in, d_hidden)
        elif backend == "torch":
            self.recurrent = _TORCH_CELLS[cell](d_in, d_hidden, batch_first=True)
        else:
            self.recurrent = _CELLS[cell](d_in, d_hidden)
        if forget_bias is not None:
            set_forget_bias(self.recurrent, forget_bias)
        self.head = nn.Linear(d_hidden, d_out)

    def forward(self, x):
        """``(b, l, d_in)`` or ``(b, l)`` tokens → ``(b, d_out)`` or ``(b, l, d_out)``."""
        if isinstance(x, torch.Tensor) and not x.is_floating_point() and x.ndim == 2:
            x = self._one_hot(x)  # (b, l, d_in)
        output, _ = self.recurrent(x)  # (b, l, d_hidden)
        if self.readout == "last":
            output = output[:, -1]  # (b, d_hidden)
        return self.head(output)

    def _one_hot(self, tokens):
        """Token ids ``(b, l)`` of any integer dtype → one-hot floats ``(b, l, d_in)``."""
        if tokens.dtype == torch.bool or tokens.is_complex():
            raise TypeError(f"token ids x must be integers, got {tokens.dtype}")
        if tokens.numel() == 0:
            raise ValueError(f"token ids x must have shape (b, l) with b, l >= 1, got "
                             f"{tuple(tokens.shape)}")
        if tokens.min() < 0 or tokens.max() >= self.d_in:
            raise ValueError(f"token ids must lie in [0, {self.d_in}), got "
                             f"[{int(tokens.min())}, {int(tokens.max())}]")
        return nn.functional.one_hot(tokens.long(), self.d_in).to(self.head.weight.dtype)
