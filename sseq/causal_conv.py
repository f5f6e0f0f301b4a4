"""The CNN's answer to the memory problem: a causal convolution sees a fixed window of the past.

A causal convolution of width w computes each output from the current input and the w − 1
before it, with the same filter F_0 … F_{w-1} at every position:

    y_t = tanh( Σ_{j=0}^{w-1} F_j x_{t-j} + b ),        x_t = 0 for t < 0.

Stacking ``layers`` of them widens the window: the output at t depends on the inputs
t − r + 1 … t only, where the **receptive field** is r = layers · (w − 1) + 1. Beyond it the
model is blind, whatever it learns. Inside it there is no compression at all.

Two ways to run the same model, as for the other models of Chapter 1:

* over a whole sequence at once (:func:`causal_conv`), every position in parallel — how a CNN
  trains;
* one token at a time (:class:`ConvCache`), keeping only the last w − 1 inputs of each layer —
  how it generates: constant time and memory per token, like a running state, because the
  window never grows.

Shapes: ``l`` positions, ``d`` channels (``d_model``); w is the filter's width (``width``).
"""

from __future__ import annotations

import math
import numbers

import torch

__all__ = ["ConvCache", "causal_conv", "conv_weights", "receptive_field"]


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def receptive_field(width: int, layers: int) -> int:
    """How many inputs, the current one included, a stack of causal convolutions can see.

        r = layers · (width − 1) + 1
    """
    width, layers = _check_positive_int("width", width), _check_positive_int("layers", layers)
    return layers * (width - 1) + 1


def conv_weights(d_model: int, *, width: int = 4, layers: int = 2, seed: int = 0):
    """Random weights for ``layers`` causal convolutions of ``width`` taps on ``d_model`` channels.

    Returns:
        A list of ``(F, b)`` per layer: ``F`` ``(width, d, d)``, tap F_j multiplying x_{t-j};
        ``b`` ``(d,)``. Scaled so that the activations stay of order 1.
    """
    d = _check_positive_int("d_model", d_model)
    width, layers = _check_positive_int("width", width), _check_positive_int("layers", layers)
    g = torch.Generator().manual_seed(seed)
    scale = 1.0 / math.sqrt(width * d)
    return [(scale * torch.randn(width, d, d, generator=g), 0.1 * torch.randn(d, generator=g))
            for _ in range(layers)]


def causal_conv(x: torch.Tensor, *, width: int = 4, layers: int = 2, seed: int = 0):
    """Run the stack over a whole sequence ``(l, d)`` → ``(l, d)``, all positions at once.

    Each layer pads w − 1 zeros on the left (the past before the sequence), so the output at
    t never sees an input after t: causal by construction.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"x must be a tensor of shape (l, d), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    h = x.T.unsqueeze(0)  # (1, d, l): conv1d wants channels first
    for F, b in conv_weights(x.shape[1], width=width, layers=layers, seed=seed):
        # conv1d correlates: weight[..., i] meets x_{t - (w-1) + i}, so tap j sits at i = w-1-j
        kernel = F.flip(0).permute(1, 2, 0).to(x.dtype)  # (d_out, d_in, w)
        h = torch.tanh(torch.nn.functional.conv1d(torch.nn.functional.pad(h, (width - 1, 0)),
                                                  kernel, b.to(x.dtype)))
    return h[0].T  # (l, d)


class ConvCache:
    """Generate with a causal convolution, one token at a time.

    Each layer keeps the last w − 1 inputs it has seen (a window that slides, never grows);
    a step appends the new input, computes one output per layer from its window, and drops
    the oldest. Time and memory per token are constant: O(layers · w · d²) and
    layers · (w − 1) · d numbers.

    Args:
        d_model: size of each token x_t (d).
        width: the filter width w; layers: how many convolutions are stacked.
        seed: seeds the weights (the same as :func:`causal_conv`'s for the same seed).
    """

    def __init__(self, d_model: int, *, width: int = 4, layers: int = 2, seed: int = 0):
        self.weights = conv_weights(d_model, width=width, layers=layers, seed=seed)
        self.width = width
        # the w - 1 previous inputs of each layer, oldest first: x_{t-w+1}, ..., x_{t-1}
        self.windows = [torch.zeros(width - 1, d_model) for _ in self.weights]

    @torch.no_grad()
    def step(self, x: torch.Tensor) -> torch.Tensor:
        """Read one token x_t of shape ``(d,)``; return the top layer's output ``(d,)``."""
        h = x
        for i, (F, b) in enumerate(self.weights):
            window = torch.cat([self.windows[i], h[None]])  # (w, d): x_{t-w+1} .. x_t
            self.windows[i] = window[1:]
            # tap F_j multiplies x_{t-j}, the row w-1-j of the window
            h = torch.tanh(torch.einsum("jod,jd->o", F, window.flip(0)) + b)
        return h

    def memory_bytes(self) -> int:
        """Bytes of history the model holds: the windows, whatever the length read."""
        return sum(w.numel() * w.element_size() for w in self.windows)
