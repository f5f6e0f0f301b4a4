"""Positions: attention alone cannot tell where a token is.

Self-attention without positions is *permutation-equivariant*: shuffle the tokens and the
outputs are shuffled the same way. Order enters only through what is added to the tokens
or done to the queries and keys:

* **absolute** positions, added to the token embeddings: the sinusoids of the original
  transformer (:func:`sinusoidal_positions`) or a learned table (``nn.Embedding``);
* **rotary** positions (RoPE; Su et al., 2021): rotate each pair of coordinates of q and k
  by an angle proportional to the position (:func:`rope`). The score of a query at m and a
  key at n then depends on the positions only through m − n.
"""

from __future__ import annotations

import torch

__all__ = ["rope", "rope_frequencies", "sinusoidal_positions"]


def _check_even(name: str, d: int) -> None:
    if isinstance(d, bool) or not isinstance(d, int) or d < 2 or d % 2:
        raise ValueError(f"{name} must be an even int >= 2 (coordinates come in pairs), "
                         f"got {d!r}")


def sinusoidal_positions(l: int, d: int, *, base: float = 10000.0) -> torch.Tensor:
    """The transformer's absolute positions: sines and cosines of geometric frequencies.

        P[t, 2i] = sin(t · base^(−2i/d)),    P[t, 2i+1] = cos(t · base^(−2i/d))

    Args:
        l: number of positions; d: the model width (even).

    Returns:
        ``(l, d)`` float32, added to the token embeddings.
    """
    _check_even("d", d)
    angles = torch.arange(l, dtype=torch.float64)[:, None] * rope_frequencies(d, base=base)
    P = torch.stack([angles.sin(), angles.cos()], dim=-1)  # (l, d/2, 2)
    return P.flatten(-2).float()                           # (l, d)


def rope_frequencies(d: int, *, base: float = 10000.0) -> torch.Tensor:
    """The rotation speeds θ_i = base^(−2i/d), i = 0..d/2−1 (radians per position), float64."""
    _check_even("d", d)
    return base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)


def rope(x: torch.Tensor, positions, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding: rotate coordinate pair i of x_t by the angle t · θ_i.

    Pair i is (x[2i], x[2i+1]), as in the RoFormer paper; read as the complex number
    x[2i] + i·x[2i+1], the rotation is a multiplication by e^{i t θ_i}:

        rope(x)_t[2i]   = x_t[2i] cos(t θ_i) − x_t[2i+1] sin(t θ_i)
        rope(x)_t[2i+1] = x_t[2i] sin(t θ_i) + x_t[2i+1] cos(t θ_i)

    Rotations preserve norms, and ⟨R_m q, R_n k⟩ = ⟨q, R_{n−m} k⟩: rotated queries and keys
    score by their relative position.

    Args:
        x: ``(..., l, d)`` with d even, e.g. queries or keys ``(b, h, l, d)``.
        positions: ``(l,)`` the position of each of the l tokens (ints or floats).
        base: sets the slowest frequency (``base`` = 10000 in RoFormer and Llama 2).

    Returns:
        The rotated tensor, same shape and dtype as x.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise TypeError(f"x must be a floating-point tensor of shape (..., l, d), got "
                        f"{type(x).__name__} {tuple(getattr(x, 'shape', ()))}")
    _check_even("x.shape[-1]", x.shape[-1])
    positions = torch.as_tensor(positions, device=x.device)
    if positions.shape != (x.shape[-2],):
        raise ValueError(f"positions must have shape (l,) = ({x.shape[-2]},), one per token "
                         f"of x {tuple(x.shape)}, got {tuple(positions.shape)}")
    theta = rope_frequencies(x.shape[-1], base=base).to(x.device)
    angles = positions.to(torch.float64)[:, None] * theta        # (l, d/2), exact in float64
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]                          # (..., l, d/2) each
    rotated = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return rotated.flatten(-2)                                   # (..., l, d)
