"""The copy task of the Neural Turing Machine paper (Graves et al., 2014, §4.1).

A sequence of ``length`` random binary vectors of ``n_bits`` bits is shown, then a delimiter
(one extra input channel set to 1); then the inputs are blank and the network must write the
sequence back, vector for vector. The targets are scored only on those last ``length`` steps:

    inputs   x_1 x_2 … x_T  ⊣  ·  ·  …  ·            (b, 2T + 1, n_bits + 1)
    targets  ·   ·   …  ·   ·  x_1 x_2 … x_T           (b, 2T + 1, n_bits), scored where mask

A network with a running state must hold all T · n_bits bits at once; a network with an
external memory can write each vector to its own slot and read them back in order.

This is the bit-vector copy task of the NTM paper, not the token copying of Chapter 8.

Shapes: ``b`` batch, ``l`` = 2T + 1 steps.
"""

from __future__ import annotations

import numbers

import torch

__all__ = ["copy_task", "copy_accuracy", "copy_loss"]


def _generator(seed) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an int >= 0 or a torch.Generator, got {seed!r}")
    return torch.Generator().manual_seed(int(seed))


def copy_task(n: int, length: int, n_bits: int = 8, *, seed=0):
    """``n`` copy-task sequences of ``length`` vectors of ``n_bits`` bits.

    Returns:
        ``inputs (n, 2T + 1, n_bits + 1)`` float32, ``targets (n, 2T + 1, n_bits)`` float32
        (the bits to write back; zeros before), and ``mask (2T + 1,)`` bool: the scored steps.
    """
    for name, value in (("n", n), ("length", length), ("n_bits", n_bits)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    g = _generator(seed)
    bits = torch.randint(0, 2, (n, length, n_bits), generator=g).float()   # (n, T, n_bits)
    steps = 2 * length + 1
    inputs = torch.zeros(n, steps, n_bits + 1)
    inputs[:, :length, :n_bits] = bits
    inputs[:, length, n_bits] = 1.0                                       # the delimiter
    targets = torch.zeros(n, steps, n_bits)
    targets[:, length + 1:] = bits
    mask = torch.zeros(steps, dtype=torch.bool)
    mask[length + 1:] = True
    return inputs, targets, mask


def copy_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per bit on the scored steps (nats per bit)."""
    if logits.shape != targets.shape:
        raise ValueError(f"logits must have the targets' shape {tuple(targets.shape)}, got "
                         f"{tuple(logits.shape)}")
    return torch.nn.functional.binary_cross_entropy_with_logits(logits[:, mask],
                                                                targets[:, mask])


def copy_accuracy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> dict:
    """``bits``: the fraction of bits written back right; ``sequences``: the fraction of
    sequences written back without a single wrong bit."""
    right = (logits[:, mask] > 0) == (targets[:, mask] > 0.5)             # (b, T, n_bits)
    return {"bits": float(right.float().mean()),
            "sequences": float(right.flatten(1).all(dim=1).float().mean())}
