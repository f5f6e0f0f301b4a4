"""Vanishing and exploding gradients, measured: ‖∂h_T/∂h_t‖ against the distance T − t.

Backpropagation through time multiplies one Jacobian per step:

    ∂h_T/∂h_t = J_T J_{T-1} ··· J_{t+1},    J_s = ∂h_s/∂h_{s-1} = diag(φ'(a_s)) W,

where a_s = W h_{s-1} + u_s is the pre-activation and u_s = U x_s + b the input
drive. Two cases are exact or nearly so:

* **linear** (φ(a) = a): the product is W^{T-t}. Taking W = ρ Q with Q orthogonal
  makes every singular value of W equal to ρ, so ‖∂h_T/∂h_t‖ = ρ^{T-t} *exactly*:
  it vanishes for ρ < 1, stays 1 at ρ = 1 and explodes for ρ > 1.
* **tanh**: each step also multiplies by diag(1 − h_s²), entries in (0, 1]. A
  typical direction shrinks by their root mean square γ_s, which gives the
  geometric-rate estimate ρ^{T-t} Π γ_s; their maximum gives a rigorous upper
  bound ρ^{T-t} Π max φ'. Saturation pulls γ_s below 1, so even ρ > 1 can vanish.

Shapes: ``l`` length (T), ``n`` hidden size (``d_hidden``); vectors are unbatched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["CarouselCurve", "GradientCurve", "explore", "gradient_explorer", "gradient_norms",
           "jacobian_norms", "lstm_gradient_norms", "plot_gradient_norms", "scaled_orthogonal",
           "unroll"]

NONLINEARITIES = ("tanh", "linear")


def scaled_orthogonal(d_hidden: int, rho: float, *, seed: int = 0):
    """A recurrent matrix W = ρ Q with Q a random orthogonal matrix (float64).

    All eigenvalues of W have modulus ρ and all singular values equal ρ, so its
    spectral radius and its norm are both ρ, and ‖W^k‖₂ = ρ^k.

    Returns:
        W, ``(n, n)`` float64.
    """
    g = torch.Generator().manual_seed(seed)
    Q, R = torch.linalg.qr(torch.randn(d_hidden, d_hidden, generator=g, dtype=torch.float64))
    Q = Q * torch.sign(torch.diagonal(R))  # a uniformly random orthogonal matrix
    return rho * Q


def unroll(W, drive, nonlinearity: str = "tanh"):
    """Run h_s = φ(W h_{s-1} + u_s) from h_0 = 0, keeping every state in the graph.

    Args:
        W: ``(n, n)``; drive: the input drive u_s = U x_s + b, ``(l, n)``.
        nonlinearity: ``"tanh"`` or ``"linear"``.

    Returns:
        ``(states, slopes)``: the list ``[h_0, ..., h_l]`` of ``(n,)`` tensors (h_0 a
        leaf that requires grad), and φ'(a_s) for s = 1..l, ``(l, n)``.
    """
    h = torch.zeros(W.shape[0], dtype=W.dtype, requires_grad=True)
    states, slopes = [h], []
    for u in drive:
        a = W @ states[-1] + u  # (n,)
        if nonlinearity == "tanh":
            states.append(torch.tanh(a))
            slopes.append(1 - states[-1].detach() ** 2)
        else:
            states.append(a)
            slopes.append(torch.ones_like(u))
    return states, torch.stack(slopes)


def jacobian_norms(states):
    """‖∂h_T/∂h_t‖₂ (largest singular value) for every t, by autograd.

    Backpropagating from one component h_T[i] gives row i of every Jacobian
    ∂h_T/∂h_t at once; n backward passes give them all.

    Args:
        states: ``[h_0, ..., h_T]`` from :func:`unroll`.

    Returns:
        ``(T + 1,)`` numpy array; entry k is the norm at distance k = T − t.
    """
    h_T = states[-1]
    rows = [torch.stack(torch.autograd.grad(h_T[i], states, retain_graph=True))  # (T + 1, n)
            for i in range(h_T.shape[0])]
    jacobians = torch.stack(rows, dim=1)  # (T + 1, n, n): [t, i, j] = ∂h_T[i] / ∂h_t[j]
    norms = torch.linalg.matrix_norm(jacobians, ord=2)  # (T + 1,)
    return norms.flip(0).numpy()


@dataclass(frozen=True)
class GradientCurve:
    """‖∂h_T/∂h_t‖ against distance k = T − t, measured and predicted."""

    rho: float
    nonlinearity: str
    distance: np.ndarray  # (T + 1,) k = 0, 1, ..., T
    measured: np.ndarray  # autograd
    predicted: np.ndarray  # ρ^k Π γ_s, the geometric rate (exact when linear)
    bound: np.ndarray  # ρ^k Π max φ', an upper bound


def gradient_norms(rho: float, length: int, *, d_hidden: int = 32, nonlinearity: str = "tanh",
                   input_scale: float = 0.5, seed: int = 0) -> GradientCurve:
    """Measure ‖∂h_T/∂h_t‖ for an RNN with W = ρ Q and random inputs, and predict it.

    Args:
        rho: the spectral radius ρ > 0 of the recurrent matrix.
        length: T >= 1, the number of steps.
        d_hidden: n, the state size.
        nonlinearity: ``"tanh"`` or ``"linear"``.
        input_scale: standard deviation of the Gaussian input drive u_s.
        seed: seeds W and the inputs.

    Returns:
        A :class:`GradientCurve` with arrays of shape ``(T + 1,)``.
    """
    _check_args(rho, length, d_hidden, nonlinearity, input_scale)
    W = scaled_orthogonal(d_hidden, rho, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    drive = input_scale * torch.randn(length, d_hidden, generator=g, dtype=torch.float64)
    states, slopes = unroll(W, drive, nonlinearity)  # slopes (l, n)
    k = np.arange(length + 1)
    # the k most recent steps' factors, multiplied: entry k uses steps T-k+1 .. T
    rms = np.concatenate([[1.0], np.cumprod(slopes.pow(2).mean(1).sqrt().flip(0).numpy())])
    top = np.concatenate([[1.0], np.cumprod(slopes.max(1).values.flip(0).numpy())])
    return GradientCurve(float(rho), nonlinearity, k, jacobian_norms(states),
                         rho**k * rms, rho**k * top)


@dataclass(frozen=True)
class CarouselCurve:
    """‖∂c_T/∂c_t‖ of an LSTM's cell against distance k = T − t, and its carousel path."""

    forget_bias: float
    distance: np.ndarray  # (T + 1,) k = 0, 1, ..., T
    measured: np.ndarray  # autograd: every path from c_t to c_T
    carousel: np.ndarray  # ‖Π_s diag(f_s)‖ = max_i Π_s f_s[i], the additive path alone
    forget_mean: float  # the mean forget gate over the run


def lstm_gradient_norms(length: int, *, d_hidden: int = 32, forget_bias: float = 3.0,
                        input_scale: float = 0.5, seed: int = 0,
                        recurrent: bool = True) -> CarouselCurve:
    """Measure how far back the gradient reaches through an LSTM's cell (the error carousel).

    An LSTM with PyTorch's initialization (weights uniform in ±1/sqrt(n), biases 0) but a
    forget-gate bias ``forget_bias`` reads ``length`` random inputs (n channels, standard
    deviation ``input_scale``). By autograd, ‖∂c_T/∂c_t‖₂ for every t: the total effect of the
    cell at step t on the last cell, through every path (also through h_t and the gates).
    The step is :func:`sseq.nn.lstm_cell`'s, written out so that c_t is one node of the
    graph. Along the additive path alone,
    c_s = f_s ⊙ c_{s-1} + ..., the Jacobian is Π_s diag(f_s): no weight matrix, no tanh slope.

    Args:
        length: T >= 1; d_hidden: n.
        forget_bias: the forget gate's bias; σ(bias) is its typical value before training.
        input_scale, seed: the inputs' size and the seed of weights and inputs.
        recurrent: ``False`` zeroes W_hh, so that the gates depend on the inputs alone and
            the carousel is the only path (a check: then measured = carousel exactly).

    Returns:
        A :class:`CarouselCurve` with arrays of shape ``(T + 1,)``.
    """
    _check_args(1.0, length, d_hidden, "tanh", input_scale)
    n, g = d_hidden, torch.Generator().manual_seed(seed)
    bound = 1 / np.sqrt(n)
    w_ih, w_hh = ((2 * torch.rand(4 * n, n, generator=g, dtype=torch.float64) - 1) * bound
                  for _ in range(2))
    w_hh = w_hh if recurrent else torch.zeros_like(w_hh)
    bias = torch.zeros(4 * n, dtype=torch.float64)
    bias[n:2 * n] = forget_bias  # gate order (i, f, g, o)
    x = input_scale * torch.randn(length, n, generator=g, dtype=torch.float64)  # (l, n)
    h = torch.zeros(n, dtype=torch.float64)
    cells = [torch.zeros(n, dtype=torch.float64, requires_grad=True)]  # c_0, a leaf; (n,) each
    forget = []
    for x_t in x:  # sseq.nn.lstm_cell's equations, with c_t kept as one node of the graph
        i, f, g_t, o = (x_t @ w_ih.T + h @ w_hh.T + bias).chunk(4)  # each (n,)
        forget.append(torch.sigmoid(f).detach())
        cells.append(torch.sigmoid(f) * cells[-1] + torch.sigmoid(i) * torch.tanh(g_t))
        h = torch.sigmoid(o) * torch.tanh(cells[-1])  # h_t reads c_t: that path counts too
    measured = jacobian_norms(cells)
    f = torch.stack(forget)  # (l, n): f_1 .. f_T
    paths = torch.cumprod(f.flip(0), dim=0).max(dim=1).values.numpy()  # k = 1 .. T
    return CarouselCurve(float(forget_bias), np.arange(length + 1), measured,
                         np.concatenate([[1.0], paths]), float(f.mean()))


def plot_gradient_norms(ax, curves, *, bound: bool = False):
    """Measured norms (markers) and the predicted geometric rate (dashed) on a log axis.

    Args:
        ax: a matplotlib Axes.
        curves: :class:`GradientCurve` objects, one colour each.
        bound: also draw the upper bound ρ^k Π max φ' (dotted).

    Returns:
        ``ax``.
    """
    for curve in curves:
        step = max(1, len(curve.distance) // 20)  # about 20 markers per curve
        line = ax.semilogy(curve.distance[::step], curve.measured[::step], "o", ms=4,
                           label=f"ρ = {curve.rho:g} measured")[0]
        ax.semilogy(curve.distance, curve.predicted, "--", color=line.get_color(), alpha=0.8,
                    label="predicted" if curve is curves[0] else None)
        if bound:
            ax.semilogy(curve.distance, curve.bound, ":", color=line.get_color(), alpha=0.8,
                        label="upper bound" if curve is curves[0] else None)
    ax.set_xlabel("distance T − t (steps)")
    ax.set_ylabel("‖∂h_T / ∂h_t‖")
    ax.legend()
    return ax


def explore(rho: float = 1.0, length: int = 60, nonlinearity: str = "tanh", ax=None):
    """The chapter's widget: spectral radius and length → the gradient-norm curve.

    Returns:
        ``(ax, curve)``: the drawn Axes and the :class:`GradientCurve`.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    curve = gradient_norms(rho, length, nonlinearity=nonlinearity)
    plot_gradient_norms(ax, [curve], bound=nonlinearity == "tanh")
    ax.set_title(f"{nonlinearity} RNN, ρ = {rho:g}: ‖∂h_T/∂h_0‖ = {curve.measured[-1]:.2g}")
    return ax, curve


def gradient_explorer():
    """An ipywidgets explorer: spectral radius, length and nonlinearity → the gradient curve."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    def update(rho=1.0, length=60, nonlinearity="tanh"):
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        explore(rho, length, nonlinearity, ax=ax)
        plt.show()

    return widgets.interactive(
        update,
        rho=widgets.FloatSlider(value=1.0, min=0.5, max=1.5, step=0.05, description="ρ"),
        length=widgets.IntSlider(value=60, min=5, max=200, step=5, description="length T"),
        nonlinearity=widgets.Dropdown(options=list(NONLINEARITIES), description="φ"),
    )


def _check_args(rho, length, d_hidden, nonlinearity, input_scale):
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not rho > 0:
        raise ValueError(f"rho must be a positive number, got {rho!r}")
    for name, value in (("length", length), ("d_hidden", d_hidden)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")
    if isinstance(input_scale, bool) or not isinstance(input_scale, (int, float)) \
            or input_scale < 0:
        raise ValueError(f"input_scale must be a number >= 0, got {input_scale!r}")
