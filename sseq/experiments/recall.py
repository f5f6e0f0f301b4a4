"""What Chapter 8's three experiments share: train a model on fresh batches of a task.

Copying, MQAR and induction heads (:mod:`sseq.recall_tasks`) are trained the same way, as the
papers do: every step draws a **fresh** batch from the task's generator (so "training
examples" means examples seen, ``step × batch_size``), Adam at a constant learning rate, the
loss at the scored positions only, and a held-out set scored every ``eval_every`` steps with
:func:`sseq.recall_tasks.sequence_accuracy`.
"""

from __future__ import annotations

import math

import torch

from sseq.recall_tasks import sequence_accuracy
from sseq.train import compute_loss

__all__ = ["train_on_task"]


def train_on_task(model, sample, eval_set, *, steps: int, batch_size: int, lr: float,
                  seed: int, eval_every: int, clip_grad: float = 1.0) -> dict:
    """Train ``model`` on batches ``sample(batch_size, generator)`` and score ``eval_set``.

    Args:
        model: token ids ``(b, l)`` → logits ``(b, l, v)``.
        sample: ``(n, generator) → (inputs, targets)``, a task with its arguments bound.
        eval_set: ``(inputs, targets)`` scored at each record.
        steps, batch_size, lr: the training budget; seed: the batches and any randomness.
        eval_every: record every this many steps (and at the last).
        clip_grad: the gradients' global norm is clipped to it (recall tasks have loss spikes).

    Returns:
        The log: equal-length lists ``step``, ``examples`` (seen so far), ``loss`` (mean since
        the last record), ``token_acc`` and ``seq_acc`` (held out).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batches = torch.Generator().manual_seed(10_000 + seed)
    log = {key: [] for key in ("step", "examples", "loss", "token_acc", "seq_acc")}
    running, count = 0.0, 0
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for step in range(1, steps + 1):
            inputs, targets = sample(batch_size, batches)
            optimizer.zero_grad(set_to_none=True)
            loss = compute_loss(model(inputs), targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()
            running, count = running + loss.item(), count + 1
            if step % eval_every == 0 or step == steps:
                token, sequence = sequence_accuracy(model, *eval_set)
                record = {"step": step, "examples": step * batch_size,
                          "loss": running / count if math.isfinite(running) else math.nan,
                          "token_acc": token, "seq_acc": sequence}
                for key, value in record.items():
                    log[key].append(value)
                running, count = 0.0, 0
    return log


# --- reading the stored results -----------------------------------------------------------------

STYLES = {"transformer": ("attention", "-"), "transformer_rope": ("extra", "--"),
          "mamba": ("state", "-"), "lstm": ("extra2", "-"), "hybrid": ("accent", "-.")}


def plot_band(ax, x, ys, *, family: str, label: str, marker: str = "o"):
    """The mean over seeds of ``ys`` ``(seeds, points)`` against ``x``, and their range."""
    import numpy as np

    from sseq.viz import PALETTE

    color, style = PALETTE[STYLES[family][0]], STYLES[family][1]
    ys = np.asarray(ys, dtype=float)
    ax.plot(x, ys.mean(0), style, marker=marker, ms=3.5, color=color, label=label)
    ax.fill_between(x, ys.min(0), ys.max(0), color=color, alpha=0.18, lw=0)
    return ax


def logs_of(results: dict, **match) -> list[dict]:
    """The logs of the stored runs whose job has every ``key = value`` in ``match``."""
    logs = [r["log"] for r in results["runs"] if all(r[k] == v for k, v in match.items())]
    if not logs:
        raise ValueError(f"no stored runs with {match}")
    return logs
