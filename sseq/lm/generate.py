"""Generation: read a prompt, then sample one token at a time from the model's prediction.

A language model gives p(x_{t+1} | x_≤t); generating text is drawing x_{t+1} from it, appending
it, and asking again. Two knobs shape the draw (:func:`sample_next`):

* the **temperature** τ divides the logits: p ∝ exp(z / τ). τ < 1 sharpens the distribution
  towards the most likely token (τ → 0 is greedy decoding), τ > 1 flattens it;
* **top-k** keeps only the k most likely tokens (Fan et al., 2018); Holtzman et al. (2020)
  show why pure sampling's long tail of unlikely tokens derails long texts.

Every model of the chapter offers the same two methods, used here:

* ``prefill(idx (b, l)) → (logits (b, v), state)``: read the prompt in parallel;
* ``step(token (b,), state) → (logits (b, v), state)``: read one more token.

The state is a KV cache for the GPT (growing with the text), ``(h, c)`` for the LSTM and the
recurrent state of each Mamba layer (fixed in size), the last n − 1 tokens for an n-gram model.
``generate(..., cache=False)`` instead re-reads the whole text (the last ``model.context``
tokens, if the model has a window) for every new token: the same tokens, at a cost that grows
with the text; the tests check that both ways agree.
"""

from __future__ import annotations

import torch

__all__ = ["generate", "sample_next", "top_k_logits"]


def top_k_logits(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the k largest logits of each row, set the others to −∞ (ties at the k-th kept).

    Args:
        logits: ``(..., v)``; k: 1 ≤ k, or None for all (k ≥ v also keeps all).
    """
    if k is None:
        return logits
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"top_k must be a positive int or None, got {k!r}")
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]           # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token per row from softmax(logits / temperature), restricted to the top k.

    Args:
        logits: ``(b, v)``.
        temperature: τ > 0, or 0 for greedy decoding (the arg-max).
        top_k: keep the k most likely tokens (None: all).
        generator: the source of randomness (seeded: the same draw every time).

    Returns:
        ``(b,)`` int64 token ids.
    """
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise ValueError(f"logits must have shape (b, v), got "
                         f"{tuple(getattr(logits, 'shape', ()))}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or \
            not temperature >= 0:
        raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")
    logits = top_k_logits(logits, top_k)
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.double() / temperature, dim=-1)  # (b, v)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _prompt_ids(model, prompt, tokenizer):
    """The prompt as ``(b, l)`` ids, and whether the caller gave text (and wants text back)."""
    if isinstance(prompt, str):
        tokenizer = tokenizer or getattr(model, "tokenizer", None)
        if tokenizer is None:
            raise ValueError("a text prompt needs a tokenizer: pass tokenizer=... (e.g. "
                             "sseq.lm.shakespeare().tokenizer) or token ids")
        return tokenizer.encode(prompt)[None], tokenizer
    if not isinstance(prompt, torch.Tensor) or prompt.is_floating_point() or \
            prompt.ndim not in (1, 2):
        raise ValueError(f"prompt must be a str or integer token ids (l,) or (b, l), got "
                         f"{type(prompt).__name__} {tuple(getattr(prompt, 'shape', ()))}")
    return (prompt[None] if prompt.ndim == 1 else prompt), None


@torch.no_grad()
def generate(model, prompt, n_new: int, temperature: float = 1.0, top_k: int | None = None,
             seed: int = 0, *, cache: bool = True, tokenizer=None):
    """Continue ``prompt`` by ``n_new`` sampled tokens.

    Args:
        model: a language model with ``prefill`` and ``step`` (see the module docstring).
        prompt: a ``str`` (encoded with ``tokenizer``, or the model's ``tokenizer``
            attribute) or token ids ``(l,)`` or ``(b, l)``; at least one token.
        n_new: tokens to generate (>= 0).
        temperature, top_k: see :func:`sample_next`.
        seed: seeds the draws: the same seed gives the same text.
        cache: carry the model's state from token to token (True), or re-read the whole text
            for every new token (False: the slow definition, for tests and cost measurements).
        tokenizer: a :class:`~sseq.lm.CharTokenizer` for a text prompt.

    Returns:
        The prompt and its continuation: a ``str`` for a text prompt, else ids ``(b, l + n)``
        (``(l + n,)`` for a 1-d prompt).
    """
    if isinstance(n_new, bool) or not isinstance(n_new, int) or n_new < 0:
        raise ValueError(f"n_new must be an int >= 0, got {n_new!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    ids, text_tokenizer = _prompt_ids(model, prompt, tokenizer)
    if ids.shape[1] == 0:
        raise ValueError("prompt must hold at least one token")
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    generator = torch.Generator().manual_seed(seed)
    window = getattr(model, "context", None)
    tokens, state = [ids], None
    try:
        for i in range(n_new):
            if not cache:  # forget everything and re-read the text
                text = torch.cat(tokens, dim=1)
                logits, _ = model.prefill(text if window is None else text[:, -window:])
            elif i == 0:
                logits, state = model.prefill(ids)
            else:
                logits, state = model.step(tokens[-1][:, 0], state)
            tokens.append(sample_next(logits, temperature, top_k, generator)[:, None])
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    out = torch.cat(tokens, dim=1)
    if text_tokenizer is not None:
        return text_tokenizer.decode(out[0])
    return out[0] if isinstance(prompt, torch.Tensor) and prompt.ndim == 1 else out
