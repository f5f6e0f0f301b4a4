"""A Switch layer (Fedus et al., 2022): many feed-forward experts, one per token.

A Transformer's feed-forward layer holds most of its parameters and, some argue, much of
its knowledge. A Switch layer keeps ``E`` of them and sends each token to one, chosen by a
router, so the parameters grow E-fold while a token's cost stays that of one expert:

    p(x)   = softmax(W_r x)                        (E,) router probabilities
    e(x)   = argmax_i p_i(x);   y = p_e(x) · FFN_e(x)       (the gate keeps the router trained)

Experts run on fixed-size batches, so each takes at most

    capacity = ⌈ capacity_factor · T / E ⌉         tokens of the T in the batch

in the order they come; the rest are *dropped* (their output is 0, the residual connection
carries them past the layer). A load-balancing loss pushes the router towards equal loads:

    L_aux = E · Σ_i f_i · P_i,    f_i = fraction of tokens routed to i,  P_i = mean_x p_i(x)

which is 1 when the load is uniform and E when all tokens go to one expert.

Shapes: ``b`` batch, ``l`` length, ``d`` model width, ``f`` expert width, ``E`` experts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SwitchConfig", "SwitchFFN", "capacity", "dropped_tokens", "load_balancing_loss",
           "switch_ref"]


@dataclass(frozen=True)
class SwitchConfig:
    """The shape of a :class:`SwitchFFN`."""

    d_model: int
    d_ff: int
    n_experts: int
    capacity_factor: float = 1.0

    def __post_init__(self):
        for name in ("d_model", "d_ff", "n_experts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not self.capacity_factor > 0:
            raise ValueError(f"capacity_factor must be > 0, got {self.capacity_factor!r}")


def capacity(n_tokens: int, n_experts: int, capacity_factor: float) -> int:
    """⌈capacity_factor · T / E⌉: the most tokens one expert takes."""
    return math.ceil(capacity_factor * n_tokens / n_experts)


def dropped_tokens(expert: torch.Tensor, n_experts: int, capacity_factor: float) -> torch.Tensor:
    """Which tokens overflow their expert: each expert takes the first ``capacity`` tokens
    routed to it, in token order.

    Args:
        expert: ``(T,)`` the expert chosen for each token.

    Returns:
        ``(T,)`` bool, True where the token is dropped.
    """
    if not isinstance(expert, torch.Tensor) or expert.ndim != 1 or expert.is_floating_point():
        raise ValueError(f"expert must be a 1-d integer tensor (T,), got "
                         f"{getattr(expert, 'dtype', type(expert).__name__)} "
                         f"{tuple(getattr(expert, 'shape', ()))}")
    if len(expert) and not 0 <= int(expert.min()) <= int(expert.max()) < n_experts:
        raise ValueError(f"expert must lie in [0, n_experts) = [0, {n_experts}), got values "
                         f"from {int(expert.min())} to {int(expert.max())}")
    onehot = F.one_hot(expert, n_experts)                                     # (T, E)
    position = ((onehot.cumsum(0) - 1) * onehot).sum(-1)                      # (T,)
    return position >= capacity(len(expert), n_experts, capacity_factor)


def load_balancing_loss(probs: torch.Tensor, expert: torch.Tensor) -> torch.Tensor:
    """E · Σ_i f_i P_i. Args: probs ``(T, E)`` router probabilities; expert ``(T,)`` choices."""
    n_experts = probs.shape[-1]
    f = torch.bincount(expert, minlength=n_experts).to(probs.dtype) / len(expert)
    return n_experts * (f * probs.mean(0)).sum()


class SwitchFFN(nn.Module):
    """Top-1 mixture of feed-forward experts: ``(b, l, d)`` → ``(b, l, d)`` and the routing.

    Args:
        d_model: d; d_ff: each expert's hidden width f; n_experts: E;
        capacity_factor: how many tokens an expert takes, relative to an equal share.
    """

    def __init__(self, d_model: int, d_ff: int, n_experts: int, capacity_factor: float = 1.0):
        super().__init__()
        self.config = SwitchConfig(d_model, d_ff, n_experts, capacity_factor)
        self.router = nn.Linear(d_model, n_experts, bias=False)
        self.w_in = nn.Parameter(torch.randn(n_experts, d_model, d_ff) * d_model ** -0.5)
        self.w_out = nn.Parameter(torch.randn(n_experts, d_ff, d_model) * d_ff ** -0.5)

    def route(self, x: torch.Tensor) -> dict:
        """Router probabilities ``probs (T, E)``, choices ``expert (T,)``, ``gate (T,)``, and
        ``kept (T,)``: whether the token fits in its expert's capacity (first come, first
        served in token order); T = b · l."""
        probs = torch.softmax(self.router(x.reshape(-1, x.shape[-1])), dim=-1)  # (T, E)
        gate, expert = probs.max(-1)
        dropped = dropped_tokens(expert, self.config.n_experts, self.config.capacity_factor)
        return {"probs": probs, "expert": expert, "gate": gate, "kept": ~dropped}

    def forward(self, x: torch.Tensor):
        """Returns ``(y (b, l, d), routing)``: routing as :meth:`route` plus ``aux_loss``."""
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != self.config.d_model:
            raise ValueError(f"x must have shape (b, l, d_model) = (b, l, "
                             f"{self.config.d_model}), got {tuple(getattr(x, 'shape', ()))}")
        r = self.route(x)
        tokens = x.reshape(-1, x.shape[-1])                                   # (T, d)
        y = torch.zeros_like(tokens)
        for e in range(self.config.n_experts):
            idx = torch.nonzero((r["expert"] == e) & r["kept"]).squeeze(-1)
            h = F.relu(tokens[idx] @ self.w_in[e]) @ self.w_out[e]            # (t_e, d)
            y = y.index_add(0, idx, r["gate"][idx, None] * h)
        r["aux_loss"] = load_balancing_loss(r["probs"], r["expert"])
        return y.view_as(x), r


def switch_ref(layer: SwitchFFN, x: torch.Tensor) -> torch.Tensor:
    """:class:`SwitchFFN`'s output token by token: route, count, drop or compute."""
    c = layer.config
    tokens = x.reshape(-1, c.d_model)
    cap = capacity(len(tokens), c.n_experts, c.capacity_factor)
    load = [0] * c.n_experts
    out = []
    for token in tokens:
        probs = torch.softmax(layer.router.weight @ token, dim=0)
        e = int(probs.argmax())
        load[e] += 1
        if load[e] > cap:
            out.append(torch.zeros_like(token))
            continue
        hidden = torch.clamp(token @ layer.w_in[e], min=0)
        out.append(probs[e] * (hidden @ layer.w_out[e]))
    return torch.stack(out).view_as(x)
