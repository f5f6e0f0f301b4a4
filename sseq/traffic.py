"""Bytes moved: why the selective scan is fused into one kernel, counted and computed.

A selective scan reads u, Δ, z ``(b, l, d)`` and B, C ``(b, l, n)`` and writes y ``(b, l, d)``.
A straightforward implementation also *materializes* tensors of shape ``(b, l, d, n)`` — the
discretized A_bar = exp(ΔA), B_bar u, the states h — that are n times larger than its input,
each written to memory and read back. On a GPU the arithmetic is cheap and the memory is the
bottleneck, so those bytes, not the flops, set the time. Two tools:

* :func:`count_bytes` — *measures* what a PyTorch computation moves between operations: for
  every operation PyTorch runs, the bytes of the tensors it reads and writes (a
  ``TorchDispatchMode``, so it sees every kernel launch of the ``"reference"`` and
  ``"parallel"`` scans). Views move nothing and are not counted. A fused kernel appears as
  one operation that PyTorch does not see inside: its traffic is its inputs and outputs.
* :func:`scan_bytes` — *computes* the bytes of a fused scan (inputs read once, output written
  once) and the least a materializing one moves, for any shape: also for a GPU not here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["Traffic", "count_bytes", "scan_bytes"]


@dataclass(frozen=True)
class Traffic:
    """Bytes read and written by the operations of a computation, and how many ran."""

    read: int
    written: int
    operations: int

    @property
    def total(self) -> int:
        return self.read + self.written


def _nbytes(x: torch.Tensor) -> int:
    """Bytes a kernel touches for ``x``: its elements, but no more than its storage holds
    (a broadcast ``expand`` view reads each stored number once)."""
    return min(x.numel() * x.element_size(), x.untyped_storage().nbytes())


# Operations that look only at their inputs' shape and dtype, never at their numbers.
_METADATA_ONLY = {"new_empty", "new_zeros", "new_ones", "new_full", "empty_like", "zeros_like",
                  "ones_like", "full_like", "new_empty_strided"}


class _Counter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.read = self.written = self.operations = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = [x for x in tree_flatten((args, kwargs))[0] if isinstance(x, torch.Tensor)]
        outputs = [x for x in tree_flatten(out)[0] if isinstance(x, torch.Tensor)]
        storages = {x.untyped_storage().data_ptr() for x in inputs}
        if all(y.untyped_storage().data_ptr() in storages for y in outputs) and \
                not func._schema.is_mutable:
            return out  # a view (reshape, transpose, slice, ...): no bytes move
        self.operations += 1
        if func.overloadpacket.__name__ not in _METADATA_ONLY:
            self.read += sum(_nbytes(x) for x in inputs)
        self.written += sum(_nbytes(y) for y in outputs)
        return out


def count_bytes(fn) -> Traffic:
    """Run ``fn()`` and count the bytes its PyTorch operations read and write.

    Every operation is charged its tensor inputs and outputs in full, as if nothing stayed in
    a cache between operations — the situation of a GPU, whose caches are small next to
    these tensors. In-place operations count their output as written.

    Returns:
        A :class:`Traffic`.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function of no arguments, got {type(fn).__name__}")
    counter = _Counter()
    with counter:
        fn()
    return Traffic(counter.read, counter.written, counter.operations)


def scan_bytes(b: int, l: int, d: int, n: int, *, itemsize: int = 4, gate: bool = True) -> dict:
    """Bytes a selective scan must move, fused and materialized, for one forward pass.

    * ``"fused"``: read u, Δ (and z) ``(b, l, d)`` and B, C ``(b, l, n)`` once, write y once:
      ``(3 + gate)·b·l·d + 2·b·l·n`` numbers (A, D and the bias, ``O(d·n)``, are left out).
    * ``"materialized"``: the fused bytes plus, at the least, A_bar and B_bar·u written and
      read back by the scan, and the states h written and read back by the readout: six
      passes over ``(b, l, d, n)`` numbers.

    Args:
        b, l, d, n: batch, length, channels, state size.
        itemsize: bytes per number (4 for float32, 2 for bfloat16).
        gate: count the gate z among the inputs.

    Returns:
        ``{"fused": bytes, "materialized": bytes, "states": bytes of one (b, l, d, n) tensor}``.
    """
    for name, value in (("b", b), ("l", l), ("d", d), ("n", n), ("itemsize", itemsize)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    fused = ((3 + int(gate)) * b * l * d + 2 * b * l * n) * itemsize
    states = b * l * d * n * itemsize
    return {"fused": fused, "materialized": fused + 6 * states, "states": states}
