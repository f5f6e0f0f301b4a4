"""The cost of keeping everything, measured: time and memory against the length.

* :func:`peak_tensor_memory` measures the peak bytes of live tensors while a function runs,
  counted at the level of PyTorch operators (a ``TorchDispatchMode``): the same number on
  every machine for the same computation, so the book can quote it. It sees every tensor an
  algorithm materializes, not the private scratch space inside one kernel.
* :func:`attention_cost` times and meters whole-sequence attention against n.
* :func:`decode_cost` times one generated token against the length of the KV cache.
* :data:`MODEL_SHAPES` holds the attention shapes of a few published models, from their
  configuration files, and :class:`ModelShape` turns one into KV-cache bytes per token.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from sseq.attention.flash import flash_attention
from sseq.attention.mha import KVCache, MultiHeadAttention
from sseq.attention.sdpa import scaled_dot_product_attention

__all__ = ["MAMBA_2_8B", "METHODS", "MODEL_SHAPES", "MambaShape", "ModelShape",
           "TensorMemoryMeter", "attention_cost", "decode_cost", "peak_tensor_memory"]


class TensorMemoryMeter(TorchDispatchMode):
    """Count the bytes of tensors alive, created while the meter is active; keep the peak.

    Every operator's outputs pass through ``__torch_dispatch__``. An output whose storage is
    new is counted until the last tensor using that storage is freed (views share it).
    """

    def __init__(self):
        super().__init__()
        self.live: dict[int, list[int]] = {}  # storage address -> [bytes, tensors using it]
        self.current = self.peak = 0

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0:
                self.current -= entry[0]
                del self.live[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in _tensors((args, kwargs))}
        for t in _tensors(out):
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key == 0 or (key in inputs and key not in self.live):
                continue  # empty, or a view of memory that existed before the meter
            if key not in self.live:
                self.live[key] = [storage.nbytes(), 0]
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
            self.live[key][1] += 1
            weakref.finalize(t, self._release, key)
        return out


def _tensors(tree):
    """The tensors in nested tuples, lists and dicts (an operator's arguments or results)."""
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, (tuple, list)):
        for item in tree:
            yield from _tensors(item)
    elif isinstance(tree, dict):
        for item in tree.values():
            yield from _tensors(item)


def peak_tensor_memory(fn) -> int:
    """Peak bytes of the tensors that ``fn()`` creates and holds at one time (its result too)."""
    with TensorMemoryMeter() as meter:
        fn()
    return meter.peak


def _torch_sdpa(q, k, v, causal, block_size):
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


# name -> f(q, k, v, causal, block_size): the three ways of computing attention compared
METHODS = {
    "sseq (direct)": lambda q, k, v, causal, bs: scaled_dot_product_attention(q, k, v,
                                                                               causal=causal),
    "torch (fused)": _torch_sdpa,
    "flash (sseq, tiled)": lambda q, k, v, causal, bs: flash_attention(q, k, v, causal, bs),
}


@torch.no_grad()
def attention_cost(lengths, *, methods=tuple(METHODS), d: int = 64, n_heads: int = 1,
                   causal: bool = True, block_size: int = 256, repeat: int = 3,
                   device="cpu", seed: int = 0) -> list[dict]:
    """Time (median of ``repeat``) and peak tensor memory of attention over n tokens.

    Returns:
        One row per (method, n): ``{"method", "n", "ms", "peak_bytes"}``.
    """
    from sseq.bench import time_fn

    g = torch.Generator(device=device).manual_seed(seed)
    rows = []
    for n in lengths:
        q, k, v = (torch.randn(1, n_heads, n, d, generator=g, device=device) for _ in range(3))
        for name in methods:
            def run(fn=METHODS[name], q=q, k=k, v=v):
                return fn(q, k, v, causal, block_size)
            seconds = time_fn(run, repeat=repeat, device=device).median
            rows.append({"method": name, "n": int(n), "ms": 1e3 * seconds,
                         "peak_bytes": peak_tensor_memory(run)})
    return rows


@torch.no_grad()
def decode_cost(context_lengths, *, d_model: int = 256, n_heads: int = 4,
                n_kv_heads: int | None = None, repeat: int = 5, number: int = 10,
                seed: int = 0) -> dict:
    """Time to generate one token with a KV cache already holding n tokens, for each n.

    The cache is filled with random keys and values (the cost of one step depends only on
    how many there are), then one token is read ``repeat × number`` times.

    Returns:
        ``{"context": [...], "seconds": [...], "cache_bytes": [...]}`` (median seconds per
        token, and the bytes the cache holds at that context).
    """
    from sseq.bench import time_fn

    with torch.random.fork_rng():  # seed the layer's weights, leave the caller's RNG alone
        torch.manual_seed(seed)
        layer = MultiHeadAttention(d_model, n_heads, n_kv_heads, rope=True).eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 1, d_model, generator=g)
    out = {"context": [], "seconds": [], "cache_bytes": []}
    for n in context_lengths:
        cache = KVCache()
        shape = (1, layer.n_kv_heads, int(n), layer.d_head)
        cache.append(torch.randn(shape, generator=g), torch.randn(shape, generator=g))
        out["cache_bytes"].append(cache.nbytes)
        timing = time_fn(lambda cache=cache: layer(x, cache), repeat=repeat, number=number)
        out["context"].append(int(n))
        out["seconds"].append(timing.median)
    return out


@dataclass(frozen=True)
class ModelShape:
    """The attention shape of a published transformer, from its configuration file."""

    name: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    context: int                  # the context length it was trained for
    window: int | None = None     # a sliding window caps the cache (Mistral)
    source: str = ""

    def kv_bytes_per_token(self, bytes_per_value: int = 2) -> int:
        """2 (a key and a value) × layers × K/V heads × head size × bytes (2 for bf16)."""
        return 2 * self.n_layers * self.n_kv_heads * self.d_head * bytes_per_value

    def kv_cache_bytes(self, tokens: int, bytes_per_value: int = 2) -> int:
        """The cache after ``tokens`` tokens, per sequence (capped by the window, if any)."""
        held = tokens if self.window is None else min(tokens, self.window)
        return held * self.kv_bytes_per_token(bytes_per_value)


@dataclass(frozen=True)
class MambaShape:
    """A Mamba model's recurrent state: fixed, whatever the length."""

    name: str
    n_layers: int
    d_model: int
    d_state: int = 16
    expand: int = 2
    d_conv: int = 4
    source: str = ""

    def state_bytes(self, bytes_per_value: int = 2) -> int:
        """Per layer: the SSM state (expand·d × N) and the d_conv − 1 inputs the conv needs."""
        width = self.expand * self.d_model
        return self.n_layers * width * (self.d_state + self.d_conv - 1) * bytes_per_value


MODEL_SHAPES = (
    ModelShape("GPT-2 (124M)", 12, 12, 12, 64, 1024,
               source="openai-community/gpt2: n_layer 12, n_head 12, n_embd 768"),
    ModelShape("Llama 2 7B", 32, 32, 32, 128, 4096,
               source="meta-llama/Llama-2-7b-hf: 32 layers, 32 heads, 32 KV heads, width 4096"),
    ModelShape("Llama 2 70B", 80, 64, 8, 128, 4096,
               source="meta-llama/Llama-2-70b-hf: 80 layers, 64 heads, 8 KV heads, width 8192"),
    ModelShape("Llama 3 8B", 32, 32, 8, 128, 8192,
               source="meta-llama/Meta-Llama-3-8B: 32 layers, 32 heads, 8 KV heads, width 4096"),
    ModelShape("Mistral 7B", 32, 32, 8, 128, 32768, window=4096,
               source="mistralai/Mistral-7B-v0.1: 32 layers, 32 heads, 8 KV heads, "
                      "sliding_window 4096"),
)

MAMBA_2_8B = MambaShape("Mamba 2.8B", 64, 2560, source="state-spaces/mamba-2.8b: n_layer 64, "
                                                       "d_model 2560, d_state 16, expand 2")
