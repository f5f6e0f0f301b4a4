"""The corpus, the character tokenizer and the batches: text in, token ids out.

The book's language models read Tiny Shakespeare (``data/README.md``), shipped inside the
package, one character per token. The split is nanoGPT's — the first 90 % of the characters
train, the last 10 % validate — so that losses in nats per character compare with published
ones on the same file.

Training reads random windows of ``context + 1`` characters: the first ``context`` are the
input, the last ``context`` (shifted by one) the targets, so that every position is a
prediction to score (teacher forcing). Evaluation reads the validation text in consecutive,
non-overlapping windows, every character once.

Shapes: ``b`` batch, ``l`` length (the context), ``v`` vocabulary size.
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["CORPORA", "CharTokenizer", "Corpus", "eval_windows", "get_batch", "load_corpus",
           "shakespeare", "train_val_split"]

DATA = Path(__file__).resolve().parent / "data"
CORPORA = {"shakespeare": "tinyshakespeare.txt.gz"}  # name -> file in data/
TRAIN_FRACTION = 0.9  # nanoGPT's split


def load_corpus(name: str = "shakespeare") -> str:
    """The text of a corpus shipped with the package (nothing is downloaded).

    Args:
        name: a key of :data:`CORPORA`.

    Returns:
        The whole text, a ``str`` (Tiny Shakespeare: 1,115,394 characters).
    """
    if name not in CORPORA:
        raise ValueError(f"name must be one of {sorted(CORPORA)}, got {name!r}")
    return _read(name)


@functools.cache
def _read(name: str) -> str:
    return gzip.decompress((DATA / CORPORA[name]).read_bytes()).decode("utf-8")


class CharTokenizer:
    """Characters ↔ integer ids, one id per distinct character, in sorted order.

    ``decode(encode(s)) == s`` for every string made of the vocabulary's characters; a
    character outside it is an error (named, with its position), never silently dropped.

    Args:
        chars: the vocabulary, distinct characters (sorted here: id i is the i-th smallest).
    """

    def __init__(self, chars: str):
        if not isinstance(chars, str) or not chars:
            raise ValueError(f"chars must be a non-empty str, got {chars!r}")
        if len(set(chars)) != len(chars):
            raise ValueError(f"chars must be distinct, got {len(chars)} characters of which "
                             f"{len(set(chars))} differ")
        self.chars = "".join(sorted(chars))
        self._ids = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer of every character that occurs in ``text``."""
        return cls("".join(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"

    def __eq__(self, other) -> bool:
        return isinstance(other, CharTokenizer) and other.chars == self.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """Token ids of ``text``: a ``(l,)`` int64 tensor."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        try:
            return torch.tensor([self._ids[c] for c in text], dtype=torch.long)
        except KeyError as err:
            pos = next(i for i, c in enumerate(text) if c not in self._ids)
            raise ValueError(f"text has a character outside the vocabulary: {text[pos]!r} at "
                             f"position {pos}; the vocabulary is {self.chars!r}") from err

    def decode(self, ids) -> str:
        """The text of token ids: a ``(l,)`` tensor or a sequence of ints."""
        ids = torch.as_tensor(ids) if len(ids) else torch.zeros(0, dtype=torch.long)
        if ids.ndim != 1 or ids.is_floating_point() or ids.is_complex():
            raise ValueError(f"ids must be a 1-d sequence of ints, got shape {tuple(ids.shape)} "
                             f"and dtype {ids.dtype}")
        if len(ids) and not 0 <= int(ids.min()) <= int(ids.max()) < self.vocab_size:
            raise ValueError(f"ids must lie in [0, vocab_size) = [0, {self.vocab_size}), got "
                             f"values from {int(ids.min())} to {int(ids.max())}")
        return "".join(self.chars[i] for i in ids.tolist())


def train_val_split(ids: torch.Tensor, fraction: float = TRAIN_FRACTION):
    """nanoGPT's split: the first ``int(fraction · l)`` tokens train, the rest validate.

    Args:
        ids: ``(l,)`` token ids of the whole corpus.

    Returns:
        ``(train, val)``, two 1-d views of ``ids``.
    """
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1:
        raise ValueError(f"ids must be a 1-d tensor, got {type(ids).__name__} "
                         f"{tuple(getattr(ids, 'shape', ()))}")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    n = int(fraction * len(ids))
    return ids[:n], ids[n:]


@dataclass(frozen=True, eq=False)
class Corpus:
    """A tokenized corpus and its split: ``train`` ``(l_train,)`` and ``val`` ``(l_val,)``."""

    name: str
    tokenizer: CharTokenizer
    train: torch.Tensor
    val: torch.Tensor

    def split(self, name: str) -> torch.Tensor:
        """The token ids of split ``"train"`` or ``"val"``."""
        if name not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {name!r}")
        return self.train if name == "train" else self.val


@functools.cache
def shakespeare() -> Corpus:
    """Tiny Shakespeare, character-tokenized (65 characters) and split 90/10 as nanoGPT does.

    Returns:
        A :class:`Corpus` with 1,003,854 training and 111,540 validation characters.
    """
    text = load_corpus("shakespeare")
    tokenizer = CharTokenizer.from_text(text)
    train, val = train_val_split(tokenizer.encode(text))
    return Corpus("shakespeare", tokenizer, train, val)


def get_batch(data: torch.Tensor, batch_size: int, context: int, generator: torch.Generator):
    """Random windows of a token stream, inputs and next-token targets (nanoGPT's batches).

    Args:
        data: ``(l_data,)`` token ids, longer than ``context``.
        batch_size: windows b; context: length l of each.
        generator: draws the windows' start positions, uniformly in ``[0, l_data − l)``.

    Returns:
        ``(x, y)``, each ``(b, l)``: ``y[:, t] = x[:, t + 1]`` and y's last column is the
        character after the window.
    """
    if context >= len(data):
        raise ValueError(f"context must be shorter than the data: context = {context}, "
                         f"len(data) = {len(data)}")
    start = torch.randint(len(data) - context, (batch_size,), generator=generator)
    offsets = start[:, None] + torch.arange(context + 1)  # (b, l + 1)
    window = data[offsets]
    return window[:, :-1].contiguous(), window[:, 1:].contiguous()


def eval_windows(data: torch.Tensor, context: int):
    """The whole stream in consecutive non-overlapping windows: every target scored once.

    Args:
        data: ``(l_data,)`` token ids; context: window length l.

    Returns:
        ``(x, y)``, each ``(n, l)`` with ``n = (l_data − 1) // l``; the few targets left after
        the last full window (fewer than l) are not scored.
    """
    n = (len(data) - 1) // context
    if n < 1:
        raise ValueError(f"data must hold more than context = {context} tokens, got "
                         f"{len(data)}")
    x = data[: n * context].view(n, context)
    y = data[1: n * context + 1].view(n, context)
    return x, y
