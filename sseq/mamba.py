"""The Mamba block (Gu & Dao, 2023): a selective state space layer between two projections.

For an input ``(b, l, d_model)`` the block computes, with ``d = d_inner = expand · d_model``:

    x, z  = in_proj(u)                        two (b, l, d) branches
    x     = SiLU(causal depthwise conv(x))    a short convolution over time (width d_conv)
    Δ, B, C = x_proj(x)                       input-dependent: the *selection* mechanism
    Δ     = softplus(dt_proj(Δ))              (b, l, d), one step size per channel
    y     = selective scan(x; Δ, A, B, C) + D ⊙ x
    out   = out_proj(y ⊙ SiLU(z))             the gate; without it, out_proj(y)

The scan is :func:`sseq.scan.selective_scan` (ZOH for A, Euler for B). Parameter names and
shapes are those of ``mamba_ssm.modules.mamba_simple.Mamba`` (``in_proj``, ``conv1d``,
``x_proj``, ``dt_proj``, ``A_log``, ``D``, ``out_proj``), so a state dict saved from the
reference implementation loads with ``strict=True``, and so is its initialisation:

* A = −exp(A_log) with A_log = log(1, …, N) in every channel (S4D-Real);
* Δ's bias is softplus⁻¹ of a step drawn log-uniformly in [dt_min, dt_max], so that at
  initialisation each channel looks at its own time scale; the bias is flagged
  ``_no_reinit`` so that GPT-style re-initialisation (:func:`reinit_weights`) keeps it;
* D = 1; ``A_log`` and ``D`` are flagged ``_no_weight_decay``.

Deviations from the reference, on purpose: the gate can be switched off (``gate=False``, the
"S6 without gate" layer of the paper's Table 1), and :meth:`Mamba.step` is functional — it
returns a new :class:`MambaState` instead of updating caches in place.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from sseq import scan

__all__ = ["Block", "Mamba", "MambaState", "RMSNorm", "S6", "no_weight_decay",
           "reinit_weights"]

_BACKENDS = ("auto", "reference", "parallel", "cpu", "triton")


class MambaState(NamedTuple):
    """What the block remembers between tokens: constant in size, whatever the length.

    conv: ``(b, d, d_conv − 1)``, the last inputs of the causal convolution, oldest first.
    ssm: ``(b, d, n)``, the state h of the selective scan.
    """

    conv: torch.Tensor
    ssm: torch.Tensor


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_args(d_model, d_state, d_conv, expand, dt_rank, dt_min, dt_max, dt_init_floor,
                backend):
    for name, value in (("d_model", d_model), ("d_state", d_state), ("d_conv", d_conv)):
        _positive_int(name, value)
    if isinstance(expand, bool) or not isinstance(expand, (int, float)) or expand <= 0 or \
            int(expand * d_model) < 1:
        raise ValueError(f"expand must be a positive number with expand · d_model >= 1, "
                         f"got {expand!r}")
    if dt_rank != "auto":
        _positive_int("dt_rank (or 'auto')", dt_rank)
    if not 0 < dt_min <= dt_max:
        raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min!r}, dt_max={dt_max!r}")
    if not dt_init_floor >= 0:
        raise ValueError(f"dt_init_floor must be >= 0, got {dt_init_floor!r}")
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


# --- initialisation -------------------------------------------------------------------------


def inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """x with softplus(x) = log(1 + e^x) = y, for y > 0: x = y + log(1 − e^{−y}).

    Written with ``expm1`` so that small y (Δ = 0.001 gives x ≈ −6.9) keeps its digits.
    """
    return y + torch.log(-torch.expm1(-y))


def init_dt_bias(d: int, dt_min: float, dt_max: float, dt_init_floor: float) -> torch.Tensor:
    """Δ's bias: softplus⁻¹ of Δ drawn log-uniformly in [dt_min, dt_max] (global RNG).

    Returns:
        ``(d,)``: with a zero input to ``dt_proj``, softplus(bias) is that Δ.
    """
    log_dt = torch.rand(d) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
    return inverse_softplus(torch.exp(log_dt).clamp(min=dt_init_floor))


def s4d_real_A_log(d: int, n: int) -> torch.Tensor:
    """log of S4D-Real's A = −(1, 2, …, n), in every one of d channels: ``(d, n)`` float32."""
    return torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(d, 1)


def reinit_weights(module: nn.Module, n_layer: int, *, initializer_range: float = 0.02,
                   rescale_prenorm_residual: bool = True, n_residuals_per_layer: int = 1):
    """GPT-2-style re-initialisation of a model, as ``mamba_ssm``'s ``_init_weights`` does.

    Apply it with ``model.apply(functools.partial(reinit_weights, n_layer=...))``. Linear
    biases are zeroed unless flagged ``_no_reinit`` (Δ's bias), embeddings drawn
    N(0, initializer_range²), and every ``out_proj.weight`` (the last layer of a residual
    branch) redrawn as PyTorch does and divided by √(n_residuals_per_layer · n_layer), so the
    residual stream's variance does not grow with depth. ``A_log`` and ``D`` are untouched.
    """
    if isinstance(module, nn.Linear) and module.bias is not None:
        if not getattr(module.bias, "_no_reinit", False):
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=initializer_range)
    if rescale_prenorm_residual:
        for name, p in module.named_parameters():
            if name == "out_proj.weight":
                nn.init.kaiming_uniform_(p, a=math.sqrt(5))  # nn.Linear's default
                with torch.no_grad():
                    p /= math.sqrt(n_residuals_per_layer * n_layer)


def no_weight_decay(model: nn.Module) -> set[str]:
    """Names of the parameters flagged ``_no_weight_decay`` (A_log, D): leave them out of
    AdamW's decay, which would pull A towards −1 and the skip towards 0."""
    return {name for name, p in model.named_parameters() if getattr(p, "_no_weight_decay", False)}


# --- the block ------------------------------------------------------------------------------


class Mamba(nn.Module):
    """The Mamba block: ``(b, l, d_model)`` → ``(b, l, d_model)``; see the module docstring.

    Args:
        d_model: width of the residual stream.
        d_state: N, the state size per channel.
        d_conv: width of the causal depthwise convolution.
        expand: d_inner = int(expand · d_model) channels run the scan.
        dt_rank: rank of Δ's projection; ``"auto"`` is ⌈d_model / 16⌉.
        dt_min, dt_max, dt_init_floor: range of Δ at initialisation (see :func:`init_dt_bias`).
        conv_bias, bias: biases of the convolution, and of in_proj and out_proj.
        backend: the scan backend (:func:`sseq.scan.selective_scan`); ``"auto"`` picks the
            fused ``"cpu"`` loop on the CPU and the Triton kernel on a GPU.
        gate: multiply by SiLU(z) before ``out_proj`` (Mamba); ``False`` is S6 without gate,
            whose ``in_proj`` then has d_inner outputs instead of 2 · d_inner.
    """

    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, dt_rank="auto", dt_min=0.001,
                 dt_max=0.1, dt_init_floor=1e-4, conv_bias=True, bias=False, backend="auto", *,
                 gate: bool = True):
        super().__init__()
        _check_args(d_model, d_state, d_conv, expand, dt_rank, dt_min, dt_max, dt_init_floor,
                    backend)
        if not isinstance(gate, bool):
            raise TypeError(f"gate must be True or False, got {gate!r}")
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = d = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else dt_rank
        self.backend, self.gate = backend, gate
        self.in_proj = nn.Linear(d_model, 2 * d if gate else d, bias=bias)
        self.conv1d = nn.Conv1d(d, d, d_conv, groups=d, padding=d_conv - 1, bias=conv_bias)
        self.x_proj = nn.Linear(d, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d, bias=True)
        # Δ's projection starts with the variance of a unit-variance input preserved ...
        std = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        # ... and its bias puts softplus(Δ) in [dt_min, dt_max], one time scale per channel.
        with torch.no_grad():
            self.dt_proj.bias.copy_(init_dt_bias(d, dt_min, dt_max, dt_init_floor))
        self.A_log = nn.Parameter(s4d_real_A_log(d, d_state))  # (d, n); A = −exp(A_log) < 0
        self.D = nn.Parameter(torch.ones(d))  # the skip connection D ⊙ x
        self.out_proj = nn.Linear(d, d_model, bias=bias)
        self._flag_parameters()

    def _flag_parameters(self):
        """The flags that re-initialisation and weight decay read (as in mamba_ssm)."""
        self.dt_proj.bias._no_reinit = True
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True

    def __setstate__(self, state):
        # copy.deepcopy rebuilds each nn.Parameter without its attributes: flag them again.
        super().__setstate__(state)
        self._flag_parameters()

    def _check(self, u, name, ndim):
        if not isinstance(u, torch.Tensor) or not u.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got "
                            f"{type(u).__name__ if not isinstance(u, torch.Tensor) else u.dtype}")
        want = "(b, l, d_model)" if ndim == 3 else "(b, d_model)"
        if u.ndim != ndim or u.shape[-1] != self.d_model:
            raise ValueError(f"{name} must have shape {want} with d_model = {self.d_model}, "
                             f"got {tuple(u.shape)}")

    def _branches(self, u):
        """in_proj: the scan's input x and the gate z (None without a gate), each (..., d)."""
        xz = self.in_proj(u)
        return xz.chunk(2, dim=-1) if self.gate else (xz, None)

    def _selection(self, x):
        """Δ (before bias and softplus), B, C from x (..., d): (..., d), (..., n), (..., n)."""
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.linear(dt, self.dt_proj.weight), B, C  # the bias goes into the scan

    def forward(self, u: torch.Tensor, *, return_state: bool = False):
        """The parallel (training) view over a whole sequence.

        Args:
            u: ``(b, l, d_model)``.
            return_state: also return the :class:`MambaState` after the last token, from which
                :meth:`step` continues (a prompt read in parallel, then generation).

        Returns:
            ``(b, l, d_model)``, and the state when asked.
        """
        self._check(u, "u", 3)
        l = u.shape[1]
        x, z = self._branches(u)  # (b, l, d) each
        x_conv = self.conv1d(x.transpose(1, 2))[..., :l]  # (b, d, l): causal, width d_conv
        x_conv = F.silu(x_conv).transpose(1, 2)  # (b, l, d)
        dt, B, C = self._selection(x_conv)  # (b, l, d), (b, l, n), (b, l, n)
        A = -torch.exp(_at_least_fp32(self.A_log))  # (d, n): fp32 even in a half model
        y, h = scan.selective_scan(x_conv, dt, A, B, C, _at_least_fp32(self.D), z=z,
                                   delta_bias=_at_least_fp32(self.dt_proj.bias),
                                   delta_softplus=True, return_last_state=True,
                                   backend=self.backend)
        out = self.out_proj(y)
        if not return_state:
            return out
        window = F.pad(x.transpose(1, 2), (self.d_conv - 1, 0))[..., l:]  # (b, d, d_conv − 1)
        return out, MambaState(window, h)

    def initial_state(self, batch: int, *, device=None, dtype=None) -> MambaState:
        """The state before the first token: zeros, ``conv (b, d, d_conv−1)``, ``ssm (b, d, n)``."""
        _positive_int("batch", batch)
        w = self.in_proj.weight
        device, dtype = device or w.device, dtype or w.dtype
        return MambaState(torch.zeros(batch, self.d_inner, self.d_conv - 1, device=device,
                                      dtype=dtype),
                          torch.zeros(batch, self.d_inner, self.d_state, device=device,
                                      dtype=torch.promote_types(dtype, torch.float32)))

    def step(self, u_t: torch.Tensor, state: MambaState):
        """The recurrent (generation) view: one token, constant time and memory.

        Args:
            u_t: ``(b, d_model)``, the input now.
            state: the :class:`MambaState` after the previous token.

        Returns:
            ``(y_t, state)``: the output ``(b, d_model)`` and the new state.
        """
        self._check(u_t, "u_t", 2)
        if not isinstance(state, MambaState):
            raise TypeError(f"state must be a MambaState (see initial_state), got "
                            f"{type(state).__name__}")
        x, z = self._branches(u_t)  # (b, d) each
        window = torch.cat([state.conv, x.unsqueeze(-1)], dim=-1)  # (b, d, d_conv)
        x = (window * self.conv1d.weight[:, 0]).sum(-1)  # the convolution at this step
        x = F.silu(x if self.conv1d.bias is None else x + self.conv1d.bias)
        dt, B, C = self._selection(x)  # (b, d), (b, n), (b, n)
        dt = F.softplus(dt + self.dt_proj.bias)
        A = -torch.exp(_at_least_fp32(self.A_log))  # (d, n)
        h = torch.exp(dt.unsqueeze(-1) * A) * state.ssm \
            + (dt * x).unsqueeze(-1) * B.unsqueeze(1)  # (b, d, n): ZOH for A, Euler for B
        y = (h * C.unsqueeze(1)).sum(-1).to(x.dtype) + self.D * x  # (b, d)
        if self.gate:
            y = y * F.silu(z)
        return self.out_proj(y), MambaState(window[..., 1:], h)


class S6(Mamba):
    """The selective layer without the gate ("S6, no gate" in Mamba's Table 1):
    :class:`Mamba` with ``gate=False``."""

    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, dt_rank="auto", dt_min=0.001,
                 dt_max=0.1, dt_init_floor=1e-4, conv_bias=True, bias=False, backend="auto"):
        super().__init__(d_model, d_state, d_conv, expand, dt_rank, dt_min, dt_max,
                         dt_init_floor, conv_bias, bias, backend, gate=False)


# --- the residual block ---------------------------------------------------------------------


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) · weight over the last dimension (no mean subtracted, no bias).

    The norm of Mamba's language models (``mamba_ssm``'s RMSNorm: the parameter ``weight``).
    """

    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(_positive_int("d", d)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        scale = torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (x32 * scale).to(x.dtype) * self.weight


class Block(nn.Module):
    """A pre-norm residual block: ``u + mixer(RMSNorm(u))``, ``(b, l, d_model)`` → same.

    ``mixer`` is any layer ``(b, l, d_model)`` → ``(b, l, d_model)`` (a :class:`Mamba`, an
    :class:`S6`, an LTI layer, ...); the names ``norm`` and ``mixer`` are those of mamba_ssm's
    ``Block``. Its ``step`` is defined when the mixer has one.
    """

    def __init__(self, d_model: int, mixer: nn.Module, eps: float = 1e-5):
        super().__init__()
        self.norm, self.mixer = RMSNorm(d_model, eps), mixer

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return u + self.mixer(self.norm(u))

    def step(self, u_t: torch.Tensor, state):
        y_t, state = self.mixer.step(self.norm(u_t), state)
        return u_t + y_t, state
