"""Spending depth conditionally: Mixture-of-Depths and the Universal Transformer.

**Mixture-of-Depths** (Raposo et al., 2024). A router scores every token, ``r_t = w · x_t``;
only the top ``k = ⌈fraction · l⌉`` tokens of each sequence go through the block, the rest
skip it on the residual stream:

    y_t = x_t + r_t · f(x_S)_t    if t ∈ S = top-k(r)          (f sees only the chosen tokens)
    y_t = x_t                     otherwise

Multiplying by ``r_t`` puts the router on the gradient path. The top-k looks at the whole
sequence, which is not causal: the paper trains a small predictor to decide token by token
when sampling. The block's cost shrinks by ``fraction`` (attention's by ``fraction²``).

**Universal Transformer** (Dehghani et al., 2019). One block, its weights shared, applied
``n_steps`` times with a step embedding added before each application:

    h⁰ = x;   hˢ = block(hˢ⁻¹ + e_s),  s = 1 … n_steps

so depth (compute) grows and the parameters do not.

Shapes: ``b`` batch, ``l`` length, ``d`` width, ``k`` tokens routed through the block.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["UniversalTransformer", "mod_route", "mod_route_ref"]


def _check_x(x, scores, fraction):
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        raise ValueError(f"x must have shape (b, l, d), got {tuple(getattr(x, 'shape', ()))}")
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != tuple(x.shape[:2]):
        raise ValueError(f"scores must have shape (b, l) = {tuple(x.shape[:2])}, got "
                         f"{tuple(getattr(scores, 'shape', ()))}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")


def mod_route(x: torch.Tensor, scores: torch.Tensor, fraction: float, branch):
    """Send the top ``fraction`` of each sequence's tokens through ``branch``, in order.

    Args:
        x: ``(b, l, d)``; scores: the router's r ``(b, l)``; fraction: of tokens processed.
        branch: the block's residual branch f, ``(b, k, d)`` → ``(b, k, d)``.

    Returns:
        ``(y (b, l, d), chosen (b, l) bool)``.
    """
    _check_x(x, scores, fraction)
    b, l, d = x.shape
    k = math.ceil(fraction * l)
    idx = scores.topk(k, dim=1).indices.sort(dim=1).values               # (b, k), in order
    picked = x.gather(1, idx[:, :, None].expand(b, k, d))                # (b, k, d)
    update = scores.gather(1, idx)[:, :, None] * branch(picked)          # (b, k, d)
    y = x.scatter_add(1, idx[:, :, None].expand(b, k, d), update)
    chosen = torch.zeros(b, l, dtype=torch.bool).scatter(1, idx, True)
    return y, chosen


def mod_route_ref(x, scores, fraction, branch):
    """:func:`mod_route` one sequence at a time, with Python sorting and a loop."""
    b, l, _ = x.shape
    k = math.ceil(fraction * l)
    y = x.clone()
    for i in range(b):
        order = sorted(range(l), key=lambda t: (-float(scores[i, t]), t))[:k]
        chosen = sorted(order)
        out = branch(x[i:i + 1, chosen])[0]                               # (k, d)
        for j, t in enumerate(chosen):
            y[i, t] = x[i, t] + scores[i, t] * out[j]
    return y


class UniversalTransformer(nn.Module):
    """One block applied ``n_steps`` times: ``(b, l, d)`` → ``(b, l, d)``.

    Args:
        block: a module ``(b, l, d)`` → ``(b, l, d)`` (or returning a tuple whose first entry
            is that, as :class:`sseq.lm.gpt.Block` does).
        d_model: d; n_steps: the number of applications.
    """

    def __init__(self, block: nn.Module, d_model: int, n_steps: int):
        super().__init__()
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive int, got {n_steps!r}")
        self.block = block
        self.step_embedding = nn.Parameter(torch.zeros(n_steps, d_model))
        self.n_steps = n_steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for s in range(self.n_steps):
            out = self.block(x + self.step_embedding[s])
            x = out[0] if isinstance(out, tuple) else out
        return x
