"""The four kinds of layer that Chapter 8's models are assembled from.

Each layer maps ``(b, l, d)`` → ``(b, l, d)`` and sits inside a pre-norm residual block
(:class:`sseq.mamba.Block`: ``u + layer(RMSNorm(u))``). Besides the parallel ``forward`` that
training uses, each reads a prompt and then one token at a time, carrying what it remembers:

==============  ===========================================  ==================================
kind            layer                                        what it carries between tokens
==============  ===========================================  ==================================
``attention``   causal multi-head attention (Chapter 6)      a KV cache: 2 · t · d numbers
``mlp``         Linear(d, 4d) → GELU → Linear(4d, d)         nothing (it sees one position)
``mamba``       the Mamba block (Chapter 5)                  d_inner · (d_state + d_conv − 1)
``lstm``        an LSTM layer of width d                     (h, c): 2 · d numbers
==============  ===========================================  ==================================

``prefill(u) → (y, state)`` reads a prompt ``(b, l, d)``; ``step(u_t, state) → (y_t, state)``
reads one more position ``(b, d)``. The Mamba block has ``forward(u, return_state=True)`` and
``step`` already (:class:`sseq.mamba.Mamba`); :func:`prefill` below reads a prompt with
every kind the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from sseq.attention import KVCache, MultiHeadAttention
from sseq.lm.gpt import MLP
from sseq.mamba import Mamba
from sseq.nn import set_forget_bias

__all__ = ["LAYER_KINDS", "AttentionLayer", "LSTMLayer", "MLPLayer", "make_layer", "prefill"]

LAYER_KINDS = ("attention", "mlp", "mamba", "lstm")


class AttentionLayer(nn.Module):
    """Causal multi-head attention as a layer ``(b, l, d)`` → ``(b, l, d)``; its state is a
    :class:`~sseq.attention.KVCache`.

    Args:
        d_model: width d; n_heads: heads (dividing d).
        rope: rotate queries and keys by their positions (RoPE); else no positions here.
    """

    def __init__(self, d_model: int, n_heads: int, rope: bool = False):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, n_heads, rope=rope, fused=True)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.attn(u)[0]

    def prefill(self, u: torch.Tensor):
        return self.attn(u, KVCache())

    def step(self, u_t: torch.Tensor, cache: KVCache):
        y, cache = self.attn(u_t[:, None], cache)  # (b, 1, d): one query, every key held
        return y[:, 0], cache


class MLPLayer(MLP):
    """The Transformer's position-wise feed-forward layer (:class:`sseq.lm.gpt.MLP`): it mixes
    channels, never positions, so it carries no state (``None``)."""

    def __init__(self, d_model: int):
        super().__init__(d_model)

    def prefill(self, u: torch.Tensor):
        return self(u), None

    def step(self, u_t: torch.Tensor, state=None):
        return self(u_t), None


class LSTMLayer(nn.Module):
    """One LSTM layer of width d as a layer ``(b, l, d)`` → ``(b, l, d)`` (PyTorch's fused
    ``nn.LSTM``, forget-gate bias 1 so that it starts by remembering); its state is ``(h, c)``,
    each ``(1, b, d)``."""

    def __init__(self, d_model: int):
        super().__init__()
        self.lstm = set_forget_bias(nn.LSTM(d_model, d_model, batch_first=True), 1.0)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.lstm(u)[0]

    def prefill(self, u: torch.Tensor):
        return self.lstm(u)

    def step(self, u_t: torch.Tensor, state):
        y, state = self.lstm(u_t[:, None], state)
        return y[:, 0], state


def make_layer(kind: str, d_model: int, *, d_state: int = 16, n_heads: int = 4,
               rope: bool = False) -> nn.Module:
    """A fresh layer of one of :data:`LAYER_KINDS` (the global RNG draws its weights).

    Args:
        kind: ``"attention"``, ``"mlp"``, ``"mamba"`` or ``"lstm"``.
        d_model: width d.
        d_state: the Mamba layer's state size N per channel.
        n_heads: the attention layer's heads; rope: its positions.
    """
    if kind == "attention":
        return AttentionLayer(d_model, n_heads, rope)
    if kind == "mlp":
        return MLPLayer(d_model)
    if kind == "mamba":
        return Mamba(d_model, d_state)  # backend "auto": the fused CPU scan on a CPU
    if kind == "lstm":
        return LSTMLayer(d_model)
    raise ValueError(f"kind must be one of {LAYER_KINDS}, got {kind!r}")


def prefill(layer: nn.Module, u: torch.Tensor):
    """Read a prompt ``(b, l, d)`` with any layer: ``(y (b, l, d), state)``."""
    if isinstance(layer, Mamba):
        return layer(u, return_state=True)
    return layer.prefill(u)

