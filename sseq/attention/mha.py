"""Multi-head attention with grouped-query heads, rotary positions and a KV cache.

One layer of a decoder-only transformer's attention (Vaswani et al., 2017):

    q, k, v = x W_q, x W_k, x W_v,  split into heads;   y = concat_heads(attention) W_o

With ``n_kv_heads < n_heads`` (grouped-query attention; Ainslie et al., 2023) several query
heads share one key/value head: the projections and the KV cache shrink by
``n_heads / n_kv_heads``. ``n_kv_heads = 1`` is multi-query attention (Shazeer, 2019).

Generation reads one token at a time. Keys and values of the past do not change, so they are
kept in a :class:`KVCache` and only the new token's are computed: ``forward(x, cache)``
returns exactly what recomputing the whole sequence would return for the new tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sseq.attention.positions import rope as apply_rope
from sseq.attention.sdpa import scaled_dot_product_attention

__all__ = ["KVCache", "MultiHeadAttention", "step_by_step"]


class KVCache:
    """The keys and values of every token read so far, for one attention layer.

    Appending grows preallocated buffers by doubling (amortized O(1) copies per token, like
    a Python list) when no gradient is being recorded; under autograd it concatenates, so
    that no tensor needed for the backward pass is overwritten.

    Attributes:
        length: tokens held.
    """

    def __init__(self):
        self._k: torch.Tensor | None = None  # (b, h_kv, capacity, d_head)
        self._v: torch.Tensor | None = None
        self.length = 0

    @property
    def keys(self) -> torch.Tensor:
        """``(b, h_kv, length, d_head)``."""
        return self._k[:, :, : self.length]

    @property
    def values(self) -> torch.Tensor:
        """``(b, h_kv, length, d_head)``."""
        return self._v[:, :, : self.length]

    @property
    def nbytes(self) -> int:
        """Bytes of the keys and values held (not of spare capacity)."""
        if self._k is None:
            return 0
        return self.keys.numel() * self._k.element_size() * 2

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the keys and values ``(b, h_kv, l, d_head)`` of l new tokens.

        Returns:
            All keys and values held, ``(b, h_kv, length, d_head)`` each.
        """
        if self._k is None:  # the first tokens: keep the tensors themselves
            self._k, self._v, self.length = k, v, k.shape[2]
            return self.keys, self.values
        if k.shape[:2] != self._k.shape[:2] or k.shape[3] != self._k.shape[3]:
            raise ValueError(f"k must have shape (b, h_kv, l, d_head) = ({self._k.shape[0]}, "
                             f"{self._k.shape[1]}, l, {self._k.shape[3]}) to join this cache, "
                             f"got {tuple(k.shape)}")
        new = self.length + k.shape[2]
        if torch.is_grad_enabled() and (k.requires_grad or self._k.requires_grad):
            self._k = torch.cat([self.keys, k], dim=2)
            self._v = torch.cat([self.values, v], dim=2)
        else:
            if new > self._k.shape[2]:  # grow by doubling; never write into a caller's tensor
                self._k, self._v = (self._grown(t, max(new, 2 * self._k.shape[2]))
                                    for t in (self._k, self._v))
            self._k[:, :, self.length:new] = k
            self._v[:, :, self.length:new] = v
        self.length = new
        return self.keys, self.values

    def _grown(self, t: torch.Tensor, capacity: int) -> torch.Tensor:
        b, h, _, d = t.shape
        out = t.new_empty(b, h, capacity, d)
        out[:, :, : self.length] = t[:, :, : self.length]
        return out


class MultiHeadAttention(nn.Module):
    """Multi-head (causal) self-attention with optional GQA, RoPE and a KV cache.

    Args:
        d_model: the token width d (a multiple of ``n_heads``).
        n_heads: query heads h; each has ``d_head = d_model / n_heads`` channels.
        n_kv_heads: key/value heads (divides ``n_heads``); None means ``n_heads``.
        rope: rotate queries and keys by their positions (:func:`sseq.attention.rope`).
        causal: each token sees only itself and the past (a decoder); False for an encoder.
        bias: biases in the four projections.
        rope_base: RoPE's base.
        fused: compute the attention with PyTorch's fused
            ``torch.nn.functional.scaled_dot_product_attention`` instead of the book's
            :func:`~sseq.attention.scaled_dot_product_attention` (same result, faster).
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int | None = None,
                 rope: bool = False, *, causal: bool = True, bias: bool = False,
                 rope_base: float = 10000.0, fused: bool = False):
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        for name, value in (("d_model", d_model), ("n_heads", n_heads),
                            ("n_kv_heads", n_kv_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if d_model % n_heads:
            raise ValueError(f"n_heads must divide d_model: d_model = {d_model}, "
                             f"n_heads = {n_heads}")
        if n_heads % n_kv_heads:
            raise ValueError(f"n_kv_heads must divide n_heads: n_heads = {n_heads}, "
                             f"n_kv_heads = {n_kv_heads}")
        self.d_model, self.n_heads, self.n_kv_heads = d_model, n_heads, n_kv_heads
        self.d_head = d_model // n_heads
        if rope and self.d_head % 2:
            raise ValueError(f"rope needs an even head size, got d_head = {self.d_head}")
        self.rope, self.causal, self.rope_base, self.fused = rope, causal, rope_base, fused
        self.W_q = nn.Linear(d_model, n_heads * self.d_head, bias=bias)
        self.W_k = nn.Linear(d_model, n_kv_heads * self.d_head, bias=bias)
        self.W_v = nn.Linear(d_model, n_kv_heads * self.d_head, bias=bias)
        self.W_o = nn.Linear(n_heads * self.d_head, d_model, bias=bias)

    def _heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        b, l, _ = x.shape
        return x.view(b, l, n, self.d_head).transpose(1, 2)  # (b, n, l, d_head)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None):
        """Attend over the cached tokens and the new ones.

        Args:
            x: the new tokens, ``(b, l, d_model)``.
            cache: the keys and values of the tokens before x (it is extended in place), or
                None to start a sequence.

        Returns:
            ``(y, cache)``: y ``(b, l, d_model)``, and the cache now holding every token.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (b, l, d_model) = (b, l, {self.d_model}), got "
                             f"{tuple(getattr(x, 'shape', ()))}")
        cache = KVCache() if cache is None else cache
        q = self._heads(self.W_q(x), self.n_heads)              # (b, h, l, d_head)
        k = self._heads(self.W_k(x), self.n_kv_heads)           # (b, h_kv, l, d_head)
        v = self._heads(self.W_v(x), self.n_kv_heads)
        if self.rope:  # the new tokens sit at positions cache.length, ..., cache.length + l − 1
            positions = torch.arange(cache.length, cache.length + x.shape[1], device=x.device)
            q, k = (apply_rope(t, positions, self.rope_base) for t in (q, k))
        k, v = cache.append(k, v)                               # (b, h_kv, l_past + l, d_head)
        if self.fused:
            y = self._fused(q, k, v)
        else:
            y = scaled_dot_product_attention(q, k, v, causal=self.causal)
        y = y.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)  # (b, l, h · d_head)
        return self.W_o(y), cache

    def _fused(self, q, k, v):
        l_q, l_k = q.shape[2], k.shape[2]
        gqa = self.n_kv_heads != self.n_heads
        if not self.causal or l_q == 1:  # one new query sees every key: no mask needed
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
        if l_q == l_k:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        mask = torch.ones(l_q, l_k, dtype=torch.bool, device=q.device).tril(l_k - l_q)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)


@torch.no_grad()
def step_by_step(layer: MultiHeadAttention, x: torch.Tensor, *, prompt_length: int = 0):
    """Run ``layer`` the way generation does: the prompt at once, then one token at a time.

    Args:
        layer: a causal :class:`MultiHeadAttention`.
        x: ``(b, l, d_model)``.
        prompt_length: tokens read in one call first (0: every token alone).

    Returns:
        ``(y, cache)``: y ``(b, l, d_model)``, equal to ``layer(x)[0]`` up to rounding.
    """
    if not 0 <= prompt_length <= x.shape[1]:
        raise ValueError(f"prompt_length must be in [0, l] = [0, {x.shape[1]}], "
                         f"got {prompt_length}")
    cache, ys = KVCache(), []
    if prompt_length:
        y, cache = layer(x[:, :prompt_length], cache)
        ys.append(y)
    for t in range(prompt_length, x.shape[1]):
        y, cache = layer(x[:, t:t + 1], cache)                  # one new token: (b, 1, d_model)
        ys.append(y)
    return torch.cat(ys, dim=1), cache
