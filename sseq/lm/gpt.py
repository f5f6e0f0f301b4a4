"""A decoder-only Transformer language model (GPT; Radford et al., 2018, 2019).

Token and learned position embeddings, then n_layers pre-norm blocks

    x = x + Attention(LayerNorm(x))      causal multi-head attention (Chapter 6's layer)
    x = x + MLP(LayerNorm(x))            Linear(d, 4d) → GELU → Linear(4d, d)

a final LayerNorm, and a head that shares its weights with the token embedding. This is
GPT-2's layout as nanoGPT writes it (no biases, GELU, the GPT-2 initialisation below), built
on :class:`sseq.attention.MultiHeadAttention`, so that its numbers compare with nanoGPT's.

Generation (:mod:`sseq.lm.generate`) goes through :meth:`GPT.prefill` and :meth:`GPT.step`:
the keys and values of every token read are kept in one :class:`~sseq.attention.KVCache` per
layer, so a new token costs one position's projections plus attention over the cache. A
learned position table ends at ``context``: past it, :meth:`GPT.step` re-reads the last
``context`` tokens (as nanoGPT's ``generate`` does), which is what recomputation would do.

Shapes: ``b`` batch, ``l`` length (at most ``context``), ``d`` = ``d_model``, ``v`` vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sseq.attention import KVCache, MultiHeadAttention

__all__ = ["GPT", "GPTConfig", "GPTState"]


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class GPTConfig:
    """The shape of a :class:`GPT`."""

    vocab_size: int
    context: int
    n_layers: int
    n_heads: int
    d_model: int
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("vocab_size", "context", "n_layers", "n_heads", "d_model"):
            _positive_int(name, getattr(self, name))
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads must divide d_model: d_model = {self.d_model}, "
                             f"n_heads = {self.n_heads}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


class MLP(nn.Module):
    """The position-wise feed-forward layer: ``(b, l, d)`` → ``(b, l, d)``."""

    def __init__(self, d_model: int, dropout: float = 0.0):
        super().__init__()
        self.fc = nn.Linear(d_model, 4 * d_model, bias=False)
        self.proj = nn.Linear(4 * d_model, d_model, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """One pre-norm Transformer block: ``(b, l, d)`` → ``(b, l, d)``, with a KV cache."""

    def __init__(self, config: GPTConfig, fused: bool = True):
        super().__init__()
        d = config.d_model
        self.ln_1 = nn.LayerNorm(d, bias=False)
        self.attn = MultiHeadAttention(d, config.n_heads, fused=fused)
        self.ln_2 = nn.LayerNorm(d, bias=False)
        self.mlp = MLP(d, config.dropout)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None):
        """Returns ``(x, cache)``: x ``(b, l, d)`` and the cache extended by these l tokens."""
        y, cache = self.attn(self.ln_1(x), cache)
        x = x + self.dropout(y)
        return x + self.mlp(self.ln_2(x)), cache


@dataclass
class GPTState:
    """What generation carries from token to token: one KV cache per layer, and the tokens
    (to re-read the last ``context`` of them once the position table is exhausted)."""

    caches: list[KVCache]
    tokens: torch.Tensor  # (b, t)


class GPT(nn.Module):
    """A GPT language model: token ids ``(b, l)`` → next-token logits ``(b, l, v)``.

    Args:
        vocab_size: v.
        context: the longest window l (the rows of the position table).
        n_layers, n_heads, d_model: depth, attention heads and width.
        dropout: on the embeddings and on each residual branch (0: none).
        fused: attention through PyTorch's fused kernel (training); ``False`` uses the book's
            :func:`sseq.attention.scaled_dot_product_attention` (same numbers, slower).
    """

    def __init__(self, vocab_size: int, context: int, n_layers: int, n_heads: int,
                 d_model: int, dropout: float = 0.0, *, fused: bool = True):
        super().__init__()
        self.config = GPTConfig(vocab_size, context, n_layers, n_heads, d_model, dropout)
        self.context = context
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(context, d_model)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(self.config, fused) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model, bias=False)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.token_embedding.weight  # tied: one matrix reads and writes
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            # GPT-2: each residual branch's last layer is scaled down by √(2 · n_layers), so
            # the residual stream's variance at initialisation does not grow with depth
            if name.endswith(("attn.W_o.weight", "mlp.proj.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * n_layers))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def _embed(self, idx: torch.Tensor, start: int) -> torch.Tensor:
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.is_floating_point():
            raise ValueError(f"idx must be integer token ids of shape (b, l), got "
                             f"{type(idx).__name__} {tuple(getattr(idx, 'shape', ()))}")
        if start + idx.shape[1] > self.context:
            raise ValueError(f"positions must be below context = {self.context}, got "
                             f"{start + idx.shape[1]} tokens")
        positions = torch.arange(start, start + idx.shape[1], device=idx.device)
        return self.dropout(self.token_embedding(idx) + self.position_embedding(positions))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits of the next token at every position: ``(b, l)`` → ``(b, l, v)``."""
        x = self._embed(idx, 0)                                   # (b, l, d)
        for block in self.blocks:
            x, _ = block(x)
        return self.head(self.ln_f(x))                            # (b, l, v)

    def prefill(self, idx: torch.Tensor):
        """Read a prompt ``(b, l)`` at once (its last ``context`` tokens).

        Returns:
            ``(logits, state)``: the next-token logits after the prompt ``(b, v)``, and the
            :class:`GPTState` from which :meth:`step` continues.
        """
        window = idx[:, -self.context:]
        x = self._embed(window, 0)
        caches = []
        for block in self.blocks:
            x, cache = block(x, KVCache())
            caches.append(cache)
        logits = self.head(self.ln_f(x[:, -1]))                   # (b, v)
        return logits, GPTState(caches, idx)

    def _check_state(self, state) -> None:
        if not isinstance(state, GPTState):
            raise TypeError(f"state must be a GPTState (from prefill), got {type(state).__name__}")
        if len(state.caches) != len(self.blocks):
            raise ValueError(f"state must hold one KVCache per block: expected {len(self.blocks)}, "
                             f"got {len(state.caches)}")

    def step(self, token: torch.Tensor, state: GPTState):
        """Read one more token ``(b,)``: the keys and values of the past come from the caches
        (which are extended in place).

        Returns:
            ``(logits, state)``: the next-token logits ``(b, v)`` and the extended state.
        """
        self._check_state(state)
        tokens = torch.cat([state.tokens, token[:, None]], dim=1)  # (b, t + 1)
        position = state.caches[0].length
        if position >= self.context:  # the position table is exhausted: re-read the window
            return self.prefill(tokens)
        x = self._embed(token[:, None], position)                 # (b, 1, d)
        for block, cache in zip(self.blocks, state.caches, strict=True):
            x, _ = block(x, cache)
        return self.head(self.ln_f(x[:, -1])), GPTState(state.caches, tokens)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items())
