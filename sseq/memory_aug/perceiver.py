"""A Perceiver's latent array (Jaegle et al., 2021): a memory that does not grow with the input.

Self-attention over ``l`` inputs costs ``l²`` and, to continue, keeps all ``l`` keys and
values. A Perceiver instead keeps a fixed array of ``n`` learned *latents* and lets them read
the input by cross-attention,

    Q = Z W_q  (n, d),   K = X W_k,  V = X W_v  (l, d)
    Z' = Z + softmax(Q Kᵀ / √d) V W_o                    (n, d): the input, summarised

at a cost of order ``n · l`` and a result of ``n · d`` numbers whatever ``l`` is; further
layers work on the latents alone. It is a state of fixed size again, but one written by
attention over the whole input at once rather than token by token.

Shapes: ``b`` batch, ``l`` input tokens, ``n`` latents, ``d`` width.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["PerceiverLatents", "cross_attend_ref"]


class PerceiverLatents(nn.Module):
    """Cross-attention from ``n_latents`` learned latents to the input: ``(b, l, d_input)`` →
    ``(b, n, d)``.

    Args:
        n_latents: n; d_model: the latents' width d; d_input: the inputs' width.
    """

    def __init__(self, n_latents: int, d_model: int, d_input: int | None = None):
        super().__init__()
        for name, value in (("n_latents", n_latents), ("d_model", d_model)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        d_input = d_input or d_model
        self.latents = nn.Parameter(torch.randn(n_latents, d_model) * 0.02)
        self.W_q = nn.Linear(d_model, d_model, bias=False)
        self.W_k = nn.Linear(d_input, d_model, bias=False)
        self.W_v = nn.Linear(d_input, d_model, bias=False)
        self.W_o = nn.Linear(d_model, d_model, bias=False)
        self.d_input = d_input

    def forward(self, x: torch.Tensor, *, return_weights: bool = False):
        """Returns the updated latents ``(b, n, d)`` (and the attention ``(b, n, l)``)."""
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != self.d_input:
            raise ValueError(f"x must have shape (b, l, d_input) = (b, l, {self.d_input}), "
                             f"got {tuple(getattr(x, 'shape', ()))}")
        q = self.W_q(self.latents)                                       # (n, d)
        k, v = self.W_k(x), self.W_v(x)                                  # (b, l, d)
        weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1)
        z = self.latents + self.W_o(weights @ v)                         # (b, n, d)
        return (z, weights) if return_weights else z


@torch.no_grad()
def cross_attend_ref(layer: PerceiverLatents, x: torch.Tensor) -> torch.Tensor:
    """:class:`PerceiverLatents` latent by latent and input by input (float64 loops)."""
    b, l, _ = x.shape
    n, d = layer.latents.shape
    out = torch.zeros(b, n, d, dtype=torch.float64)
    Wq, Wk = layer.W_q.weight.double(), layer.W_k.weight.double()
    Wv, Wo = layer.W_v.weight.double(), layer.W_o.weight.double()
    for i in range(b):
        for j in range(n):
            q = Wq @ layer.latents[j].double()
            scores = [float(q @ (Wk @ x[i, t].double())) / math.sqrt(d) for t in range(l)]
            top = max(scores)
            weights = [math.exp(s - top) for s in scores]
            read = sum(w / sum(weights) * (Wv @ x[i, t].double())
                       for t, w in enumerate(weights))
            out[i, j] = layer.latents[j].double() + Wo @ read
    return out
