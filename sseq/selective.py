"""The selective recurrence discretized two ways: what Mamba's Euler step for B changes.

Mamba discretizes its continuous parameters (Δ, A, B) per step with zero-order hold for A and
Euler for B:

    A_bar = exp(Δ A)                      (ZOH, both)
    B_bar = Δ B                           (Euler: Mamba, all of its kernels)
    B_bar = (exp(Δ A) − 1) / A · B        (ZOH: the exact rule for an input held over the step)

The two B_bar differ by the factor (1 − e^{ΔA}) / (−ΔA) = 1 + ΔA/2 + O((ΔA)²), close to 1
when |ΔA| is small. :func:`selective_scan_rule` runs the selective scan with either rule
(as a plain linear scan, :func:`sseq.scan.linear_scan`), so the difference can be measured
on a real block (:func:`compare_rules`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sseq import scan

__all__ = ["RULES", "b_factor", "compare_rules", "discretize", "selective_scan_rule"]

RULES = ("euler", "zoh")


def b_factor(x: torch.Tensor) -> torch.Tensor:
    """ZOH's B_bar divided by Euler's, as a function of x = ΔA (<= 0): (e^x − 1) / x, 1 at 0."""
    x = torch.as_tensor(x)
    safe = torch.where(x == 0, torch.ones_like(x), x)
    return torch.where(x == 0, torch.ones_like(x), torch.expm1(safe) / safe)


def discretize(delta, A, B, rule: str = "euler"):
    """Per-step A_bar and B_bar of the selective SSM.

    Args:
        delta: Δ ``(b, l, d)``, positive.  A: ``(d, n)``.  B: ``(b, l, n)``.
        rule: ``"euler"`` (Mamba's B_bar = ΔB) or ``"zoh"``.

    Returns:
        ``(A_bar, B_bar)``, each ``(b, l, d, n)``.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    dA = delta[..., None] * A  # (b, l, d, n)
    B_bar = delta[..., None] * B[:, :, None, :]  # Euler
    if rule == "zoh":
        B_bar = B_bar * b_factor(dA)
    return torch.exp(dA), B_bar


def selective_scan_rule(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                        delta_softplus=False, rule: str = "euler"):
    """The selective scan of :func:`sseq.scan.selective_scan_ref` with the chosen rule for B.

    Args: as :func:`sseq.scan.selective_scan_ref`, and ``rule`` (``"euler"`` or ``"zoh"``).

    Returns:
        y ``(b, l, d)``.
    """
    dt = delta if delta_bias is None else delta + delta_bias
    dt = F.softplus(dt) if delta_softplus else dt
    A_bar, B_bar = discretize(dt, A, B, rule)
    h = scan.linear_scan(A_bar, B_bar * u[..., None])  # (b, l, d, n)
    y = torch.einsum("bldn,bln->bld", h, C)
    if D is not None:
        y = y + D * u
    return y if z is None else y * F.silu(z)


def compare_rules(block, u: torch.Tensor) -> float:
    """How much the rule for B changes a :class:`sseq.mamba.Mamba` block's state readout.

    The scan's inputs (x, Δ, B, C) are computed by the block itself from ``u``
    ``(b, l, d_model)``; the result is ‖y_zoh − y_euler‖ / ‖y_euler‖ for y_t = ⟨C_t, h_t⟩, the
    part of the output that the state carries (the skip D·x and the gate do not depend on
    the rule).
    """
    with torch.no_grad():
        x, _ = block._branches(u)
        x = F.silu(block.conv1d(x.transpose(1, 2))[..., :u.shape[1]]).transpose(1, 2)
        dt, B, C = block._selection(x)
        args = (x, dt, -torch.exp(block.A_log), B, C, None, None, block.dt_proj.bias, True)
        y_euler, y_zoh = (selective_scan_rule(*args, rule=rule) for rule in RULES)
    return float((y_zoh - y_euler).norm() / y_euler.norm())
