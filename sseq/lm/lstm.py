"""An LSTM language model (char-rnn's recipe: Karpathy, 2015; Hochreiter & Schmidhuber, 1997).

    e_t        = Embedding(x_t)                                   (b, d)
    h_t, c_t   = a stack of n_layers LSTM layers over e_1..e_t    the running state
    logits_t   = h_t E^T                                          the head shares E

Everything the model knows about the past is the state ``(h, c)`` of each layer — fixed in
size, whatever the length. A new token therefore costs the same at position 10 as at
position 10,000: :meth:`LSTMLM.step` reads one token into the state.

The layers are PyTorch's fused ``torch.nn.LSTM``; Chapter 2's :class:`sseq.nn.LSTM`, which
writes the cell's equations as a Python loop, has the same parameter names and gate order, and
the tests check that a stack of them loaded with this model's weights gives the same outputs.

Shapes: ``b`` batch, ``l`` length, ``d`` = ``d_model`` (embedding and state width),
``v`` vocabulary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

__all__ = ["LSTMConfig", "LSTMLM"]


@dataclass(frozen=True)
class LSTMConfig:
    """The shape of an :class:`LSTMLM`."""

    vocab_size: int
    d_model: int
    n_layers: int
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "n_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


class LSTMLM(nn.Module):
    """An LSTM language model: token ids ``(b, l)`` → next-token logits ``(b, l, v)``.

    Args:
        vocab_size: v.
        d_model: the width d of the embedding and of each layer's state h (and c).
        n_layers: stacked LSTM layers.
        dropout: between layers and before the head (0: none).
        forget_bias: each layer's initial forget-gate bias, so that the cells start by
            remembering (Gers et al., 2000; :func:`sseq.nn.set_forget_bias`).
    """

    context = None  # no window: the state carries the whole past

    def __init__(self, vocab_size: int, d_model: int, n_layers: int, dropout: float = 0.0, *,
                 forget_bias: float = 1.0):
        super().__init__()
        self.config = LSTMConfig(vocab_size, d_model, n_layers, dropout)
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.lstm = nn.LSTM(d_model, d_model, n_layers, batch_first=True,
                            dropout=dropout if n_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.embedding.weight  # tied
        # the embedding is also the head: entries of size 1/√d keep both the LSTM's inputs
        # and the initial logits of order one
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
        with torch.no_grad():
            for i in range(n_layers):  # gates in PyTorch's order (i, f, g, o)
                getattr(self.lstm, f"bias_ih_l{i}")[d_model:2 * d_model] = 0.0
                getattr(self.lstm, f"bias_hh_l{i}")[d_model:2 * d_model] = forget_bias

    def _check(self, idx, ndim):
        if not isinstance(idx, torch.Tensor) or idx.ndim != ndim or idx.is_floating_point():
            want = "(b, l)" if ndim == 2 else "(b,)"
            raise ValueError(f"token ids must be an integer tensor of shape {want}, got "
                             f"{type(idx).__name__} {tuple(getattr(idx, 'shape', ()))}")

    def forward(self, idx: torch.Tensor, state=None):
        """Logits of the next token at every position: ``(b, l)`` → ``(b, l, v)``.

        Args:
            idx: ``(b, l)`` token ids.
            state: the layers' ``(h, c)``, each ``(n_layers, b, d)``; zeros when None.
        """
        self._check(idx, 2)
        output, _ = self.lstm(self.embedding(idx), state)           # (b, l, d)
        return self.head(self.dropout(output))                     # (b, l, v)

    def prefill(self, idx: torch.Tensor):
        """Read a prompt ``(b, l)`` at once.

        Returns:
            ``(logits, state)``: the next-token logits ``(b, v)`` and ``(h, c)``, each
            ``(n_layers, b, d)``.
        """
        self._check(idx, 2)
        output, state = self.lstm(self.embedding(idx))
        return self.head(output[:, -1]), state

    def step(self, token: torch.Tensor, state):
        """Read one token ``(b,)`` into the state: constant time, whatever the position.

        Returns:
            ``(logits, state)``: ``(b, v)`` and the new ``(h, c)``.
        """
        self._check(token, 1)
        output, state = self.lstm(self.embedding(token[:, None]), state)  # (b, 1, d)
        return self.head(output[:, 0]), state

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items())
