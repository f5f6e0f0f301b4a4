"""Why a recurrence resists parallel training: the same work, with the chain and without it.

The Elman RNN computes h_t = tanh(W_ih x_t + W_hh h_{t-1} + b): step t cannot start before
step t − 1 has finished, so a sequence of length L is a chain of L dependent steps. Chapter 2
times one training pass (forward and backward) of that chain against two counterparts that
do comparable arithmetic without it:

* ``"states known"`` — the very same cell, :func:`sseq.nn.rnn_cell`, applied to all b·L
  positions in **one** call, as if every h_{t-1} were known in advance (as the previous
  tokens are when a Transformer is trained with teacher forcing). Exactly the RNN's
  floating-point work, and no chain: the cost of the chain is the difference;
* ``"linear scan"`` — a recurrence that is *linear* in the state, h_t = a ⊙ h_{t-1} + W_ih x_t
  (Part II's state space models), run by a log-depth parallel scan
  (:func:`sseq.scan.linear_scan`, ``backend="parallel"``): a chain that can be cut.

Shapes: ``b`` batch, ``l`` length, ``d`` input channels, ``n`` state size.
"""

from __future__ import annotations

import numbers

import torch

from sseq.bench import Timing, time_fn
from sseq.nn import RNN, rnn_cell
from sseq.scan import linear_scan

__all__ = ["KINDS", "pass_seconds", "states_known"]

KINDS = ("sseq RNN", "torch RNN", "states known", "linear scan")


def states_known(rnn: RNN, x: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
    """Every step of ``rnn`` at once, given the previous states: ``rnn_cell`` on b·l rows.

    Args:
        rnn: an :class:`sseq.nn.RNN` (its weights are used).
        x: inputs ``(b, l, d)``; h_prev: the states h_{t-1} for every t, ``(b, l, n)``.

    Returns:
        ``(b, l, n)``: h_t for every t. Fed the RNN's own states (h_0 = 0, h_1, …, h_{l-1}),
        it returns exactly what the RNN's loop returns.
    """
    b, l, d = x.shape
    n = rnn.hidden_size
    if h_prev.shape != (b, l, n):
        raise ValueError(f"h_prev must be (b, l, n) = {(b, l, n)}, got {tuple(h_prev.shape)}")
    h = rnn_cell(x.reshape(b * l, d), h_prev.reshape(b * l, n), rnn.weight_ih_l0,
                 rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)  # (b·l, n): one step
    return h.reshape(b, l, n)


def _pass(kind: str, b: int, l: int, d: int, n: int, seed: int):
    """A function running one forward and backward pass of ``kind`` on fixed inputs."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, l, d, generator=g)  # (b, l, d)
    if kind == "torch RNN":
        layer = torch.nn.RNN(d, n, batch_first=True)
        return lambda: layer(x)[0].square().mean().backward()
    rnn = RNN(d, n)
    if kind == "sseq RNN":
        return lambda: rnn(x)[0].square().mean().backward()
    if kind == "states known":
        h_prev = torch.randn(b, l, n, generator=g).tanh()  # stand-ins: any known states
        return lambda: states_known(rnn, x, h_prev).square().mean().backward()
    decay = torch.full((n,), 0.9, requires_grad=True)  # a: one decay per state channel

    def scan():
        drive = x @ rnn.weight_ih_l0.T  # (b, l, n): W_ih x_t for every t, one product
        h = linear_scan(decay.expand(b, l, n), drive, backend="parallel")  # (b, l, n)
        h.square().mean().backward()

    return scan


def pass_seconds(kind: str, b: int, l: int, *, d: int = 4, n: int = 32, repeat: int = 7,
                 seed: int = 0) -> Timing:
    """Time one forward and backward pass over ``b`` sequences of length ``l``.

    Args:
        kind: one of :data:`KINDS`.
        b, l: batch size and length; d, n: input channels and state size.
        repeat: timed rounds (the median is reported).

    Returns:
        A :class:`sseq.bench.Timing`, seconds per pass.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    for name, value in (("b", b), ("l", l), ("d", d), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    return time_fn(_pass(kind, b, l, d, n, seed), repeat=repeat)
