"""Tasks that read from the context: copying, associative recall, induction heads.

Chapter 8 compares the two philosophies on what a fixed state gives up: the ability to look
an arbitrary earlier token up again. Each task is a seeded, vectorised generator with the
conventions of :mod:`sseq.tasks` (``BLANK = 0`` pads, data symbols are ``1 .. n_symbols``,
markers follow them, ``IGNORE = -100`` marks positions that are not scored) and one more:
the targets are **next-token targets**, ``targets[:, t]`` is what the model should say after
reading ``inputs[:, :t + 1]``, so a causal language model is trained on them directly, every
scored position at once.

========================  ===========================================================  ============
task                      one sequence (letters are symbols, ``·`` is BLANK)           from
========================  ===========================================================  ============
:func:`copying`           ``$ c a b | c a b .`` — repeat the string after ``|``        Jelassi 2024
:func:`mqar`              ``k1 v1 k2 v2 … · k2 · · k1 ·`` — after each key, its value  Arora 2023
:func:`induction_heads`   ``a c ⋄ b d … a ⋄`` — after ⋄, the symbol that followed ⋄    Olsson 2022
========================  ===========================================================  ============
"""

from __future__ import annotations

import torch

from sseq.tasks import BLANK, IGNORE, _generator, _positive_int

__all__ = ["copy_tokens", "copying", "induction_heads", "mqar", "sequence_accuracy"]


def copy_tokens(n_symbols: int) -> dict[str, int]:
    """The marker tokens of :func:`copying`: ``{"BOS", "SEP", "EOS"}`` after the symbols."""
    return {"BOS": n_symbols + 1, "SEP": n_symbols + 2, "EOS": n_symbols + 3}


def copying(n: int, length: int, *, min_length: int | None = None, n_symbols: int = 26,
            seed=0):
    """Copy a random string (Jelassi et al., 2024, the format of their code): ``$ s | s .``

    A string ``s`` of ``L`` symbols drawn uniformly from ``1 .. n_symbols``, ``L`` uniform in
    ``[min_length, length]``, is written between ``BOS`` (``$``) and ``SEP`` (``|``), then
    repeated and closed by ``EOS`` (``.``); ``BLANK`` pads every sequence to the longest,
    ``2 · length + 3`` tokens. Scored: the ``L`` copied symbols and ``EOS``, each predicted
    from the tokens before it (teacher forcing, as in the paper's evaluation); a string is
    copied when all ``L + 1`` are right. Guessing gets a symbol right with probability
    ``1 / n_symbols``. The vocabulary has ``n_symbols + 4`` tokens (:func:`copy_tokens`).

    Args:
        n: sequences.
        length: the longest string, ``>= 1``; min_length: the shortest (default: ``length``).
        n_symbols: the alphabet, ``>= 2`` (the paper's 26 letters by default).
        seed: an int or a ``torch.Generator``.

    Returns:
        ``inputs`` and ``targets``, both ``(n, 2 · length + 3)`` int64.
    """
    _positive_int("n", n)
    _positive_int("length", length)
    min_length = length if min_length is None else min_length
    _positive_int("min_length", min_length)
    if min_length > length:
        raise ValueError(f"min_length must be <= length = {length}, got {min_length}")
    _positive_int("n_symbols", n_symbols, minimum=2)
    g, marks = _generator(seed), copy_tokens(n_symbols)
    L = torch.randint(min_length, length + 1, (n, 1), generator=g)  # (n, 1) string lengths
    s = torch.randint(1, n_symbols + 1, (n, length), generator=g)  # (n, length)
    t = torch.arange(2 * length + 3)  # positions
    i = t - 1  # index into s of the first copy, at positions 1 .. L
    j = (t - L - 2).clamp(min=0)  # of the second, at positions L + 2 .. 2L + 1
    first = s.gather(1, i.clamp(0, length - 1).expand(n, -1))
    second = s.gather(1, j.clamp(max=length - 1))
    inputs = torch.full((n, t.numel()), BLANK)
    inputs = torch.where((t >= 1) & (t <= L), first, inputs)
    inputs = torch.where((t >= L + 2) & (t <= 2 * L + 1), second, inputs)
    inputs[:, 0] = marks["BOS"]
    inputs.scatter_(1, L + 1, marks["SEP"])
    inputs.scatter_(1, 2 * L + 2, marks["EOS"])
    targets = torch.full_like(inputs, IGNORE)
    scored = (t >= L + 1) & (t <= 2 * L + 1)  # SEP .. the last copied symbol: (n, l)
    targets[:, :-1] = torch.where(scored[:, :-1], inputs[:, 1:], IGNORE)
    return inputs, targets


def mqar(n: int, length: int, n_pairs: int, *, vocab_size: int = 64, power_a: float = 0.01,
         seed=0):
    """Multi-query associative recall (Arora et al., 2023, "Zoology"), in its published format.

    The first ``2 · n_pairs`` tokens are key–value pairs ``k1 v1 k2 v2 …``: distinct keys from
    ``1 .. vocab_size/2 − 1``, distinct values from ``vocab_size/2 .. vocab_size − 1``. The
    rest of the sequence is ``BLANK`` except that every key appears once more, as a query, at
    an even offset ``2g`` into it; the gaps ``g`` are distinct, drawn with probability
    ``∝ g^(power_a − 1)`` (``power_a = 0.01``, Zoology's: most queries come soon after the
    pairs), in random order. The target at a query is its key's value; nothing else is scored.
    Guessing among the values gives ``2 / vocab_size``. The vocabulary has ``vocab_size`` tokens.

    Args:
        n: sequences; length: tokens per sequence, even, ``>= 4 · n_pairs``.
        n_pairs: key–value pairs (and queries) per sequence, ``>= 1``.
        vocab_size: even, with ``vocab_size / 2 − 1 >= n_pairs`` keys.
        power_a: the exponent of the gaps' power law, ``> 0`` (1: uniform).
        seed: an int or a ``torch.Generator``.

    Returns:
        ``inputs`` and ``targets``, both ``(n, length)`` int64.
    """
    _positive_int("n", n)
    _positive_int("n_pairs", n_pairs)
    _positive_int("length", length, minimum=4 * n_pairs)
    if length % 2:
        raise ValueError(f"length must be even (queries sit at even offsets), got {length}")
    _positive_int("vocab_size", vocab_size, minimum=2 * n_pairs + 2)
    if vocab_size % 2:
        raise ValueError(f"vocab_size must be even (half keys, half values), got {vocab_size}")
    if not isinstance(power_a, (int, float)) or isinstance(power_a, bool) or not power_a > 0:
        raise ValueError(f"power_a must be a number > 0, got {power_a!r}")
    g, half, context = _generator(seed), vocab_size // 2, 2 * n_pairs
    keys = torch.rand(n, half - 1, generator=g).argsort(1)[:, :n_pairs] + 1  # (n, pairs)
    values = torch.rand(n, half, generator=g).argsort(1)[:, :n_pairs] + half
    space = (length - context) // 2  # query slots at offsets 0, 2, 4, ...
    weights = torch.arange(1, space + 1, dtype=torch.float64) ** (power_a - 1)
    gaps = torch.multinomial(weights.expand(n, space), n_pairs, replacement=False,
                             generator=g)  # (n, pairs), distinct, the i-th queries key i
    inputs = torch.full((n, length), BLANK)
    inputs[:, 0:context:2], inputs[:, 1:context:2] = keys, values
    at = context + 2 * gaps  # (n, pairs) query positions
    inputs.scatter_(1, at, keys)
    targets = torch.full_like(inputs, IGNORE).scatter_(1, at, values)
    return inputs, targets


def induction_heads(n: int, length: int, *, n_symbols: int = 16, seed=0):
    """The induction-head task in the Mamba paper's setup (Gu & Dao, 2023; Olsson et al., 2022).

    ``length`` symbols drawn uniformly from ``1 .. n_symbols`` (the paper: 16), except that a
    marker ``⋄ = n_symbols + 1`` sits at a random position ``p <= length − 3``, followed by the
    *answer* symbol, and the marker comes again as the last token. The only scored position is
    the last: the model must say the symbol that followed the first ⋄, however far back — the
    "look for where this happened before and say what came next" of an induction head.
    Guessing gives ``1 / n_symbols``. The vocabulary has ``n_symbols + 2`` tokens (``BLANK``
    unused).

    Args:
        n: sequences; length: tokens per sequence, ``>= 4``.
        n_symbols: the alphabet, ``>= 2``.
        seed: an int or a ``torch.Generator``.

    Returns:
        ``inputs`` and ``targets``, both ``(n, length)`` int64; one target per row is scored.
    """
    _positive_int("n", n)
    _positive_int("length", length, minimum=4)
    _positive_int("n_symbols", n_symbols, minimum=2)
    g, marker = _generator(seed), n_symbols + 1
    inputs = torch.randint(1, n_symbols + 1, (n, length), generator=g)
    p = torch.randint(0, length - 2, (n, 1), generator=g)  # (n, 1), p + 1 <= length − 2
    inputs.scatter_(1, p, marker)
    inputs[:, -1] = marker
    targets = torch.full_like(inputs, IGNORE)
    targets[:, -1] = inputs.gather(1, p + 1)[:, 0]
    return inputs, targets


@torch.no_grad()
def sequence_accuracy(model, inputs: torch.Tensor, targets: torch.Tensor,
                      batch_size: int = 256) -> tuple[float, float]:
    """How well a causal model does on a task, read with teacher forcing.

    Args:
        model: maps token ids ``(b, l)`` to next-token logits ``(b, l, v)``.
        inputs, targets: ``(n, l)`` int64 from one of this module's tasks.
        batch_size: sequences per forward pass.

    Returns:
        ``(token_acc, sequence_acc)``: the fraction of scored positions predicted right, and
        the fraction of sequences whose every scored position is right (a copied string, every
        query of an MQAR sequence).
    """
    if inputs.shape != targets.shape or inputs.ndim != 2:
        raise ValueError(f"inputs and targets must be (n, l) of one shape, got "
                         f"{tuple(inputs.shape)} and {tuple(targets.shape)}")
    was_training = model.training
    model.eval()
    right, scored = [], targets != IGNORE  # (n, l)
    for i in range(0, len(inputs), batch_size):
        predicted = model(inputs[i:i + batch_size]).argmax(-1)  # (b, l)
        right.append(predicted == targets[i:i + batch_size])
    model.train(was_training)
    right = torch.cat(right) & scored
    if not scored.any(1).all():
        raise ValueError("targets must score at least one position in every sequence")
    token = right.sum().item() / scored.sum().item()
    sequence = (right.sum(1) == scored.sum(1)).float().mean().item()
    return token, sequence
