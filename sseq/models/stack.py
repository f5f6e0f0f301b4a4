"""One constructor for every model of Chapter 8: a stack of layers named in a list.

    tokens → Embedding (+ positions) → Block(u + layer(RMSNorm(u))) per kind → RMSNorm → logits

The backbone is Chapter 5's (:class:`sseq.mamba.Block`, RMSNorm, mamba_ssm's initialisation);
only the list of layer kinds changes, so a comparison between families compares what carries
the past — a KV cache, a Mamba state, an LSTM state — and nothing else. The families:

===================  ================================================  ===================
name                 layers                                            positions
===================  ================================================  ===================
``transformer``      attention, mlp, attention, mlp (2 GPT blocks)     absolute, sinusoidal
``transformer_rope`` the same                                          rotary (RoPE)
``mamba``            mamba × 3                                         none needed
``lstm``             lstm × 3                                          none needed
===================  ================================================  ===================

At width 64 (vocabulary 32) they hold 103 k, 103 k, 102 k and 104 k parameters: two
Transformer blocks (4 d² + 8 d² = 12 d² each) weigh about three Mamba layers (about 8 d² at
``expand = 2``, ``d_state = 16``) or three LSTM layers (8 d²). A **hybrid** is any other
list, such as ``["mamba", "attention", "mamba"]``; its attention layers have no positions
by default, as in Jamba (Lieber et al., 2024), whose Mamba layers tell the attention where
it is. ``positions="absolute"`` adds the sinusoids of Vaswani et al. (2017) to the token
embeddings, scaled by √d as there; they are defined at every position, so a model trained
on short sequences can be run on long ones (and its failure there measured).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from sseq.attention import sinusoidal_positions
from sseq.mamba import Block, RMSNorm, reinit_weights
from sseq.models.layers import LAYER_KINDS, make_layer, prefill

__all__ = ["FAMILIES", "POSITIONS", "LayerStack", "ModelConfig", "StackState", "build",
           "count_parameters"]

POSITIONS = ("absolute", "rope", "none")
_TRANSFORMER = ("attention", "mlp", "attention", "mlp")
FAMILIES = {
    "transformer": (_TRANSFORMER, "absolute"),
    "transformer_rope": (_TRANSFORMER, "rope"),
    "mamba": (("mamba",) * 3, "none"),
    "lstm": (("lstm",) * 3, "none"),
}


def count_parameters(model: nn.Module) -> int:
    """The number of trainable numbers in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a :class:`LayerStack`."""

    vocab_size: int
    layers: tuple
    d_model: int = 64
    d_state: int = 16
    n_heads: int = 4
    positions: str = "none"

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "d_state", "n_heads"):
            _positive_int(name, getattr(self, name))
        if not isinstance(self.layers, tuple) or not self.layers or \
                any(kind not in LAYER_KINDS for kind in self.layers):
            raise ValueError(f"layers must be a non-empty tuple of kinds from {LAYER_KINDS}, "
                             f"got {self.layers!r}")
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {self.positions!r}")
        if "attention" in self.layers and self.d_model % (2 * self.n_heads):
            raise ValueError(f"attention needs d_model divisible by 2 · n_heads (even heads), "
                             f"got d_model = {self.d_model}, n_heads = {self.n_heads}")


@dataclass
class StackState:
    """What generation carries: the tokens read so far and each layer's state (a KV cache,
    a Mamba state, an LSTM's (h, c), or None for an MLP)."""

    position: int
    layers: list


class LayerStack(nn.Module):
    """Token ids ``(b, l)`` → next-token logits ``(b, l, v)`` through the layers of ``config``.

    Build one with :func:`build`. Generation reads a prompt with :meth:`prefill` and then one
    token at a time with :meth:`step` (the interface of :mod:`sseq.lm`'s models).
    """

    context = None  # no position table to run out of: any length can be read

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.d_model)
        self.layers = nn.ModuleList(
            Block(c.d_model, make_layer(kind, c.d_model, d_state=c.d_state, n_heads=c.n_heads,
                                        rope=c.positions == "rope")) for kind in c.layers)
        self.norm_f = RMSNorm(c.d_model)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.apply(functools.partial(reinit_weights, n_layer=len(c.layers)))
        self._table = torch.zeros(0, c.d_model)  # sinusoids, grown on demand (not a weight)

    def _embed(self, idx: torch.Tensor, start: int) -> torch.Tensor:
        if not isinstance(idx, torch.Tensor) or idx.dtype != torch.int64 or idx.ndim != 2:
            raise TypeError(f"tokens must be an int64 tensor (b, l), got "
                            f"{getattr(idx, 'dtype', type(idx).__name__)} of shape "
                            f"{tuple(getattr(idx, 'shape', ()))}")
        x = self.embedding(idx)  # (b, l, d)
        if self.config.positions != "absolute":
            return x
        end = start + idx.shape[1]
        if self._table.shape[0] < end:  # grow by doubling: a step costs O(d), not O(t d)
            self._table = sinusoidal_positions(max(end, 2 * self._table.shape[0]),
                                               self.config.d_model)
        P = self._table[start:end].to(x.device, x.dtype)  # (l, d)
        return x * math.sqrt(self.config.d_model) + P

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits at every position: ``(b, l)`` int64 → ``(b, l, vocab_size)``."""
        x = self._embed(tokens, 0)
        for block in self.layers:
            x = block(x)
        return self.lm_head(self.norm_f(x))

    def prefill(self, tokens: torch.Tensor):
        """Read a prompt ``(b, l)`` in parallel, keeping each layer's state.

        Returns:
            ``(logits, state)``: the next-token logits ``(b, v)`` and a :class:`StackState`.
        """
        x, states = self._embed(tokens, 0), []
        for block in self.layers:
            y, state = prefill(block.mixer, block.norm(x))
            x = x + y
            states.append(state)
        return self.lm_head(self.norm_f(x[:, -1])), StackState(tokens.shape[1], states)

    def step(self, token: torch.Tensor, state: StackState):
        """Read one token ``(b,)``; KV caches grow in place, other states are replaced.

        Returns:
            ``(logits, state)``: ``(b, v)`` and the new :class:`StackState`.
        """
        if not isinstance(state, StackState):
            raise TypeError(f"state must be a StackState (from prefill), got "
                            f"{type(state).__name__}")
        if len(state.layers) != len(self.layers):
            raise ValueError(f"state must hold one layer state per layer: expected "
                             f"{len(self.layers)}, got {len(state.layers)}")
        x, states = self._embed(token[:, None], state.position)[:, 0], []  # (b, d)
        for block, layer_state in zip(self.layers, state.layers, strict=True):
            x, layer_state = block.step(x, layer_state)
            states.append(layer_state)
        return self.lm_head(self.norm_f(x)), StackState(state.position + 1, states)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items())


def build(kind: str | Sequence[str], vocab_size: int, *, d_model: int = 64, d_state: int = 16,
          n_heads: int = 4, positions: str | None = None, seed: int = 0) -> LayerStack:
    """A model of a family, or a hybrid, initialised from ``seed`` (the global RNG is kept).

    Args:
        kind: a name of :data:`FAMILIES`, or a list of layer kinds (``"attention"``,
            ``"mlp"``, ``"mamba"``, ``"lstm"``) for a hybrid.
        vocab_size: token ids are ``0 .. vocab_size − 1``.
        d_model: width d; d_state: each Mamba layer's N; n_heads: attention heads.
        positions: ``"absolute"``, ``"rope"`` or ``"none"``; default: the family's (for a
            list of kinds, ``"none"``).
        seed: seeds the initial weights.

    Returns:
        A :class:`LayerStack`.
    """
    if isinstance(kind, str):
        if kind not in FAMILIES:
            raise ValueError(f"kind must be one of {sorted(FAMILIES)} or a list of layer "
                             f"kinds, got {kind!r}")
        layers, default = FAMILIES[kind]
    elif isinstance(kind, Sequence):
        layers, default = tuple(kind), "none"
    else:
        raise TypeError(f"kind must be a family name or a list of layer kinds, got "
                        f"{type(kind).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    config = ModelConfig(vocab_size, layers, d_model, d_state, n_heads,
                         default if positions is None else positions)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LayerStack(config)
