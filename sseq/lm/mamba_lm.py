"""A Mamba language model (Gu & Dao, 2023), laid out as state-spaces/mamba's ``MambaLMHeadModel``.

    h = Embedding(x)                                  (b, l, d)
    h = h + Mamba(RMSNorm(h))     n_layers times      Chapter 5's block (:class:`sseq.mamba.Block`)
    logits = RMSNorm(h) E^T                           the head shares the embedding E

Each layer remembers the past in a fixed-size state (a ``(d_inner, d_state)`` matrix per
sequence, plus the last ``d_conv − 1`` inputs of its convolution), so, like the LSTM, a new
token costs the same at every position: :meth:`MambaLM.step`. Training reads whole windows with
the selective scan (on the CPU the fused ``"cpu"`` backend; on a GPU the Triton kernel).

**Published checkpoints.** The module names and shapes are those of ``mamba_ssm``'s
``MambaLMHeadModel`` — ``backbone.embedding.weight``, ``backbone.layers.{i}.mixer.*``
(``in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``, ``out_proj``),
``backbone.layers.{i}.norm.weight``, ``backbone.norm_f.weight`` and ``lm_head.weight`` (tied to
the embedding) — so a state dict saved by the reference implementation loads with
``strict=True``. :meth:`MambaLM.from_mamba_ssm_config` builds the model a ``config.json`` of the
reference describes (for instance ``{"d_model": 768, "n_layer": 24, "vocab_size": 50277,
"ssm_cfg": {}, "rms_norm": true, "pad_vocab_size_multiple": 8, ...}``). The reference's
``residual_in_fp32`` and ``fused_add_norm`` change how it computes, not what: here the residual
stream has the model's dtype and the add and the norm are two operations.

Shapes: ``b`` batch, ``l`` length, ``d`` = ``d_model``, ``v`` vocabulary.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import torch
from torch import nn

from sseq.mamba import Block, Mamba, MambaState, RMSNorm, reinit_weights

__all__ = ["MambaLM", "MambaLMConfig", "MixerModel"]


@dataclass(frozen=True)
class MambaLMConfig:
    """The shape of a :class:`MambaLM` (the vocabulary before padding)."""

    vocab_size: int
    d_model: int
    n_layers: int
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    pad_vocab_size_multiple: int = 1
    norm_epsilon: float = 1e-5

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "n_layers", "d_state", "d_conv", "expand",
                     "pad_vocab_size_multiple"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")

    @property
    def padded_vocab_size(self) -> int:
        """The embedding's rows: the vocabulary rounded up to the padding multiple."""
        m = self.pad_vocab_size_multiple
        return -(-self.vocab_size // m) * m


class MixerModel(nn.Module):
    """The backbone: embedding, residual Mamba blocks, final RMSNorm (mamba_ssm's names)."""

    def __init__(self, config: MambaLMConfig, backend: str = "auto"):
        super().__init__()
        d = config.d_model
        self.embedding = nn.Embedding(config.padded_vocab_size, d)
        self.layers = nn.ModuleList(
            Block(d, Mamba(d, config.d_state, config.d_conv, config.expand, backend=backend),
                  eps=config.norm_epsilon)
            for _ in range(config.n_layers))
        self.norm_f = RMSNorm(d, eps=config.norm_epsilon)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """``(b, l)`` ids → the final normalized hidden states ``(b, l, d)``."""
        h = self.embedding(idx)
        for layer in self.layers:
            h = layer(h)
        return self.norm_f(h)


def _mamba_ssm_block_shape(config: dict) -> dict:
    """The blocks' ``d_state``, ``d_conv``, ``expand`` of a state-spaces/mamba ``config.json``,
    after refusing what :class:`MambaLM` does not build."""
    for key, what in (("rms_norm", "only RMSNorm models are built"),
                      ("tie_embeddings", "the head here is the embedding")):
        if not config.get(key, True):
            raise ValueError(f"config must have {key} = true ({what}), got {config[key]!r}")
    for key, none in (("d_intermediate", 0), ("attn_layer_idx", [])):
        if config.get(key):
            raise ValueError(f"config must have {key} = {none} (only Mamba blocks are built), "
                             f"got {config[key]!r}")
    ssm_cfg = dict(config.get("ssm_cfg") or {})
    layer = ssm_cfg.pop("layer", "Mamba1")
    if layer != "Mamba1":
        raise ValueError(f"only Mamba-1 models are built: ssm_cfg must have layer = 'Mamba1', "
                         f"got {layer!r}")
    unknown = set(ssm_cfg) - {"d_state", "d_conv", "expand"}
    if unknown:
        raise ValueError(f"ssm_cfg has keys this model does not take: {sorted(unknown)}")
    return ssm_cfg


class MambaLM(nn.Module):
    """A Mamba language model: token ids ``(b, l)`` → next-token logits ``(b, l, v)``.

    Args:
        vocab_size: v (the logits have v columns; the embedding may have padding rows).
        d_model: width d of the residual stream; n_layers: Mamba blocks.
        d_state, d_conv, expand: each block's state size N, convolution width, and inner
            width ``expand · d`` (see :class:`sseq.mamba.Mamba`).
        pad_vocab_size_multiple: round the embedding's rows up to a multiple of this (the
            published models use 8).
        norm_epsilon: the RMSNorms' ε.
        backend: the selective scan's backend (``"auto"``: the fused ``"cpu"`` loop on a CPU).
    """

    context = None  # no window: the state carries the whole past

    def __init__(self, vocab_size: int, d_model: int, n_layers: int, d_state: int = 16,
                 d_conv: int = 4, expand: int = 2, *, pad_vocab_size_multiple: int = 1,
                 norm_epsilon: float = 1e-5, backend: str = "auto"):
        super().__init__()
        self.config = MambaLMConfig(vocab_size, d_model, n_layers, d_state, d_conv, expand,
                                    pad_vocab_size_multiple, norm_epsilon)
        self.backbone = MixerModel(self.config, backend)
        self.lm_head = nn.Linear(d_model, self.config.padded_vocab_size, bias=False)
        # mamba_ssm's initialisation: embedding N(0, 0.02²), zero biases (not Δ's), the
        # out_proj of each block scaled by 1/√n_layers
        self.apply(functools.partial(reinit_weights, n_layer=n_layers))
        self.lm_head.weight = self.backbone.embedding.weight  # tied

    @classmethod
    def from_mamba_ssm_config(cls, config: dict, *, backend: str = "auto") -> MambaLM:
        """The model that a ``config.json`` of state-spaces/mamba describes.

        A key the file leaves out takes the value of the reference's ``MambaConfig``
        (``rms_norm`` true, ``pad_vocab_size_multiple`` 8, ``tie_embeddings`` true,
        ``d_intermediate`` 0, no attention layers, an empty ``ssm_cfg``), except ``vocab_size``,
        ``d_model`` and ``n_layer``, which must be given. ``ssm_cfg`` may set ``d_state``,
        ``d_conv`` and ``expand``; ``norm_epsilon`` (1e-5 in the reference) may be given too.
        A configuration of another model (LayerNorm, an untied head, Mamba-2, MLP or attention
        layers) is refused with a ValueError rather than built wrongly.
        """
        missing = [key for key in ("vocab_size", "d_model", "n_layer") if key not in config]
        if missing:
            raise ValueError(f"config must give vocab_size, d_model and n_layer, missing {missing}")
        return cls(config["vocab_size"], config["d_model"], config["n_layer"],
                   **_mamba_ssm_block_shape(config),
                   pad_vocab_size_multiple=config.get("pad_vocab_size_multiple", 8),
                   norm_epsilon=config.get("norm_epsilon", 1e-5), backend=backend)

    def _check(self, idx, ndim):
        if not isinstance(idx, torch.Tensor) or idx.ndim != ndim or idx.is_floating_point():
            want = "(b, l)" if ndim == 2 else "(b,)"
            raise ValueError(f"token ids must be an integer tensor of shape {want}, got "
                             f"{type(idx).__name__} {tuple(getattr(idx, 'shape', ()))}")

    def _check_states(self, states):
        if isinstance(states, MambaState) or not isinstance(states, (list, tuple)):
            raise TypeError(f"states must be a list of MambaState (from prefill), got "
                            f"{type(states).__name__}")
        if len(states) != len(self.backbone.layers):
            raise ValueError(f"states must hold one MambaState per layer: expected "
                             f"{len(self.backbone.layers)}, got {len(states)}")
        for i, state in enumerate(states):
            if not isinstance(state, MambaState):
                raise TypeError(f"states[{i}] must be a MambaState, got {type(state).__name__}")

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(h)[..., : self.config.vocab_size]  # drop the padding rows

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits of the next token at every position: ``(b, l)`` → ``(b, l, v)``."""
        self._check(idx, 2)
        return self._logits(self.backbone(idx))

    def prefill(self, idx: torch.Tensor):
        """Read a prompt ``(b, l)`` with the parallel scan, keeping each layer's final state.

        Returns:
            ``(logits, states)``: the next-token logits ``(b, v)`` and one
            :class:`~sseq.mamba.MambaState` per layer.
        """
        self._check(idx, 2)
        h, states = self.backbone.embedding(idx), []
        for layer in self.backbone.layers:
            y, state = layer.mixer(layer.norm(h), return_state=True)
            h = h + y
            states.append(state)
        return self._logits(self.backbone.norm_f(h[:, -1])), states

    def step(self, token: torch.Tensor, states: list[MambaState]):
        """Read one token ``(b,)`` into the layers' states: constant time and memory.

        Returns:
            ``(logits, states)``: ``(b, v)`` and the new states.
        """
        self._check(token, 1)
        self._check_states(states)
        h, new = self.backbone.embedding(token), []
        for layer, state in zip(self.backbone.layers, states, strict=True):
            h, state = layer.step(h, state)
            new.append(state)
        return self._logits(self.backbone.norm_f(h)), new

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items())
