"""The cost of generating one more token, measured against its position.

After t tokens, a model produces the logits of token t + 1 in one of three ways:

* **a running state** (LSTM, Mamba's recurrent step): read token t into a fixed-size state —
  the same work at t = 10 and at t = 10,000;
* **a KV cache** (GPT): compute token t's query, key and value, then attend over the t keys
  held — work and memory that grow linearly with t;
* **no cache at all**: re-read the whole text, t tokens through every layer, attention over
  all t² pairs — work that grows quadratically with t.

:func:`generation_cost` times the step at chosen positions (a random prompt of t − 1 tokens is
read first, in parallel) and counts its FLOPs (:func:`sseq.lm.flops.generation_flops`), so the
chapter can set the measured seconds beside the counted work.

Shapes: ``b`` batch (1 here: one reader), ``t`` position.
"""

from __future__ import annotations

import torch

from sseq.bench import time_fn
from sseq.lm.flops import generation_flops

__all__ = ["generation_cost"]


def _check_positions(model, positions, extra):
    if not positions or any(isinstance(t, bool) or not isinstance(t, int) or t < 2
                            for t in positions):
        raise ValueError(f"positions must be a non-empty list of ints >= 2, got {positions!r}")
    window = getattr(model, "context", None)
    if window is not None and max(positions) + extra > window:
        raise ValueError(f"positions must stay within the model's context = {window} with "
                         f"the {extra} timed steps after them, got {max(positions)}: build "
                         f"the model with a longer context to measure further")


@torch.no_grad()
def generation_cost(model, positions, *, cache: bool = True, repeat: int = 5,
                    seed: int = 0) -> dict:
    """Seconds and FLOPs to read token t and predict token t + 1, for each t in ``positions``.

    Args:
        model: a GPT, LSTMLM or MambaLM (its weights do not change the cost).
        positions: the t to measure (>= 2; for the GPT, ``repeat + 1`` below its ``context``).
        cache: carry the state (True) or re-read all t tokens (False).
        repeat: timed repetitions per position (the median is kept; one untimed warm-up).
        seed: the random prompt.

    Returns:
        ``{"position": [...], "seconds": [...], "flops": [...]}``.
    """
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat must be a positive int, got {repeat!r}")
    # each timed call of a cached step adds a token to the KV cache: past the position table
    # the GPT would re-read its window, so the last position must leave room for them
    _check_positions(model, positions, repeat + 1 if cache else 0)
    was_training = model.training
    model.eval()
    v = model.config.vocab_size
    g = torch.Generator().manual_seed(seed)
    text = torch.randint(v, (1, max(positions)), generator=g)
    seconds = []
    for t in positions:
        if cache:
            _, state = model.prefill(text[:, : t - 1])
            token = text[:, t - 1]
            # a KV cache grows by one token per call: the few extra keys do not matter
            timing = time_fn(lambda token=token, state=state: model.step(token, state),
                             repeat=repeat, warmup=1)
        else:
            timing = time_fn(lambda t=t: model.prefill(text[:, :t]), repeat=repeat, warmup=1)
        seconds.append(timing.median)
    model.train(was_training)
    return {"position": list(positions), "seconds": seconds,
            "flops": [generation_flops(model, t, cache=cache) for t in positions]}
