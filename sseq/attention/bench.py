"""``python -m sseq.bench attention``: attention's cost against the length, as tables.

1. Whole-sequence causal attention, one head of size 64: the book's direct form, PyTorch's
   fused kernel and the tiled online softmax (:func:`sseq.attention.flash_attention`) —
   median time and peak tensor memory against n.
2. One generated token with a KV cache against the context length (one layer).
3. KV-cache bytes per token of published models, beside Mamba's fixed state.

``--device cuda`` runs the first table on the GPU, where memory is the CUDA allocator's peak.
"""

from __future__ import annotations

import torch

from sseq.attention.cost import MAMBA_2_8B, METHODS, MODEL_SHAPES, attention_cost, decode_cost

__all__ = ["main"]


def _cuda_peak(fn) -> int:
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def _whole_sequence_table(args) -> list[dict]:
    device = args.device
    top = 12 if args.quick else 15
    direct_top = min(top, 13 if device == "cpu" else 15)  # the direct form holds ~4 n² floats
    repeat = 3 if args.quick else 5
    rows = []
    for method in METHODS:
        last = direct_top if method == "sseq (direct)" else top
        rows += attention_cost([2**p for p in range(8, last + 1)], methods=(method,),
                               device=device, repeat=repeat)
    if device == "cuda":  # the allocator sees everything, including kernels' workspace
        for row in rows:
            g = torch.Generator(device=device).manual_seed(0)
            q, k, v = (torch.randn(1, 1, row["n"], 64, generator=g, device=device)
                       for _ in range(3))
            with torch.no_grad():
                row["peak_bytes"] = _cuda_peak(
                    lambda q=q, k=k, v=v, row=row: METHODS[row["method"]](q, k, v, True, 256))
    rows.sort(key=lambda r: (r["n"], list(METHODS).index(r["method"])))
    return [{"method": r["method"], "n": r["n"], "ms": r["ms"],
             "peak MiB": r["peak_bytes"] / 2**20} for r in rows]


def main(args) -> None:
    """Print the three tables (``args.device``, ``args.quick`` from :mod:`sseq.bench`)."""
    from sseq.bench import format_table

    print(f"## Causal attention over n tokens, one head, d = 64, float32, on {args.device}")
    print(format_table(_whole_sequence_table(args)))
    contexts = [2**p for p in range(8, 14 if args.quick else 17, 2)]
    cost = decode_cost(contexts)
    print("\n## One generated token with a KV cache (one layer: d_model 256, 4 heads), CPU")
    print(format_table([{"context": n, "us/token": 1e6 * s, "cache KiB": b / 2**10}
                        for n, s, b in zip(cost["context"], cost["seconds"],
                                           cost["cache_bytes"], strict=True)]))
    print("\n## KV cache of published models (bf16), against Mamba's fixed state")
    rows = [{"model": m.name, "KiB/token": m.kv_bytes_per_token() / 2**10,
             "GiB at 4,096 tokens": m.kv_cache_bytes(4096) / 2**30,
             "GiB at 32,768 tokens": m.kv_cache_bytes(32768) / 2**30} for m in MODEL_SHAPES]
    mamba = MAMBA_2_8B.state_bytes() / 2**30
    rows.append({"model": MAMBA_2_8B.name + " (state)", "KiB/token": 0.0,
                 "GiB at 4,096 tokens": mamba, "GiB at 32,768 tokens": mamba})
    print(format_table(rows))
