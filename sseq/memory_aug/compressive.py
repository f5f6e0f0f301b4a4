"""The Compressive Transformer's two-tier memory (Rae et al., 2020).

A Transformer-XL keeps the activations of the last ``n_m`` tokens as memory and forgets
anything older. The Compressive Transformer keeps the forgotten activations too, compressed:
every block of ``c`` old activations becomes one, by a compression function ``f_c``

    mean pool   f_c(x_1 … x_c) = (1/c) Σ_i x_i
    max pool    f_c(x_1 … x_c) = max_i x_i                (per channel)
    convolution f_c(x_1 … x_c) = Σ_i W_i x_i + b          (a learned kernel of width and stride c)

so the memory spans ``n_m + c · n_cm`` tokens at the price of ``n_m + n_cm`` slots:

    memory  ← [memory, new][−n_m:]                        the recent activations, exact
    cmemory ← [cmemory, f_c(what fell out of memory)][−n_cm:]   older ones, c to a slot

Shapes: ``b`` batch, ``l`` tokens, ``d`` channels, ``c`` compression rate, ``v`` vocabulary.
"""

from __future__ import annotations

import numbers

import torch

from sseq.memory_aug.ntm import _check

__all__ = ["METHODS", "compress", "compress_ref", "distant_recall", "update_memory"]

METHODS = ("mean", "max", "conv")


def _check_rate(rate, length):
    if isinstance(rate, bool) or not isinstance(rate, numbers.Integral) or rate < 1:
        raise ValueError(f"rate must be an int >= 1, got {rate!r}")
    if length % rate:
        raise ValueError(f"the length must be a multiple of rate = {rate}, got {length}")


def compress(x: torch.Tensor, rate: int, method: str = "mean", weight=None, bias=None):
    """f_c over consecutive blocks of ``rate`` tokens: ``(b, l, d)`` → ``(b, l / c, d)``.

    Args:
        x: ``(b, l, d)``, l a multiple of ``rate``.
        rate: the compression rate c.
        method: ``"mean"``, ``"max"`` or ``"conv"``.
        weight, bias: for ``"conv"`` only: ``(d, d, c)`` (as ``torch.nn.Conv1d``) and ``(d,)``.
    """
    _check("x", x, (None, None, None), "(b, l, d)")
    _check_rate(rate, x.shape[1])
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    b, l, d = x.shape
    if method == "conv":
        _check("weight", weight, (d, d, rate), "(d, d, c)")
        out = torch.nn.functional.conv1d(x.transpose(1, 2), weight, bias, stride=rate)
        return out.transpose(1, 2)                                      # (b, l / c, d)
    blocks = x.view(b, l // rate, rate, d)                              # (b, l / c, c, d)
    return blocks.mean(2) if method == "mean" else blocks.amax(2)


def compress_ref(x, rate, method="mean", weight=None, bias=None):
    """:func:`compress` by a loop over the compressed slots, as the formulas read."""
    b, l, d = x.shape
    out = torch.zeros(b, l // rate, d, dtype=x.dtype)
    for s in range(l // rate):
        block = x[:, s * rate:(s + 1) * rate]                           # (b, c, d)
        if method == "mean":
            out[:, s] = sum(block[:, i] for i in range(rate)) / rate
        elif method == "max":
            out[:, s] = torch.stack([block[:, i] for i in range(rate)]).max(0).values
        else:
            out[:, s] = sum(block[:, i] @ weight[:, :, i].T for i in range(rate))
            if bias is not None:
                out[:, s] += bias
    return out


def update_memory(memory, cmemory, new, *, n_memory: int, n_cmemory: int, rate: int,
                  method: str = "mean", weight=None, bias=None):
    """One segment's update of the two tiers.

    Args:
        memory: recent activations ``(b, ≤ n_m, d)``; cmemory: compressed ``(b, ≤ n_cm, d)``;
        new: this segment's activations ``(b, s, d)``.
        n_memory, n_cmemory: the tiers' sizes n_m and n_cm; rate, method, weight, bias: as
        :func:`compress` (what falls out of memory must be a multiple of ``rate`` tokens).

    Returns:
        ``(memory (b, ≤ n_m, d), cmemory (b, ≤ n_cm, d))``.
    """
    _check("memory", memory, (None, None, None), "(b, n_m, d)")
    _check("cmemory", cmemory, (memory.shape[0], None, memory.shape[2]), "(b, n_cm, d)")
    _check("new", new, (memory.shape[0], None, memory.shape[2]), "(b, s, d)")
    full = torch.cat([memory, new], dim=1)
    old, memory = full[:, :max(0, full.shape[1] - n_memory)], full[:, -n_memory:]
    if old.shape[1]:
        cmemory = torch.cat([cmemory, compress(old, rate, method, weight, bias)], dim=1)
    return memory, cmemory[:, max(0, cmemory.shape[1] - n_cmemory):]


@torch.no_grad()
def distant_recall(*, rate: int, n_memory: int, n_cmemory: int, method: str = "mean",
                   length: int = 512, d: int = 64, vocab: int = 256, segment: int = 16,
                   trials: int = 8, seed: int = 0) -> torch.Tensor:
    """How well each past token can be read back from the two tiers, by its distance.

    A stream of ``length`` random tokens, each embedded as a random unit vector, is written
    segment by segment. At the end, a token held exactly in memory is recalled if its slot's
    nearest embedding is the token; a token in a compressed slot, if it is among the slot's
    ``c`` most similar embeddings (a mean of c vectors still points to each of them; a max
    keeps only the large coordinates); a token in neither tier is lost.

    Returns:
        ``(length,)``: the fraction of trials in which the token ``t + 1`` steps back is recalled.
    """
    if method == "conv":
        raise ValueError("method must be 'mean' or 'max' here (a convolution must be trained)")
    g = torch.Generator().manual_seed(seed)
    table = torch.nn.functional.normalize(torch.randn(vocab, d, generator=g), dim=-1)
    ids = torch.randint(vocab, (trials, length), generator=g)          # (b, l)
    memory, cmemory = table.new_zeros(trials, 0, d), table.new_zeros(trials, 0, d)
    for chunk in table[ids].split(segment, dim=1):
        memory, cmemory = update_memory(memory, cmemory, chunk, n_memory=n_memory,
                                        n_cmemory=n_cmemory, rate=rate, method=method)
    recalled = torch.zeros(trials, length)
    recent = ids[:, length - memory.shape[1]:]                          # (b, n_m)
    recalled[:, :memory.shape[1]] = ((memory @ table.T).argmax(-1) == recent).float().flip(1)
    n_old = cmemory.shape[1] * rate
    old = ids[:, length - memory.shape[1] - n_old:length - memory.shape[1]]  # (b, n_cm · c)
    top = (cmemory @ table.T).topk(rate, dim=-1).indices                # (b, n_cm, c)
    hit = (top.repeat_interleave(rate, dim=1) == old[:, :, None]).any(-1)
    recalled[:, memory.shape[1]:memory.shape[1] + n_old] = hit.float().flip(1)
    return recalled.mean(0)
