"""The chapter's sampling explorer: the next-character distribution and a sample, as the
temperature and top-k change.

:func:`next_token_probs` is the distribution that :func:`sseq.lm.sample_next` draws from after
a prompt; :func:`plot_next_token` draws its most likely characters; :func:`sampling_explorer`
puts sliders on both and prints a seeded sample beside the plot.
"""

from __future__ import annotations

import torch

from sseq.lm.generate import generate, top_k_logits

__all__ = ["next_token_probs", "plot_next_token", "sampling_explorer"]


@torch.no_grad()
def next_token_probs(model, prompt: str, tokenizer, temperature: float = 1.0,
                     top_k: int | None = None) -> torch.Tensor:
    """p(next character | prompt) after temperature and top-k: ``(v,)`` float64.

    Args:
        model: a language model with ``prefill``; prompt: text; tokenizer: its tokenizer.
        temperature: τ > 0; top_k: keep the k most likely (None: all).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 here, got {temperature!r}")
    if hasattr(model, "eval"):
        model.eval()
    logits, _ = model.prefill(tokenizer.encode(prompt)[None])
    return torch.softmax(top_k_logits(logits[0].double(), top_k) / temperature, dim=-1)


def _label(c: str) -> str:
    return {"\n": "\\n", " ": "␣"}.get(c, c)


def plot_next_token(ax, model, prompt: str, tokenizer, temperature: float = 1.0,
                    top_k: int | None = None, n_shown: int = 15):
    """Bars of the ``n_shown`` most likely next characters after ``prompt``.

    Returns:
        ``(ax, probs)``: the Axes and the whole distribution ``(v,)``.
    """
    from sseq.viz import PALETTE

    probs = next_token_probs(model, prompt, tokenizer, temperature, top_k)
    top = torch.topk(probs, min(n_shown, len(probs)))
    labels = [_label(tokenizer.chars[i]) for i in top.indices.tolist()]
    ax.bar(range(len(labels)), top.values.numpy(), color=PALETTE["attention"])
    ax.set_xticks(range(len(labels)), labels)
    shown = repr(prompt[-20:])
    ax.set(xlabel="next character", ylabel="probability", ylim=(0, 1),
           title=f"After {shown}: τ = {temperature:g}, top-k = {top_k or 'all'}")
    return ax, probs


def sampling_explorer(models: dict, tokenizer, prompt: str = "JULIET:\n", n_new: int = 160):
    """An ipywidgets explorer: model, temperature, top-k, seed → distribution and a sample.

    Args:
        models: name → language model (``prefill``/``step``), e.g. the chapter's three.
        tokenizer: the models' tokenizer; prompt: the text to continue; n_new: its length.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    first = next(iter(models))

    def update(model=first, temperature=1.0, top_k=0, seed=0):
        k = top_k or None
        fig, ax = plt.subplots(figsize=(8.0, 3.0))
        plot_next_token(ax, models[model], prompt, tokenizer, temperature, k)
        plt.show()
        print(generate(models[model], prompt, n_new, temperature, k, seed, tokenizer=tokenizer))

    return widgets.interactive(
        update,
        model=widgets.Dropdown(options=list(models), description="model"),
        temperature=widgets.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.1,
                                        description="temperature τ"),
        top_k=widgets.IntSlider(value=0, min=0, max=tokenizer.vocab_size,
                                description="top-k (0: all)"),
        seed=widgets.IntSlider(value=0, min=0, max=20, description="seed"),
    )
