"""The chapter's addressing explorer: the NTM's four steps, one panel each, under sliders.

:func:`addressing_stages` returns the weighting after each step of
:func:`sseq.memory_aug.ntm.address` (content, gate, shift, sharpen) for a small memory whose
slots hold random patterns, two of them equal;
:func:`plot_addressing` draws them; :func:`addressing_explorer` puts sliders on β, g, the
shift and γ.
"""

from __future__ import annotations

import torch

from sseq.memory_aug import ntm

__all__ = ["addressing_explorer", "addressing_stages", "demo_memory", "plot_addressing"]


def demo_memory(n: int = 12, m: int = 6, seed: int = 0) -> torch.Tensor:
    """A ``(1, n, m)`` memory of random slots in which slots 3 and 8 hold the same pattern."""
    g = torch.Generator().manual_seed(seed)
    memory = torch.randn(1, n, m, generator=g, dtype=torch.float64)
    memory[0, 8] = memory[0, 3]
    return memory


def addressing_stages(memory, key, w_prev, beta: float, g: float, shift: float,
                      gamma: float) -> dict:
    """The weighting ``(n,)`` after each of the four steps.

    Args:
        memory: ``(1, n, m)``; key: ``(1, m)``; w_prev: ``(1, n)``.
        beta, g, gamma: the head's scalars; shift: in [−1, 1], the mass moved one slot back
            (negative) or forward (positive); the rest stays.
    """
    one = torch.ones(1, dtype=memory.dtype)
    s = torch.tensor([[max(-shift, 0.0), 1 - abs(shift), max(shift, 0.0)]], dtype=memory.dtype)
    content = ntm.content_addressing(memory, key, beta * one)
    gated = ntm.gated_interpolation(content, w_prev, g * one)
    shifted = ntm.circular_shift(gated, s)
    return {"content": content[0], "gated": gated[0], "shifted": shifted[0],
            "sharpened": ntm.sharpen(shifted, gamma * one)[0]}


def plot_addressing(axes, stages: dict):
    """Four bar plots, one per stage, on ``axes`` (a sequence of 4 Axes)."""
    from sseq.viz import PALETTE

    titles = {"content": "1. content: softmax(β cos)", "gated": "2. gate with w_prev",
              "shifted": "3. shift", "sharpened": "4. sharpen (γ)"}
    for ax, (name, w) in zip(axes, stages.items(), strict=True):
        ax.bar(range(len(w)), w.numpy(), color=PALETTE["state"])
        ax.set(title=titles[name], xlabel="slot i", ylim=(0, 1))
    axes[0].set_ylabel("weighting w(i)")
    return axes


def addressing_explorer(seed: int = 0):
    """An ipywidgets explorer over β, g, the shift and γ, for a key equal to slot 3."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    memory = demo_memory(seed=seed)
    key = memory[:, 3].clone()
    w_prev = torch.zeros(1, memory.shape[1], dtype=memory.dtype)
    w_prev[0, 0] = 1.0

    def update(beta, g, shift, gamma):  # ipywidgets passes every value
        fig, axes = plt.subplots(1, 4, figsize=(10.0, 2.6), sharey=True)
        plot_addressing(axes, addressing_stages(memory, key, w_prev, beta, g, shift, gamma))
        plt.show()

    return widgets.interactive(
        update,
        beta=widgets.FloatSlider(value=5.0, min=0.0, max=50.0, step=0.5, description="β"),
        g=widgets.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description="gate g"),
        shift=widgets.FloatSlider(value=0.0, min=-1.0, max=1.0, step=0.1, description="shift"),
        gamma=widgets.FloatSlider(value=1.0, min=1.0, max=20.0, step=0.5, description="γ"),
    )
