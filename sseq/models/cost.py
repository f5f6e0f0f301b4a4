"""What a Chapter 8 model costs, measured: training, and generating one more token.

The ledger that closes the comparison needs three numbers per model, each *measured* on the
model itself rather than read off a formula:

* :func:`state_numbers` — how many numbers generation carries after reading ``t`` tokens
  (every tensor in the state returned by ``prefill``, counted): ``2 · t · d`` per attention
  layer's KV cache, a constant for a Mamba or LSTM state;
* :func:`step_seconds` — the median time of one :meth:`~sseq.models.LayerStack.step` after a
  prompt of ``t`` tokens;
* :func:`training_seconds` — the median time of one training step on a batch
  (:func:`sseq.train.time_training_step`).

Shapes: ``b`` batch, ``t`` tokens read.
"""

from __future__ import annotations

import torch

from sseq.attention import KVCache
from sseq.bench import time_fn
from sseq.train import time_training_step

__all__ = ["count_state", "state_numbers", "step_seconds", "training_seconds"]


def count_state(state) -> int:
    """The numbers held in a (nested) generation state: tensors, KV caches, lists, tuples."""
    if state is None:
        return 0
    if isinstance(state, torch.Tensor):
        return state.numel()
    if isinstance(state, KVCache):
        return 0 if state.length == 0 else state.keys.numel() + state.values.numel()
    if isinstance(state, (list, tuple)):
        return sum(count_state(s) for s in state)
    if hasattr(state, "layers"):  # a StackState
        return count_state(state.layers)
    if hasattr(state, "__dict__"):  # a Mamba state: a small dataclass of tensors
        return count_state(list(vars(state).values()))
    raise TypeError(f"state must hold tensors, got {type(state).__name__}")


def _check_t(t) -> None:
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise ValueError(f"t must be an int >= 1, got {t!r}")


def _prompt(model, t: int, seed: int) -> torch.Tensor:
    _check_t(t)
    g = torch.Generator().manual_seed(seed)
    return torch.randint(model.config.vocab_size, (1, t), generator=g)  # (1, t)


@torch.no_grad()
def state_numbers(model, t: int, *, seed: int = 0) -> int:
    """The numbers a model carries to generate token ``t + 1`` after reading ``t`` (one
    sequence): measured by counting the state that ``prefill`` returns."""
    _, state = model.prefill(_prompt(model, t, seed))
    return count_state(state)


@torch.no_grad()
def step_seconds(model, t: int, *, repeat: int = 7, seed: int = 0) -> float:
    """Median seconds to read one more token and predict the next, after ``t`` tokens (one
    sequence; each timed step reads the same token into the same state)."""
    _check_t(t)  # t itself, not the t + 1 tokens drawn below
    text = _prompt(model, t + 1, seed)
    was_training = model.training
    model.eval()
    _, state = model.prefill(text[:, :t])
    token = text[:, t]
    # a KV cache grows by one key per call: after ``repeat + 1`` calls, t + repeat + 1 keys
    median = time_fn(lambda: model.step(token, state), repeat=repeat, warmup=1).median
    model.train(was_training)
    return median


def training_seconds(model, inputs: torch.Tensor, targets: torch.Tensor, *,
                     repeat: int = 5) -> float:
    """Median seconds of one training step (forward, backward, Adam) on ``(inputs, targets)``
    ``(b, l)``; the model's weights are left untouched."""
    return time_training_step(model, inputs, targets, repeat=repeat).median
