"""Synthetic sequence tasks: small, seeded problems that each test one kind of memory.

Every task is a function ``task(n, ..., *, seed=0) -> (inputs, targets)`` that
returns ``n`` examples as tensors, the same ones for the same ``seed`` (an int,
or a ``torch.Generator`` to draw from). Conventions shared by all tasks:

* **Token tasks** return ``inputs`` of integer token ids, ``(n, l)`` int64. Token
  ``BLANK = 0`` means "nothing here"; data symbols are ``1 .. n_symbols``; any
  marker tokens a task needs come after the symbols. The vocabulary size is
  given by the task's docstring (``n_symbols + 1`` when there are no markers).
* **Real-valued tasks** return ``inputs`` ``(n, l, d)`` float32.
* **Targets** are class ids (int64) for classification — ``(n,)`` for one answer
  per sequence, ``(n, l)`` for one per position, with ``IGNORE = -100`` where a
  position is not scored (PyTorch's ``cross_entropy`` skips it) — or float32 for
  regression.
"""

from __future__ import annotations

import numbers

import torch

__all__ = ["BLANK", "IGNORE", "adding_problem", "delayed_recall"]

BLANK = 0
IGNORE = -100


def _generator(seed) -> torch.Generator:
    """A CPU generator: the given one, or a fresh one seeded with ``seed``."""
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):  # NumPy ints too
        raise TypeError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return torch.Generator().manual_seed(int(seed))


def _positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def adding_problem(n: int, length: int, *, seed=0):
    """The adding problem of Hochreiter & Schmidhuber (1997), in its common modern form.

    Each step carries two channels: a value drawn uniformly from [0, 1), and a
    marker that is 1 at exactly two steps — one in the first half of the
    sequence, one in the second — and 0 elsewhere. The target is the sum of the
    two marked values. Predicting the mean, 1.0, gives a mean squared error of
    1/6 ≈ 0.167; beating it needs memory of a value seen up to ``length`` steps ago.

    Args:
        n: number of sequences.
        length: ``l >= 2``.
        seed: an int or a ``torch.Generator``.

    Returns:
        ``inputs`` ``(n, l, 2)`` float32 (channel 0 values, channel 1 markers) and
        ``targets`` ``(n,)`` float32.
    """
    _positive_int("n", n)
    _positive_int("length", length, minimum=2)
    g = _generator(seed)
    values = torch.rand(n, length, generator=g)  # (n, l)
    half = length // 2
    first = torch.randint(0, half, (n,), generator=g)  # (n,)
    second = torch.randint(half, length, (n,), generator=g)  # (n,)
    markers = torch.zeros(n, length)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]  # (n,)
    return torch.stack([values, markers], dim=-1), targets


def delayed_recall(n: int, delay: int, *, n_symbols: int = 8, distractors: bool = True,
                   seed=0):
    """Remember the first token for ``delay`` steps, then say what it was.

    A sequence is one symbol ``s`` in ``1 .. n_symbols`` followed by ``delay``
    tokens: random symbols (``distractors=True``, which the model must learn to
    ignore) or ``BLANK``. The target, read after the last token, is ``s``.
    Guessing gives accuracy ``1 / n_symbols``. The vocabulary has
    ``n_symbols + 1`` tokens (``BLANK`` included).

    Args:
        n: number of sequences.
        delay: how many tokens separate the symbol from the end, ``>= 0``.
        n_symbols: the number of distinct symbols, ``>= 2``.
        distractors: fill the delay with random symbols (True) or ``BLANK`` (False).
        seed: an int or a ``torch.Generator``.

    Returns:
        ``inputs`` ``(n, delay + 1)`` int64 and ``targets`` ``(n,)`` int64, with
        ``targets == inputs[:, 0]``.
    """
    _positive_int("n", n)
    _positive_int("delay", delay, minimum=0)
    _positive_int("n_symbols", n_symbols, minimum=2)
    if not isinstance(distractors, bool):
        raise TypeError(f"distractors must be True or False, got {distractors!r}")
    g = _generator(seed)
    targets = torch.randint(1, n_symbols + 1, (n,), generator=g)  # (n,)
    if distractors:
        filler = torch.randint(1, n_symbols + 1, (n, delay), generator=g)  # (n, delay)
    else:
        filler = torch.full((n, delay), BLANK)
    inputs = torch.cat([targets[:, None], filler], dim=1)  # (n, delay + 1)
    return inputs, targets


__all__ += ["selective_copying"]  # listed beside the function it names


def selective_copying(n: int, length: int, n_memorize: int, *, n_symbols: int = 8,
                      selective: bool = True, seed=0):
    """Copy the data tokens scattered in a sequence, in order (Mamba's Figure 2 and Table 1).

    The first ``length`` tokens are ``BLANK`` (noise) except ``n_memorize`` data symbols in
    ``1 .. n_symbols``; ``n_memorize`` tokens ``COPY = n_symbols + 1`` follow, and at those
    positions the target is the data symbols in the order they appeared. Elsewhere the target
    is ``IGNORE``. With ``selective=True`` the data sit at random positions, a different set
    in every sequence, so the gap between a symbol and the position where it must be
    repeated varies: a model has to *select* what to keep by its content. With
    ``selective=False`` (plain copying) they are the first ``n_memorize`` tokens, every gap
    is ``length``, and a fixed convolution kernel with one spike at that lag solves it.
    Guessing gives accuracy ``1 / n_symbols``. The vocabulary has ``n_symbols + 2`` tokens.

    Args:
        n: number of sequences.
        length: ``l >= n_memorize``, the part holding data and noise.
        n_memorize: data symbols per sequence, ``>= 1``.
        n_symbols: distinct data symbols, ``>= 2``.
        selective: random positions (True) or the first ones (False).
        seed: an int or a ``torch.Generator``.

    Returns:
        ``inputs`` and ``targets``, both ``(n, length + n_memorize)`` int64.
    """
    _positive_int("n", n)
    _positive_int("n_memorize", n_memorize)
    _positive_int("length", length, minimum=n_memorize)
    _positive_int("n_symbols", n_symbols, minimum=2)
    if not isinstance(selective, bool):
        raise TypeError(f"selective must be True or False, got {selective!r}")
    g = _generator(seed)
    data = torch.randint(1, n_symbols + 1, (n, n_memorize), generator=g)  # (n, n_memorize)
    if selective:  # n_memorize distinct positions, in increasing order
        positions = torch.rand(n, length, generator=g).argsort(dim=1)[:, :n_memorize]
        positions = positions.sort(dim=1).values
    else:
        positions = torch.arange(n_memorize).expand(n, n_memorize)
    inputs = torch.full((n, length + n_memorize), BLANK)
    inputs.scatter_(1, positions, data)
    inputs[:, length:] = n_symbols + 1  # COPY: "say the next symbol now"
    targets = torch.full_like(inputs, IGNORE)
    targets[:, length:] = data
    return inputs, targets


__all__ += ["render_tokens"]  # listed beside the function it names


def render_tokens(tokens, n_symbols: int) -> str:
    """A token sequence as text: ``·`` for ``BLANK``, letters for symbols ``1 .. n_symbols``,
    ``?`` for a token after them (a marker, such as selective copying's ``COPY``), ``_`` for
    ``IGNORE``.

    Args:
        tokens: a 1-D sequence of ints (a tensor, a list).
        n_symbols: the number of data symbols, at most 26.

    Returns:
        A string with one character per token.
    """
    _positive_int("n_symbols", n_symbols, minimum=1)
    if n_symbols > 26:
        raise ValueError(f"n_symbols must be <= 26 to be written as letters, got {n_symbols}")
    chars = {BLANK: "·", IGNORE: "_", **{s: chr(ord("a") + s - 1) for s in
                                         range(1, n_symbols + 1)}}
    return "".join(chars.get(int(t), "?") for t in tokens)
