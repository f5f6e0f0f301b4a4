"""The map: every architecture of the book by memory held, cost per token and what it recalls.

After ``t`` tokens, a model predicting token ``t + 1`` holds some numbers about the past (its
*memory*) and spends some FLOPs on the new token. The book has met three answers:

* **a running state** (LSTM, S4D, Mamba, linear attention): memory and cost independent of t;
  recall is lossy, bounded by the state's size (Chapter 1's capacity bound);
* **keep everything and attend** (the Transformer's KV cache): memory and cost grow with t;
  any token in the window is recalled exactly;
* **store it elsewhere and look it up** (this chapter): a datastore, a slot memory, a
  compressed memory or a latent array, each trading size, cost and exactness differently.

:func:`atlas` counts both quantities from the shapes (forward FLOPs, a multiply-add = 2;
projections, attention scores and reads, scans, searches; not norms or activations), for
one setting of the shapes, the book's scale by default. :func:`measured_costs` measures the
conditional-computation layers' parameters and FLOPs per token with PyTorch's counter.

Shapes: ``t`` tokens read so far, ``d`` width, ``L`` layers.
"""

from __future__ import annotations

import torch

__all__ = ["FAMILIES", "atlas", "forward_flops", "measured_costs", "plot_atlas"]

FAMILIES = ("running state", "keep everything", "store elsewhere")
# where a label would cover a neighbour's: (dx, dy) in points, horizontal and vertical alignment
LABEL_PLACE = {"Linear attention": (-5, 3, "right", "bottom"),
               "Perceiver latents": (60, -6, "left", "top")}


def _row(name, family, chapter, memory, flops, recall):
    return {"name": name, "family": family, "chapter": chapter, "memory": int(memory),
            "flops": int(flops), "recall": recall}


def atlas(t: int = 4096, *, d: int = 128, n_layers: int = 4, n_heads: int = 4,
          d_state: int = 16, window: int = 256, n_memory: int = 512, n_cmemory: int = 512,
          rate: int = 4, n_slots: int = 128, n_datastore: int = 1_003_840,
          n_latents: int = 64) -> list[dict]:
    """One row per architecture: ``memory`` (numbers held after t tokens, all layers),
    ``flops`` (forward FLOPs for token t + 1, without the vocabulary head), ``recall``.

    The kNN-LM's search is the brute-force one of :mod:`sseq.memory_aug.knn_lm`; an
    approximate index (FAISS) costs far less per query, not less memory.
    """
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise ValueError(f"t must be an int >= 1, got {t!r}")
    L, e = n_layers, 2 * d                                   # Mamba's expanded width E·d
    mlp_attn = 24 * d * d                                    # QKV, output, 4d MLP: per layer
    kv = 2 * d                                               # a key and a value per token
    ctx = min(t, n_memory + n_cmemory)
    return [
        _row("LSTM", FAMILIES[0], 2, L * 2 * d, L * 16 * d * d, "lossy: 2dL numbers"),
        _row("S4D / Mamba", FAMILIES[0], 5, L * e * d_state,
             L * (6 * e * d + 4 * e * d_state + 6 * e * d_state), "lossy, selective"),
        _row("Linear attention", FAMILIES[0], 6, L * d * d // n_heads,
             L * (mlp_attn + 4 * d * d // n_heads), "lossy: d²/h per layer"),
        _row("Transformer (KV cache)", FAMILIES[1], 6, L * kv * t,
             L * (mlp_attn + 4 * d * t), "exact, every token"),
        _row("Sliding window", FAMILIES[1], 6, L * kv * min(t, window),
             L * (mlp_attn + 4 * d * min(t, window)), f"exact, last {window} only"),
        _row("Compressive Transformer", FAMILIES[2], 9, L * kv * ctx,
             L * (mlp_attn + 4 * d * ctx), f"exact {n_memory}, lossy {rate * n_cmemory} more"),
        _row("NTM", FAMILIES[2], 9, n_slots * d // 4 + 2 * d,
             16 * d * d + 8 * n_slots * d // 4, f"exact, {n_slots} slots"),
        _row("kNN-LM (Transformer + datastore)", FAMILIES[2], 9, L * kv * t + n_datastore * d,
             L * (mlp_attn + 4 * d * t) + 3 * n_datastore * d, "exact lookup of training text"),
        _row("Perceiver latents", FAMILIES[2], 9, L * n_latents * d,
             L * (mlp_attn + 4 * n_latents * d), f"lossy: {n_latents} latents"),
    ]


def plot_atlas(ax, rows: list[dict], *, t: int | None = None):
    """Memory (x) against FLOPs per token (y), both log scales, coloured by family."""
    from sseq.viz import PALETTE

    colors = dict(zip(FAMILIES, (PALETTE["state"], PALETTE["attention"], PALETTE["accent"]),
                      strict=True))
    for family in FAMILIES:
        pts = [r for r in rows if r["family"] == family]
        ax.scatter([r["memory"] for r in pts], [r["flops"] for r in pts], s=40,
                   color=colors[family], label=family, zorder=3)
    for r in rows:
        dx, dy, ha, va = LABEL_PLACE.get(r["name"], (5, 3, "left", "bottom"))
        far = abs(dx) > 10  # a label set apart gets a line to its point
        ax.annotate(f"{r['name']}\n({r['recall']})", (r["memory"], r["flops"]),
                    xytext=(dx, dy), textcoords="offset points", fontsize=7, ha=ha, va=va,
                    arrowprops={"arrowstyle": "-", "lw": 0.6} if far else None)
    where = f" after t = {t:,} tokens" if t else ""
    ax.set(xscale="log", yscale="log", xlabel=f"numbers held about the past{where}",
           ylabel="forward FLOPs per token", title="Three ways to carry the past")
    ax.legend(loc="lower right", fontsize=8)
    return ax


def forward_flops(fn) -> int:
    """The FLOPs PyTorch's counter sees while ``fn()`` runs (no gradients)."""
    from torch.utils.flop_counter import FlopCounterMode  # imports Triton: only when used

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


def measured_costs(*, d: int = 128, l: int = 256, n_experts: int = 8, fraction: float = 0.125,
                   n_steps: int = 4, n_latents: int = 32, capacity_factor: float = 1.25,
                   seed: int = 0) -> list[dict]:
    """Parameters and measured forward FLOPs per token of the conditional layers, each beside
    the dense layer it replaces (one sequence of ``l`` tokens of width ``d``).

    Each row also has ``dropped``: for the Switch layer, the fraction of the ``l`` tokens that
    overflowed their expert at ``capacity_factor`` and skipped it (they cost no expert FLOPs,
    which is why a Switch layer can measure below the dense one); ``None`` for the others."""
    from sseq.lm.gpt import MLP, Block, GPTConfig
    from sseq.memory_aug.depth import UniversalTransformer, mod_route
    from sseq.memory_aug.perceiver import PerceiverLatents
    from sseq.memory_aug.switch import SwitchFFN

    torch.manual_seed(seed)
    x = torch.randn(1, l, d)
    config = GPTConfig(2, l, 1, 4, d)
    block, mlp = Block(config, fused=False), MLP(d)  # the book's attention: countable
    switch = SwitchFFN(d, 4 * d, n_experts, capacity_factor=capacity_factor)
    router = torch.nn.Linear(d, 1)
    ut = UniversalTransformer(Block(config, fused=False), d, n_steps)
    stack = torch.nn.ModuleList(Block(config, fused=False) for _ in range(n_steps))
    perceiver = PerceiverLatents(n_latents, d)

    def params(*modules):
        return sum(p.numel() for m in modules for p in m.parameters())

    def run_stack():
        h = x
        for b in stack:
            h = b(h)[0]
        return h

    cases = [
        ("dense MLP (4d)", params(mlp), lambda: mlp(x)),
        (f"Switch, {n_experts} experts", params(switch), lambda: switch(x)),
        ("Transformer block", params(block), lambda: block(x)),
        (f"Mixture-of-Depths block, {fraction:.1%} routed", params(block, router),
         lambda: mod_route(x, router(x)[..., 0], fraction, lambda h: block(h)[0] - h)),
        (f"{n_steps} distinct blocks", params(stack), run_stack),
        (f"Universal Transformer, 1 block × {n_steps}", params(ut), lambda: ut(x)),
        (f"self-attention over l = {l}", params(block.attn), lambda: block.attn(x)),
        (f"Perceiver, {n_latents} latents", params(perceiver), lambda: perceiver(x)),
    ]
    with torch.no_grad():
        dropped = 1 - float(switch.route(x.flatten(0, 1))["kept"].float().mean())
    return [{"layer": name, "parameters": p, "flops_per_token": forward_flops(fn) / l,
             "dropped": dropped if name.startswith("Switch") else None}
            for name, p, fn in cases]
