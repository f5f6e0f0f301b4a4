"""Attention, the "keep everything" answer, and the ways back to a fixed-size state.

Chapter 6 of the book. One idea per module, from the definition to the bridge to SSMs:

===================  ==========================================================================
module               what it holds
===================  ==========================================================================
``sdpa``             scaled dot-product attention from its definition; the causal mask
``positions``        sinusoidal positions and rotary embeddings (RoPE)
``mha``              multi-head attention with grouped-query heads, RoPE and a KV cache
``flash``            exact attention by tiles with the online softmax (FlashAttention's idea)
``sparse``           sliding-window and BigBird masks, and block-sparse computation
``probes``           what a sparse pattern can reach: a retrieval probe, reach over layers
``linear``           linear attention, parallel and recurrent forms
``performer``        the Performer's positive random features for the softmax kernel
``retnet``           retention (RetNet) in parallel, recurrent and chunkwise forms; SSD
``cost``             time and memory against the length; KV-cache bytes of published models
``bench``            ``python -m sseq.bench attention``
===================  ==========================================================================

Tensors are in PyTorch's attention layout ``(b, h, l, d)``: batch, heads, length, head size
(the glossary's ``l`` is the n of attention papers). The public names are importable from
``sseq.attention`` directly.
"""

from sseq.attention.cost import (
    MAMBA_2_8B,
    MODEL_SHAPES,
    MambaShape,
    ModelShape,
    TensorMemoryMeter,
    attention_cost,
    decode_cost,
    peak_tensor_memory,
)
from sseq.attention.flash import flash_attention
from sseq.attention.linear import (
    FEATURE_MAPS,
    linear_attention,
    linear_attention_from_features,
    linear_attention_recurrent,
)
from sseq.attention.mha import KVCache, MultiHeadAttention, step_by_step
from sseq.attention.performer import (
    gaussian_projection,
    performer_attention,
    performer_error,
    positive_random_features,
    softmax_kernel_estimate,
)
from sseq.attention.positions import rope, rope_frequencies, sinusoidal_positions
from sseq.attention.probes import (
    pattern_mask,
    plot_sparsity,
    reach,
    retrieval_probe,
    sparsity_explorer,
)
from sseq.attention.retnet import retention, retention_as_selective_scan, state_sizes
from sseq.attention.sdpa import (
    causal_mask,
    repeat_kv,
    scaled_dot_product_attention,
    softmax_saturation,
)
from sseq.attention.sparse import (
    bigbird_layout,
    bigbird_mask,
    block_sparse_attention,
    expand_layout,
    sliding_window_mask,
    window_layout,
)

__all__ = [
    "FEATURE_MAPS",
    "MAMBA_2_8B",
    "MODEL_SHAPES",
    "KVCache",
    "MambaShape",
    "ModelShape",
    "MultiHeadAttention",
    "TensorMemoryMeter",
    "attention_cost",
    "bigbird_layout",
    "bigbird_mask",
    "block_sparse_attention",
    "causal_mask",
    "decode_cost",
    "expand_layout",
    "flash_attention",
    "gaussian_projection",
    "linear_attention",
    "linear_attention_from_features",
    "linear_attention_recurrent",
    "pattern_mask",
    "peak_tensor_memory",
    "performer_attention",
    "performer_error",
    "plot_sparsity",
    "positive_random_features",
    "reach",
    "repeat_kv",
    "retention",
    "retention_as_selective_scan",
    "retrieval_probe",
    "rope",
    "rope_frequencies",
    "scaled_dot_product_attention",
    "sinusoidal_positions",
    "sliding_window_mask",
    "softmax_kernel_estimate",
    "softmax_saturation",
    "sparsity_explorer",
    "state_sizes",
    "step_by_step",
    "window_layout",
]
