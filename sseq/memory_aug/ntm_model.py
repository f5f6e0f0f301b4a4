"""A Neural Turing Machine: an LSTM controller with one write head and one read head.

At each step t the controller reads the input and the last read vector, and its output
``h_t`` sets both heads' parameters (:func:`head_parameters`); the write head writes, then the
read head reads, and the output is computed from ``h_t`` and the new read vector:

    h_t, c_t   = LSTMCell([x_t, r_{t−1}], (h_{t−1}, c_{t−1}))
    w^w_t      = address(M_{t−1}, w^w_{t−1}, head_w(h_t));   M_t = write(M_{t−1}, w^w_t, e_t, a_t)
    w^r_t      = address(M_t, w^r_{t−1}, head_r(h_t));        r_t = read(M_t, w^r_t)
    y_t        = W_y [h_t, r_t] + b_y

Initial state, after Collier & Beel (2018), who compared the choices on the copy task: the
memory starts as a small constant (10⁻⁶ everywhere), the read vector at zero, and both heads'
weightings on slot 0, so that location-based addressing has a first slot to move from.

Shapes: ``b`` batch, ``l`` length, ``n`` memory slots, ``m`` slot width, ``d`` the controller's
width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sseq.memory_aug import ntm

__all__ = ["NTM", "NTMConfig", "head_parameters"]

MEMORY_INIT = 1e-6


@dataclass(frozen=True)
class NTMConfig:
    """The shape of an :class:`NTM`."""

    d_in: int
    d_out: int
    d_controller: int = 64
    n_slots: int = 64
    slot_width: int = 16

    def __post_init__(self):
        for name in ("d_in", "d_out", "d_controller", "n_slots", "slot_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")


def head_parameters(raw: torch.Tensor, m: int, *, writes: bool) -> dict:
    """Split a head's raw outputs into its parameters, each squashed into its range.

    Args:
        raw: ``(b, m + 6)`` for a read head, ``(b, 3m + 6)`` for a write head.
        m: the slot width.
        writes: whether the head also emits an erase and an add vector.

    Returns:
        ``key (b, m)``; ``beta`` ≥ 0, ``g`` ∈ [0, 1], ``gamma`` ≥ 1, each ``(b,)``; ``s (b, 3)``
        (a distribution); and for a write head ``erase`` ∈ [0, 1]^m and ``add`` ∈ [−1, 1]^m.
    """
    width = 3 * m + 6 if writes else m + 6
    if raw.ndim != 2 or raw.shape[1] != width:
        raise ValueError(f"raw must have shape (b, {width}) for m = {m}, got {tuple(raw.shape)}")
    key, beta, g, s, gamma, rest = raw.split([m, 1, 1, 3, 1, raw.shape[1] - m - 6], dim=1)
    out = {"key": key, "beta": F.softplus(beta[:, 0]), "g": torch.sigmoid(g[:, 0]),
           "s": torch.softmax(s, dim=-1), "gamma": 1 + F.softplus(gamma[:, 0])}
    if writes:
        erase, add = rest.split(m, dim=1)
        out |= {"erase": torch.sigmoid(erase), "add": torch.tanh(add)}
    return out


class NTM(nn.Module):
    """A Neural Turing Machine: ``(b, l, d_in)`` inputs → ``(b, l, d_out)`` outputs.

    Args:
        d_in, d_out: input and output channels.
        d_controller: the LSTM controller's width d.
        n_slots, slot_width: the memory's shape n × m.
    """

    def __init__(self, d_in: int, d_out: int, d_controller: int = 64, n_slots: int = 64,
                 slot_width: int = 16):
        super().__init__()
        self.config = NTMConfig(d_in, d_out, d_controller, n_slots, slot_width)
        m = slot_width
        self.controller = nn.LSTMCell(d_in + m, d_controller)
        self.write_head = nn.Linear(d_controller, 3 * m + 6)
        self.read_head = nn.Linear(d_controller, m + 6)
        self.output = nn.Linear(d_controller + m, d_out)

    def initial_state(self, b: int, device=None) -> dict:
        """The state before the first step: memory, weightings, read vector, controller, in the
        parameters' dtype (so that ``NTM(...).double()`` runs in float64)."""
        n, m, d = self.config.n_slots, self.config.slot_width, self.config.d_controller
        like = {"dtype": self.output.weight.dtype, "device": device}
        w0 = torch.zeros(b, n, **like)
        w0[:, 0] = 1.0
        zeros = torch.zeros(b, d, **like)
        return {"memory": torch.full((b, n, m), MEMORY_INIT, **like),
                "w_write": w0, "w_read": w0.clone(), "read": torch.zeros(b, m, **like),
                "controller": (zeros, zeros.clone())}

    def step(self, x: torch.Tensor, state: dict):
        """One step: ``x (b, d_in)`` → ``(y (b, d_out), new state)``."""
        m = self.config.slot_width
        h, c = self.controller(torch.cat([x, state["read"]], dim=-1), state["controller"])
        p = head_parameters(self.write_head(h), m, writes=True)
        w_write = ntm.address(state["memory"], state["w_write"], p["key"], p["beta"], p["g"],
                              p["s"], p["gamma"])
        memory = ntm.write(state["memory"], w_write, p["erase"], p["add"])
        p = head_parameters(self.read_head(h), m, writes=False)
        w_read = ntm.address(memory, state["w_read"], p["key"], p["beta"], p["g"], p["s"],
                             p["gamma"])
        r = ntm.read(memory, w_read)
        y = self.output(torch.cat([h, r], dim=-1))
        return y, {"memory": memory, "w_write": w_write, "w_read": w_read, "read": r,
                   "controller": (h, c)}

    def forward(self, x: torch.Tensor, *, return_weights: bool = False):
        """Run over a sequence ``(b, l, d_in)`` → outputs ``(b, l, d_out)``.

        With ``return_weights`` also returns the heads' weightings, each ``(b, l, n)``.
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != self.config.d_in:
            raise ValueError(f"x must have shape (b, l, d_in) = (b, l, {self.config.d_in}), "
                             f"got {tuple(getattr(x, 'shape', ()))}")
        state = self.initial_state(x.shape[0], x.device)
        ys, writes, reads = [], [], []
        for t in range(x.shape[1]):
            y, state = self.step(x[:, t], state)
            ys.append(y)
            writes.append(state["w_write"])
            reads.append(state["w_read"])
        y = torch.stack(ys, dim=1)                                          # (b, l, d_out)
        if return_weights:
            return y, torch.stack(writes, dim=1), torch.stack(reads, dim=1)
        return y
