"""FLOPs: what a forward pass, a training step and a generated token cost, counted from the shapes.

A multiply-add is 2 FLOPs. Counted: every matrix product (projections, the head, attention's
QKᵀ and AV over the full l × l matrix as the fused kernel computes it), the convolutions, and
the selective scan's 6 FLOPs per state entry and step (Δ·A, Δu·B, the update Ā h + B̄u and the
readout ⟨C, h⟩). Not counted: embeddings (lookups), norms, activations, softmax and the loss,
which are a few percent of the total at these widths. A training step costs 3 forward passes
(the backward pass computes two products for each one of the forward pass: Kaplan et al., 2020).

The tests check each count against PyTorch's ``FlopCounterMode``, which sees the products at
the operator level (the scan's update is elementwise and invisible to it: only its readout,
an einsum in the reference scan, is seen).

Shapes: ``l`` tokens of one sequence; ``d`` width; ``v`` vocabulary; ``t`` position.
"""

from __future__ import annotations

from torch import nn

from sseq.lm.gpt import GPT
from sseq.lm.lstm import LSTMLM
from sseq.lm.mamba_lm import MambaLM

__all__ = ["forward_flops", "generation_flops", "train_step_flops"]

SCAN_FLOPS_PER_ENTRY = 6  # Δ·A, Δu·B, Ā ⊙ h + B̄u (2), ⟨C, h⟩ (2), per step and state entry


def _gpt(model: GPT, l: int, head_tokens: int) -> dict:
    c = model.config
    d = c.d_model
    return {"matmul": c.n_layers * 24 * l * d * d,             # QKV 6, out 2, MLP 16 (× l d²)
            "attention": c.n_layers * 4 * l * l * d,            # QKᵀ and AV, all l² pairs
            "head": 2 * head_tokens * d * c.vocab_size}


def _lstm(model: LSTMLM, l: int, head_tokens: int) -> dict:
    c = model.config
    d = c.d_model
    return {"matmul": c.n_layers * 2 * l * 4 * d * (d + d),     # 4 gates from (x_t, h_{t−1})
            "head": 2 * head_tokens * d * c.vocab_size}


def _mamba_layer(mixer, l: int, conv_outputs: int) -> dict:
    d, e, n, r = mixer.d_model, mixer.d_inner, mixer.d_state, mixer.dt_rank
    return {"matmul": 2 * l * (d * 2 * e + e * (r + 2 * n) + r * e + e * d),
            "conv": 2 * conv_outputs * e * mixer.d_conv,
            "scan": SCAN_FLOPS_PER_ENTRY * l * e * n}


def _mamba(model: MambaLM, l: int, head_tokens: int, conv_outputs: int) -> dict:
    total = {"matmul": 0, "conv": 0, "scan": 0}
    for layer in model.backbone.layers:
        for key, value in _mamba_layer(layer.mixer, l, conv_outputs).items():
            total[key] += value
    total["head"] = 2 * head_tokens * model.config.d_model * model.config.padded_vocab_size
    return total


def forward_flops(model: nn.Module, l: int, *, breakdown: bool = False):
    """FLOPs of one forward pass over a sequence of l tokens (logits at every position).

    Args:
        model: a :class:`~sseq.lm.GPT`, :class:`~sseq.lm.LSTMLM` or :class:`~sseq.lm.MambaLM`.
        l: tokens.
        breakdown: return a dict of the parts (``matmul``, ``attention``, ``conv``, ``scan``,
            ``head``) instead of their sum.
    """
    if isinstance(l, bool) or not isinstance(l, int) or l < 1:
        raise ValueError(f"l must be a positive int, got {l!r}")
    if isinstance(model, GPT):
        parts = _gpt(model, l, l)
    elif isinstance(model, LSTMLM):
        parts = _lstm(model, l, l)
    elif isinstance(model, MambaLM):
        # the causal convolution pads d_conv − 1 zeros each side and drops the extra outputs
        parts = _mamba(model, l, l, l + model.config.d_conv - 1)
    else:
        raise TypeError(f"model must be a GPT, LSTMLM or MambaLM, got {type(model).__name__}")
    return parts if breakdown else sum(parts.values())


def train_step_flops(model: nn.Module, batch_size: int, context: int) -> int:
    """FLOPs of one training step on ``batch_size`` windows of ``context`` tokens:
    3 forward passes' worth (forward, and the backward pass's two products per product)."""
    return 3 * batch_size * forward_flops(model, context)


def generation_flops(model: nn.Module, t: int, *, cache: bool = True) -> int:
    """FLOPs to produce the logits of token t + 1 once t tokens have been read.

    With ``cache`` the model reads only token t: a fixed cost for the LSTM and Mamba, and for
    the GPT its projections plus attention over the t keys and values held. Without, it
    re-reads the whole text (the GPT's last ``context`` tokens): the head runs once.

    Args:
        model: a GPT, LSTMLM or MambaLM; t: tokens read so far (t >= 1).
    """
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise ValueError(f"t must be a positive int, got {t!r}")
    if isinstance(model, GPT):
        if not cache:
            return sum(_gpt(model, min(t, model.context), 1).values())
        c = model.config
        return c.n_layers * (24 * c.d_model**2 + 4 * min(t, c.context) * c.d_model) \
            + 2 * c.d_model * c.vocab_size
    if isinstance(model, LSTMLM):
        return sum(_lstm(model, 1 if cache else t, 1).values())
    if isinstance(model, MambaLM):
        l = 1 if cache else t
        return sum(_mamba(model, l, 1, l if cache else l + model.config.d_conv - 1).values())
    raise TypeError(f"model must be a GPT, LSTMLM or MambaLM, got {type(model).__name__}")
