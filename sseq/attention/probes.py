"""What a sparse pattern lets a token reach: directly (a retrieval probe) and over layers.

A query can only retrieve a key its mask lets it see. :func:`retrieval_probe` measures this
with attention that is given the perfect query: each position asks for the token δ steps
back (its query is that token's key, sharpened), and the probe counts how often the
attention output names the right token's label. Full attention retrieves at every
distance; a window only within the window; BigBird within its window, its random blocks and
its global blocks.

Stacking layers composes masks: after L layers, token i depends on token j if a chain of L
allowed hops joins them. :func:`reach` computes this from the mask (a boolean matrix power).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sseq.attention.sdpa import scaled_dot_product_attention
from sseq.attention.sparse import bigbird_mask, sliding_window_mask

__all__ = ["PATTERNS", "pattern_mask", "plot_sparsity", "reach", "retrieval_probe",
           "sparsity_explorer"]

PATTERNS = ("full", "sliding window", "BigBird")


def pattern_mask(pattern: str, l: int, *, window: int = 32, block: int = 16, n_global: int = 1,
                 n_random: int = 2, seed: int = 0) -> torch.Tensor:
    """A two-sided ``(l, l)`` mask by name: ``"full"``, ``"sliding window"`` or ``"BigBird"``."""
    if pattern == "full":
        return torch.ones(l, l, dtype=torch.bool)
    if pattern == "sliding window":
        return sliding_window_mask(l, window, causal=False)
    if pattern == "BigBird":
        return bigbird_mask(l, block, n_global, n_random, seed)
    raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")


def reach(mask: torch.Tensor, layers: int) -> list[float]:
    """Fraction of (i, j) pairs joined by a chain of at most L allowed hops, for L = 1..layers.

    Args:
        mask: ``(l, l)`` bool, True where query i sees key j (i sees itself).
        layers: the deepest stack to compute.

    Returns:
        ``layers`` fractions; for a causal mask, compare with the causal share (l + 1) / 2l.
    """
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.dim() != 2 \
            or mask.shape[0] != mask.shape[1]:
        raise ValueError(f"mask must be a square bool tensor (l, l), got "
                         f"{getattr(mask, 'dtype', type(mask).__name__)} "
                         f"{tuple(getattr(mask, 'shape', ()))}")
    return [reached.float().mean().item() for reached in _reach_steps(mask, layers)]


def _reach_steps(mask: torch.Tensor, layers: int):
    """Yield the bool ``(l, l)`` pairs joined within 1, 2, ..., ``layers`` hops."""
    reached = mask
    yield reached
    for _ in range(layers - 1):
        reached = (reached.float() @ mask.float()) > 0    # one more layer: i → m → j
        yield reached


@torch.no_grad()
def retrieval_probe(mask: torch.Tensor, distances, *, d: int = 64, n_classes: int = 16,
                    trials: int = 4, seed: int = 0) -> dict:
    """Accuracy of retrieving the token δ steps back through one attention layer with ``mask``.

    Each token gets a random unit key and a random label (one of ``n_classes``, one-hot as
    its value). The query at position i is 4√d times the key of token i − δ, so a query that
    can see that key puts nearly all its weight on it; one that cannot guesses from the others.

    Returns:
        ``{"distance": [...], "accuracy": [...]}``, accuracy averaged over every position
        i ≥ δ and ``trials`` random draws; chance is 1 / n_classes.
    """
    l = mask.shape[0]
    g = torch.Generator().manual_seed(seed)
    out = {"distance": [], "accuracy": []}
    for delta in distances:
        if not 0 <= delta < l:
            raise ValueError(f"distances must be in [0, l) = [0, {l}), got {delta}")
        hits = total = 0
        for _ in range(trials):
            K = F.normalize(torch.randn(l, d, generator=g), dim=-1)         # (l, d)
            labels = torch.randint(n_classes, (l,), generator=g)
            V = F.one_hot(labels, n_classes).float()                      # (l, n_classes)
            rows = torch.arange(delta, l)
            Q = 4 * math.sqrt(d) * K[rows - delta]                          # (l − δ, d)
            y = scaled_dot_product_attention(Q[None, None], K[None, None], V[None, None],
                                             mask=mask[rows], scale=1.0)[0, 0]
            hits += (y.argmax(-1) == labels[rows - delta]).sum().item()
            total += len(rows)
        out["distance"].append(int(delta))
        out["accuracy"].append(hits / total)
    return out


def plot_sparsity(axes, pattern: str = "BigBird", *, l: int = 256, window: int = 16,
                  block: int = 16, n_global: int = 1, n_random: int = 2, layers: int = 2,
                  seed: int = 0):
    """Left: the mask of ``pattern``; right: what each token reaches after ``layers`` layers.

    Args:
        axes: two matplotlib Axes.
        pattern, window, block, n_global, n_random, seed: see :func:`pattern_mask`.
        layers: depth of the stack whose reach is drawn.

    Returns:
        ``(axes, fractions)``: the fraction of pairs reached after 1..``layers`` layers.
    """
    from matplotlib.colors import ListedColormap

    from sseq.viz import PALETTE

    mask = pattern_mask(pattern, l, window=window, block=block, n_global=n_global,
                        n_random=n_random, seed=seed)
    steps = list(_reach_steps(mask, layers))
    fractions, reached = [r.float().mean().item() for r in steps], steps[-1]
    panels = ((axes[0], mask, f"{pattern}: who sees whom (1 layer)", PALETTE["state"]),
              (axes[1], reached, f"reach after {layers} layer(s): {fractions[-1]:.0%} of pairs",
               PALETTE["accent"]))
    for ax, image, title, color in panels:
        ax.imshow(image.float().numpy(), cmap=ListedColormap(["white", color]), vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set(xlabel="key position j", ylabel="query position i", title=title)
        ax.grid(False)
    return axes, fractions


def sparsity_explorer(l: int = 256):
    """An ipywidgets explorer: pattern, window, global and random blocks, depth → the reach."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    def update(pattern, window, n_global, n_random, layers):  # every value comes from a widget
        fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.4))
        plot_sparsity(axes, pattern, l=l, window=window, n_global=n_global,
                      n_random=n_random, layers=layers)
        plt.show()

    return widgets.interactive(
        update,
        pattern=widgets.Dropdown(options=list(PATTERNS), value="BigBird", description="pattern"),
        window=widgets.IntSlider(value=16, min=1, max=64, description="window (tokens)"),
        n_global=widgets.IntSlider(value=1, min=0, max=4, description="global blocks"),
        n_random=widgets.IntSlider(value=2, min=0, max=6, description="random blocks"),
        layers=widgets.IntSlider(value=2, min=1, max=6, description="layers"),
    )
