"""The linear time-invariant state space model in its two views, and S4D built on them.

A discrete SSM (see :mod:`sseq.discretize` for how A_bar, B_bar come from A, B, Δ)

    x_k = A_bar x_{k-1} + B_bar u_k,      y_k = C x_k          (x_{-1} = 0)

can be computed in two ways that give the same numbers:

* **recurrent** — step through time, O(L·N) work but L steps one after another
  (:func:`recurrent`, built from :func:`step`);
* **convolutional** — unrolling the recurrence gives y_k = Σ_j C A_bar^j B_bar u_{k-j},
  a causal convolution of u with the kernel K_j = C A_bar^j B_bar (:func:`kernel`),
  computed for all k at once with the FFT in O(L log L) (:func:`convolve`).

Shapes. ``A_bar`` is dense ``(n, n)`` or diagonal — ``(n,)``, or ``(d, n)`` for one SSM
per channel — by the rule of :func:`sseq.discretize.is_diagonal`. ``B_bar`` and ``C``
are ``(n,)`` for a dense A_bar and broadcast against a diagonal one. Inputs are
batch-first: ``u`` is ``(b, l)`` or ``(b, l, d)``.

:class:`S4D` (Gu et al. 2022, arXiv 2206.11893) is a layer of d diagonal SSMs, one per
channel, trained through the convolutional view; :class:`S4DClassifier` stacks them.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import nn

from sseq.discretize import _as_float_tensor, is_diagonal, zoh

__all__ = [
    "S4D",
    "S4DBlock",
    "S4DClassifier",
    "S4DClassifierConfig",
    "S4DConfig",
    "convolve",
    "convolve_ref",
    "kernel",
    "kernel_ref",
    "recurrent",
    "s4d_A",
    "step",
]


def _check_ssm(A_bar, B_bar, C, diagonal):
    A_bar, B_bar, C = (_as_float_tensor(x, name) for x, name in
                       ((A_bar, "A_bar"), (B_bar, "B_bar"), (C, "C")))
    diag, n = is_diagonal(A_bar, diagonal), A_bar.shape[-1]
    for x, name in ((B_bar, "B_bar"), (C, "C")):
        ok = (x.ndim >= 1 and x.shape[-1] == n) if diag else tuple(x.shape) == (n,)
        if not ok:
            want = f"(..., {n}) broadcasting against A_bar" if diag else f"({n},)"
            hint = ("; a square A_bar is read as one dense matrix: pass diagonal=True if its "
                    "rows are diagonals") if not diag and x.shape == A_bar.shape else ""
            raise ValueError(f"{name} must be {want} for A_bar of shape {tuple(A_bar.shape)}; "
                             f"got shape {tuple(x.shape)}{hint}")
    return A_bar, B_bar, C, diag


# --- the convolution kernel K_k = C A_bar^k B_bar -------------------------------------------


def _check_length(L) -> int:
    """L as an int >= 1; Python and NumPy integers are accepted, bools and floats are not."""
    if isinstance(L, bool) or not isinstance(L, numbers.Integral) or L < 1:
        raise ValueError(f"L must be a positive int, got {L!r}")
    return int(L)


def kernel_ref(A_bar, B_bar, C, L: int, *, diagonal: bool | None = None) -> torch.Tensor:
    """The kernel by its definition: the response of the SSM to a unit impulse.

    Fed u = (1, 0, 0, ...), the recurrence x_k = A_bar x_{k-1} + B_bar u_k (x_{-1} = 0)
    gives x_k = A_bar^k B_bar, so its output y_k = C x_k is K_k = C A_bar^k B_bar: one step,
    one power more.

    Args:
        A_bar: ``(n, n)`` dense or ``(..., n)`` diagonal.
        B_bar, C: ``(n,)``, or broadcasting against a diagonal ``A_bar``.
        L: the kernel length (>= 1).

    Returns:
        K of shape ``(L,)`` (dense) or ``(..., L)`` (diagonal; the broadcast batch shape).
    """
    L = _check_length(L)
    A_bar, B_bar, C, diag = _check_ssm(A_bar, B_bar, C, diagonal)
    shape = torch.broadcast_shapes(A_bar.shape, B_bar.shape) if diag else B_bar.shape
    x = torch.zeros(shape, dtype=torch.promote_types(A_bar.dtype, B_bar.dtype),
                    device=A_bar.device)  # x_{-1} = 0
    K = []
    for k in range(L):
        x = (A_bar * x if diag else A_bar @ x) + (B_bar if k == 0 else 0)  # the impulse at k = 0
        K.append((C * x).sum(-1))
    return torch.stack(K, dim=-1)


def kernel(A_bar, B_bar, C, L: int, *, diagonal: bool | None = None) -> torch.Tensor:
    """The kernel K_k = C A_bar^k B_bar, k = 0..L-1, computed without a loop over k.

    * Diagonal A_bar = diag(λ): K_k = Σ_n C_n B_bar_n λ_n^k, a Vandermonde product with
      λ_n^k = exp(k log λ_n) (:func:`_powers`). Each power is computed directly, so errors
      do not pile up over k as in a product of k factors, and L can be long.
    * Dense A_bar: powers by repeated squaring. The vectors [B_bar, A_bar B_bar, ...,
      A_bar^{2^j - 1} B_bar] are doubled with A_bar^{2^j}: log2(L) matrix products.
      (Not an eigendecomposition: for non-normal matrices such as HiPPO's the
      eigenvector matrix is so ill-conditioned that it would return noise.)

    Args and shapes: as :func:`kernel_ref`. Real inputs give a real K, complex a complex one.
    """
    L = _check_length(L)
    A_bar, B_bar, C, diag = _check_ssm(A_bar, B_bar, C, diagonal)
    if diag:
        CB, V = C * B_bar, _powers(A_bar, L)  # (..., n) and (..., n, L); V real for real λ
        dtype = torch.promote_types(CB.dtype, V.dtype)
        return torch.einsum("...n,...nl->...l", CB.to(dtype), V.to(dtype))
    V, P = B_bar.unsqueeze(-1), A_bar  # V: (n, 2^j) columns A^k B_bar; P = A_bar^{2^j}
    while True:  # at least one doubling: A_bar is an input of K even at L = 1 (K_0 = C B_bar)
        V = torch.cat([V, P @ V], dim=-1)
        if V.shape[-1] >= L:
            return C @ V[:, :L]  # (L,)
        P = P @ P


def _powers(lam: torch.Tensor, L: int) -> torch.Tensor:
    """λ^k for k = 0 … L−1, each as exp(k log λ): ``(..., n)`` → ``(..., n, L)``.

    Complex λ: |λ|^k e^{ik·arg λ}, as a modulus and an angle (the same numbers as torch.exp
    of the complex product, about four times faster on a CPU). Real λ: |λ|^k, negated for
    odd k when λ < 0, in real arithmetic, so that a power past the dtype's range is ±inf
    as in a product of k factors (in complex arithmetic its zero imaginary part, inf · 0,
    would be NaN). λ^0 = 1, also for λ = 0.
    """
    k = torch.arange(1, L, device=lam.device, dtype=lam.real.dtype)
    if lam.is_complex():
        log_lam = torch.log(lam).unsqueeze(-1)  # (..., n, 1)
        powers = torch.polar(torch.exp(k * log_lam.real), k * log_lam.imag)  # (..., n, L-1)
    else:
        modulus = torch.exp(k * torch.log(lam.abs()).unsqueeze(-1))  # (..., n, L-1)
        powers = torch.where((lam < 0).unsqueeze(-1) & (k % 2 == 1), -modulus, modulus)
    ones = torch.ones(*powers.shape[:-1], 1, dtype=powers.dtype, device=powers.device)
    return torch.cat([ones, powers], dim=-1)


# --- the recurrent view -----------------------------------------------------------------------


def step(A_bar, B_bar, C, x, u_t, *, diagonal: bool | None = None):
    """One step of the recurrence: x ← A_bar x + B_bar u_t, y_t = C x.

    Args:
        x: the state, ``(b, n)`` or ``(b, d, n)``.
        u_t: the input now, ``(b,)`` or ``(b, d)``.

    Returns:
        ``(y_t, x)``: the output ``(b,)`` or ``(b, d)`` and the new state.
    """
    u_t = u_t.unsqueeze(-1)
    if is_diagonal(A_bar, diagonal):
        x = A_bar * x + B_bar * u_t
    else:
        x = x @ A_bar.transpose(-1, -2) + B_bar * u_t
    return (C * x).sum(-1), x


def recurrent(A_bar, B_bar, C, u, *, diagonal: bool | None = None,
              return_state: bool = False):
    """Run the SSM over a sequence step by step — the definition, written to be read.

    Args:
        A_bar: dense ``(n, n)`` or diagonal ``(n,)``, shared by every channel, or
            diagonal ``(d, n)``, one SSM per channel.
        B_bar, C: ``(n,)`` (dense) or broadcasting against a diagonal ``A_bar``.
        u: ``(b, l)``, or ``(b, l, d)`` for d channels.
        return_state: also return the last state.

    Returns:
        y with the shape of u (complex if any argument is complex), and the last state
        ``(b, [d,] n)`` when asked.
    """
    A_bar, B_bar, C, diag = _check_ssm(A_bar, B_bar, C, diagonal)
    u = _as_float_tensor(u, "u")
    if u.ndim not in (2, 3):
        raise ValueError(f"u must be (b, l) or (b, l, d), got shape {tuple(u.shape)}")
    if u.shape[1] == 0:
        raise ValueError(f"u must have l >= 1 time steps, got shape {tuple(u.shape)}")
    batch = (u.shape[0], *u.shape[2:])  # (b,) or (b, d)
    if diag and A_bar.ndim == 2 and (u.ndim != 3 or A_bar.shape[0] != u.shape[2]):
        raise ValueError(f"A_bar of shape {tuple(A_bar.shape)} has one SSM per channel, so u "
                         f"must be (b, l, {A_bar.shape[0]}); got shape {tuple(u.shape)}")
    dtype = torch.promote_types(torch.promote_types(A_bar.dtype, B_bar.dtype),
                                torch.promote_types(C.dtype, u.dtype))
    x = torch.zeros(*batch, A_bar.shape[-1], dtype=dtype, device=u.device)  # (b, [d,] n)
    ys = []
    for t in range(u.shape[1]):
        y_t, x = step(A_bar, B_bar, C, x, u[:, t].to(dtype), diagonal=diag)
        ys.append(y_t)
    y = torch.stack(ys, dim=1)  # (b, l[, d])
    return (y, x) if return_state else y


# --- the convolutional view -----------------------------------------------------------------


def _check_conv(u, K):
    u, K = _as_float_tensor(u, "u"), _as_float_tensor(K, "K")
    if u.ndim not in (2, 3):
        raise ValueError(f"u must be (b, l) or (b, l, d), got shape {tuple(u.shape)}")
    ok = K.ndim == 1 or (K.ndim == 2 and u.ndim == 3 and K.shape[0] == u.shape[2])
    if not ok or K.shape[-1] < 1:
        raise ValueError(f"K must be (l_K,) or, for u of shape (b, l, d), (d, l_K); got K of "
                         f"shape {tuple(K.shape)} and u of shape {tuple(u.shape)}")
    return u, K


def convolve_ref(u, K) -> torch.Tensor:
    """Causal convolution by its definition: y_t = Σ_{j=0}^{t} K_j u_{t-j}.

    Args:
        u: ``(b, l)`` or ``(b, l, d)``.
        K: ``(l_K,)``, or ``(d, l_K)`` for one kernel per channel; K_j = 0 for j >= l_K.

    Returns:
        y with the shape of u.
    """
    u, K = _check_conv(u, K)
    l = u.shape[1]
    y = torch.zeros_like(u, dtype=torch.promote_types(u.dtype, K.dtype))
    for j in range(min(l, K.shape[-1])):
        y[:, j:] = y[:, j:] + K[..., j] * u[:, : l - j]  # lag j: u_{t-j} reaches y_t
    return y


def convolve(u, K) -> torch.Tensor:
    """Causal convolution with the FFT: O(l log l) and parallel over time.

    The FFT computes a *circular* convolution, which would wrap the end of the
    sequence around onto its start. Zero-padding both signals to length l + l_K
    (at least 2l when the kernel is as long as the input) leaves room for the whole
    linear convolution, whose first l values are the causal output.

    Args and Returns: as :func:`convolve_ref`. Half-precision inputs are transformed in
    float32 (the FFT needs at least 32 bits) and the result rounded back.
    """
    u, K = _check_conv(u, K)
    l = u.shape[1]
    n_fft = l + K.shape[-1]
    dtype = torch.promote_types(u.dtype, K.dtype)
    K = K.to(torch.promote_types(dtype, torch.float32))
    u_t = u.movedim(1, -1).to(K.dtype)  # (b, [d,] l): time last for the FFT
    if u.is_complex() or K.is_complex():
        y = torch.fft.ifft(torch.fft.fft(u_t, n=n_fft) * torch.fft.fft(K, n=n_fft), n=n_fft)
    else:
        y = torch.fft.irfft(torch.fft.rfft(u_t, n=n_fft) * torch.fft.rfft(K, n=n_fft), n=n_fft)
    return y[..., :l].movedim(-1, 1).to(dtype)  # (b, l[, d])


# --- S4D: a layer of diagonal SSMs ----------------------------------------------------------


def s4d_A(init: str, d_state: int) -> torch.Tensor:
    """The S4D initialisations of the diagonal A: d_state/2 modes, one per conjugate pair.

    * ``"lin"``  (S4D-Lin):  A_n = −1/2 + iπn — frequencies spaced evenly, like a Fourier basis;
    * ``"inv"``  (S4D-Inv):  A_n = −1/2 + i (N/π)(N/(2n+1) − 1) — the asymptotics of HiPPO-LegS;
    * ``"real"`` (S4D-Real): A_n = −(n+1) — the real eigenvalues of HiPPO-LegS; no oscillation.

    Here N = ``d_state`` and n = 0 .. N/2 − 1; each mode also stands for its conjugate,
    so the layer's state size is N. (The official code stores the conjugate convention
    A_n = −1/2 − iπn; the kernel 2·Re(...) is the same.)

    Returns:
        A ``(d_state // 2,)`` complex64.
    """
    N = _check_d_state(d_state)
    n = torch.arange(N // 2, dtype=torch.float32)
    if init == "lin":
        return torch.complex(torch.full_like(n, -0.5), math.pi * n)
    if init == "inv":
        return torch.complex(torch.full_like(n, -0.5), N / math.pi * (N / (2 * n + 1) - 1))
    if init == "real":
        return torch.complex(-(n + 1), torch.zeros_like(n))
    raise ValueError(f"init must be 'lin', 'inv' or 'real', got {init!r}")


_INITS = ("lin", "inv", "real")


def _check_d_state(d_state) -> int:
    if isinstance(d_state, bool) or not isinstance(d_state, numbers.Integral) or d_state < 2 \
            or d_state % 2:
        raise ValueError(f"d_state must be an even int >= 2, got {d_state!r}")
    return int(d_state)


@dataclass(frozen=True)
class S4DConfig:
    """An S4D layer: ``d_model`` channels, each a diagonal SSM with state size ``d_state``.

    Checked when made: ``d_model`` a positive int, ``d_state`` an even int >= 2 (Python or
    NumPy integers), ``init`` one of :func:`s4d_A`'s, and 0 < ``dt_min`` <= ``dt_max`` < inf.
    """

    d_model: int
    d_state: int = 64
    init: str = "lin"
    dt_min: float = 1e-3
    dt_max: float = 1e-1

    def __post_init__(self):
        if isinstance(self.d_model, bool) or not isinstance(self.d_model, numbers.Integral) \
                or self.d_model < 1:
            raise ValueError(f"d_model must be a positive int, got {self.d_model!r}")
        object.__setattr__(self, "d_model", int(self.d_model))  # frozen: set once, here
        object.__setattr__(self, "d_state", _check_d_state(self.d_state))
        if self.init not in _INITS:
            raise ValueError(f"init must be 'lin', 'inv' or 'real', got {self.init!r}")
        dts = (self.dt_min, self.dt_max)
        if not (all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in dts)
                and 0 < self.dt_min <= self.dt_max < math.inf):
            raise ValueError(f"need 0 < dt_min <= dt_max < inf, got {self.dt_min!r}, "
                             f"{self.dt_max!r}")


class S4D(nn.Module):
    """S4D: one diagonal, complex SSM per channel, trained as a convolution.

    Per channel h, with A_h = −exp(log_A_real) + i·A_imag (so Re A < 0: stable while
    training), Δ_h = exp(log_dt), and ZOH:

        K_h = 2·Re(kernel(A_bar_h, B_bar_h, C_h, L)),   y_h = K_h * u_h + D_h u_h.

    Only N/2 modes are stored; each stands for itself and its conjugate, whose
    contribution is the complex conjugate — hence 2·Re. As in the official minimal
    S4D, B is fixed to ones (B and C enter K only through their product C_n B_n) and
    the layer has no activation or output mixing of its own (:class:`S4DClassifier`
    adds those around it).

    Shapes: ``(b, l, d_model)`` → ``(b, l, d_model)``.
    """

    def __init__(self, config: S4DConfig):
        super().__init__()
        if not isinstance(config, S4DConfig):
            raise TypeError(f"config must be an S4DConfig, got {type(config).__name__}")
        self.config = config
        d, A = config.d_model, s4d_A(config.init, config.d_state)  # A: (n,) with n = N/2
        log_dt = torch.empty(d, 1).uniform_(math.log(config.dt_min), math.log(config.dt_max))
        self.log_dt = nn.Parameter(log_dt)  # (d, 1): log-uniform Δ per channel
        self.log_A_real = nn.Parameter(torch.log(-A.real).repeat(d, 1))  # (d, n)
        self.A_imag = nn.Parameter(A.imag.repeat(d, 1))  # (d, n)
        C = torch.randn(d, A.shape[0], dtype=torch.complex64)  # (d, n)
        self.C = nn.Parameter(torch.view_as_real(C))  # stored as (d, n, 2) real
        self.register_buffer("B", torch.ones(d, A.shape[0]))  # real: .to(dtype) keeps it whole
        self.D = nn.Parameter(torch.randn(d))

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(A_bar, B_bar, C)``, each ``(d, n)`` complex, by ZOH with each channel's Δ.

        In at least float32 (complex64): a layer cast to half precision computes its kernel
        from float32 copies of its parameters."""
        real = torch.promote_types(self.log_A_real.dtype, torch.float32)
        A = torch.complex(-torch.exp(self.log_A_real.to(real)), self.A_imag.to(real))
        A_bar, B_bar = zoh(A, self.B, torch.exp(self.log_dt.to(real)), diagonal=True)
        return A_bar, B_bar, torch.view_as_complex(self.C.to(real))

    def kernel(self, L: int) -> torch.Tensor:
        """The real kernel of every channel, ``(d, L)``."""
        return 2 * kernel(*self.discrete(), L, diagonal=True).real

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """The convolutional view: ``(b, l, d)`` → ``(b, l, d)``, in the layer's dtype."""
        self._check_input(u, "(b, l, d_model)")
        return (convolve(u, self.kernel(u.shape[1])) + self.D * u).to(u.dtype)

    def _check_input(self, u, letters: str) -> None:
        """u must have the shape ``letters`` names (last axis d_model) and the layer's dtype."""
        d = self.config.d_model
        if not isinstance(u, torch.Tensor):
            raise TypeError(f"u must be a torch.Tensor {letters}, got {type(u).__name__}")
        axes = letters.count(",") + 1
        if u.ndim != axes or u.shape[-1] != d:
            want = "(" + "?, " * (axes - 1) + f"{d})"
            raise ValueError(f"u must have shape {letters} = {want}, got {tuple(u.shape)}")
        if u.dtype != self.D.dtype:
            raise TypeError(f"u must have the layer's dtype {self.D.dtype}, got {u.dtype} "
                            "(convert one: layer.to(dtype) or u.to(dtype))")

    def step(self, u_t: torch.Tensor, x: torch.Tensor | None = None):
        """The recurrent view, one step: u_t ``(b, d)``, state x ``(b, d, n)`` complex.

        Returns:
            ``(y_t, x)``: the output ``(b, d)`` and the new state.
        """
        self._check_input(u_t, "(b, d_model)")
        A_bar, B_bar, C = self.discrete()
        if x is None:
            x = torch.zeros(u_t.shape[0], *A_bar.shape, dtype=A_bar.dtype, device=u_t.device)
        y_t, x = step(A_bar, B_bar, C, x, u_t.to(A_bar.dtype), diagonal=True)
        return (2 * y_t.real + self.D * u_t).to(u_t.dtype), x

    def recurrent(self, u: torch.Tensor) -> torch.Tensor:
        """The recurrent view over a whole sequence, for checking: equals ``forward(u)``."""
        self._check_input(u, "(b, l, d_model)")
        y = recurrent(*self.discrete(), u, diagonal=True)  # (b, l, d) complex
        return (2 * y.real + self.D * u).to(u.dtype)


@dataclass(frozen=True)
class S4DClassifierConfig:
    """A sequence classifier: encoder → n_layers S4D blocks → mean over time → decoder."""

    d_input: int = 1
    n_classes: int = 10
    d_model: int = 32
    d_state: int = 32
    n_layers: int = 2
    init: str = "lin"
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    dropout: float = 0.0


class S4DBlock(nn.Module):
    """A residual, pre-norm block: x + Dropout(Linear(GELU(S4D(LayerNorm(x))))).

    The S4D layer mixes time within each channel; the Linear mixes the channels.
    """

    def __init__(self, config: S4DConfig, dropout: float = 0.0):
        super().__init__()
        self.norm, self.ssm = nn.LayerNorm(config.d_model), S4D(config)
        self.mix, self.dropout = nn.Linear(config.d_model, config.d_model), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, l, d) -> (b, l, d)
        return x + self.dropout(self.mix(nn.functional.gelu(self.ssm(self.norm(x)))))

    def step(self, x_t: torch.Tensor, state: torch.Tensor | None = None):
        """The block at one position: x_t ``(b, d)`` → ``(y_t, state)``, state ``(b, d, n)``."""
        y_t, state = self.ssm.step(self.norm(x_t), state)
        return x_t + self.dropout(self.mix(nn.functional.gelu(y_t))), state


class S4DClassifier(nn.Module):
    """Classify a sequence: ``(b, l, d_input)`` or ``(b, l)`` → logits ``(b, n_classes)``.

    Linear encoder → ``n_layers`` :class:`S4DBlock` → LayerNorm → mean over time → Linear.
    """

    def __init__(self, config: S4DClassifierConfig):
        super().__init__()
        self.config = c = config
        layer = S4DConfig(c.d_model, c.d_state, c.init, c.dt_min, c.dt_max)
        self.encoder = nn.Linear(c.d_input, c.d_model)
        self.blocks = nn.Sequential(*(S4DBlock(layer, c.dropout) for _ in range(c.n_layers)))
        self.norm, self.decoder = nn.LayerNorm(c.d_model), nn.Linear(c.d_model, c.n_classes)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if u.ndim == 2:
            u = u.unsqueeze(-1)  # (b, l, 1)
        x = self.blocks(self.encoder(u))  # (b, l, d)
        return self.decoder(self.norm(x).mean(dim=1))  # (b, n_classes)

    @torch.no_grad()
    def recurrent(self, u: torch.Tensor) -> torch.Tensor:
        """The same logits as :meth:`forward`, computed one position at a time.

        Each block runs its S4D layer in the recurrent view (:meth:`S4D.step`), carrying a
        state of ``(b, d, n)`` numbers from step to step; the mean over time is a running
        sum. Nothing looks back: each step costs the same, whatever came before.
        """
        if u.ndim == 2:
            u = u.unsqueeze(-1)  # (b, l, 1)
        states = [None] * len(self.blocks)
        total = 0
        for t in range(u.shape[1]):
            x_t = self.encoder(u[:, t])  # (b, d)
            for i, block in enumerate(self.blocks):
                x_t, states[i] = block.step(x_t, states[i])
            total = total + self.norm(x_t)
        return self.decoder(total / u.shape[1])  # (b, n_classes)
