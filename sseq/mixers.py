"""Token models that differ in one place only: the layer that mixes information across time.

Mamba's Table 1 compares *architectures* (with or without the gate) and *layers* (LTI S4 or
selective S6) on the selective-copying task. To compare like with like, every model here is
the same backbone,

    tokens → Embedding → n_layer × Block(u + mixer(RMSNorm(u))) → RMSNorm → Linear → logits,

and only the mixer changes (``make_model``'s ``kind``):

==============  ============================================================  ============
kind            mixer                                                         Table 1 row
==============  ============================================================  ============
``"s4d"``       in_proj → conv → SiLU → **S4D** (LTI) → out_proj               S4, no gate
``"s4d_gate"``  the same, times SiLU(z) before out_proj                       Mamba arch., S4
``"s6"``        in_proj → conv → SiLU → **selective scan** → out_proj          S6, no gate
``"mamba"``     the same, times SiLU(z): :class:`sseq.mamba.Mamba`            Mamba
==============  ============================================================  ============

and ``"lstm"``, a one-layer LSTM on one-hot tokens (:class:`sseq.nn.RecurrentHead`) whose
hidden size is chosen to match the parameter count of ``"mamba"`` at the same width.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from sseq.mamba import Block, Mamba, RMSNorm, reinit_weights
from sseq.nn import RecurrentHead
from sseq.ssm import S4D, S4DConfig

__all__ = ["KINDS", "S4DMixer", "TokenModel", "count_parameters", "make_model"]

KINDS = ("s4d", "s4d_gate", "s6", "mamba", "lstm")


def count_parameters(model: nn.Module) -> int:
    """The number of trainable numbers in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class S4DMixer(nn.Module):
    """Mamba's block with the selective scan replaced by a linear time-invariant S4D layer.

    ``(b, l, d_model)`` → ``(b, l, d_model)``. The S4D layer (:class:`sseq.ssm.S4D`, trained
    as a convolution) has one Δ, A, C per channel, fixed once trained: its kernel cannot
    depend on the input. ``d_state`` counts real state dimensions, as in Mamba: S4D keeps
    d_state / 2 complex modes, each standing for a conjugate pair.
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, *,
                 gate: bool = True, init: str = "lin"):
        super().__init__()
        d = int(expand * d_model)
        self.gate = gate
        self.in_proj = nn.Linear(d_model, 2 * d if gate else d, bias=False)
        self.conv1d = nn.Conv1d(d, d, d_conv, groups=d, padding=d_conv - 1)
        self.ssm = S4D(S4DConfig(d, d_state, init))
        self.out_proj = nn.Linear(d, d_model, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        l = u.shape[1]
        xz = self.in_proj(u)
        x, z = xz.chunk(2, dim=-1) if self.gate else (xz, None)  # (b, l, d)
        x = F.silu(self.conv1d(x.transpose(1, 2))[..., :l]).transpose(1, 2)  # (b, l, d)
        y = self.ssm(x)  # (b, l, d): a convolution whose kernel ignores the input
        return self.out_proj(y if z is None else y * F.silu(z))


class TokenModel(nn.Module):
    """Embedding → ``n_layer`` pre-norm residual blocks → RMSNorm → a linear readout.

    Args:
        vocab_size: number of token ids.
        d_model: width of the residual stream.
        n_layer: number of blocks.
        mixer: a function of no arguments returning a fresh mixer ``(b, l, d_model)`` →
            ``(b, l, d_model)``, called once per block.

    ``(b, l)`` int64 tokens → logits ``(b, l, vocab_size)``.
    """

    def __init__(self, vocab_size: int, d_model: int, n_layer: int, mixer):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList(Block(d_model, mixer()) for _ in range(n_layer))
        self.norm_f = RMSNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.apply(functools.partial(reinit_weights, n_layer=n_layer))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.int64 or \
                tokens.ndim != 2:
            raise TypeError(f"tokens must be an int64 tensor (b, l), got "
                            f"{getattr(tokens, 'dtype', type(tokens).__name__)} of shape "
                            f"{tuple(getattr(tokens, 'shape', ()))}")
        x = self.embedding(tokens)  # (b, l, d_model)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm_f(x))  # (b, l, vocab_size)


def _lstm_hidden(vocab_size: int, n_params: int) -> int:
    """The hidden size h of a one-hot LSTM + readout with about ``n_params`` parameters:
    4h(vocab + h) + 8h (two biases) + (h + 1)·vocab = n_params, solved for h."""
    a, b, c = 4, 4 * vocab_size + 8 + vocab_size, vocab_size - n_params
    return max(1, round((-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)))


def make_model(kind: str, vocab_size: int, *, d_model: int = 32, n_layer: int = 2,
               d_state: int = 16, expand: int = 2, seed: int = 0) -> nn.Module:
    """One of the chapter's token models, initialised from ``seed`` (the global RNG is kept).

    Args:
        kind: one of :data:`KINDS` (see the module docstring).
        vocab_size: number of token ids.
        d_model, n_layer, d_state, expand: the backbone's width and depth, the state size N
            per channel and the inner width factor of the mixers.
        seed: seeds the initial weights.

    Returns:
        A module mapping ``(b, l)`` tokens to logits ``(b, l, vocab_size)``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    mixers = {
        "s4d": lambda: S4DMixer(d_model, d_state, expand=expand, gate=False),
        "s4d_gate": lambda: S4DMixer(d_model, d_state, expand=expand, gate=True),
        "s6": lambda: Mamba(d_model, d_state, expand=expand, gate=False),
        "mamba": lambda: Mamba(d_model, d_state, expand=expand, gate=True),
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind != "lstm":
            return TokenModel(vocab_size, d_model, n_layer, mixers[kind])
        target = count_parameters(TokenModel(vocab_size, d_model, n_layer, mixers["mamba"]))
        return RecurrentHead("lstm", vocab_size, _lstm_hidden(vocab_size, target), vocab_size,
                             readout="all", backend="torch")
