"""The memory problem: what it costs to carry the past, and what a fixed state forgets.

A network reading a sequence must carry the past into the present. Chapter 1
measures the two extreme answers, implemented here as small step-by-step models:

* **compress** — :class:`RunningState` keeps a fixed-size state,
  ``h_t = tanh(W h_{t-1} + U x_t)``: the same work and memory at every step;
* **keep everything** — :class:`AttentionCache` stores a key and a value for every
  past token and attends over all of them: work and memory grow with the history.

Then it asks what a fixed state of size ``n`` can remember: for a linear state
``h_t = A h_{t-1} + B u_t`` driven by white noise, how much of the input ``k`` steps
back can be read out of ``h_t`` (:func:`recall_theory`, :func:`recall_measured`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sseq.causal_conv import ConvCache

__all__ = [
    "AttentionCache",
    "RunningState",
    "attend",
    "attention",
    "bench_main",
    "influence",
    "linear_memory",
    "per_token_cost",
    "plot_recall",
    "recall_explorer",
    "recall_attention",
    "recall_measured",
    "recall_theory",
    "running_state",
]


KINDS = ("state", "attention", "convolution")  # the models per_token_cost can price


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _check_lags(ks) -> np.ndarray:
    """ks as a 1-D int64 array of lags k >= 0 (Python or NumPy integers)."""
    lags = np.asarray(ks)
    if lags.ndim != 1 or lags.size == 0:
        raise ValueError(f"ks must be a non-empty sequence of lags k >= 0, got {ks!r}")
    if not (np.issubdtype(lags.dtype, np.integer) and lags.dtype != np.bool_):
        raise TypeError(f"ks must be integer lags, got {lags.tolist()}")
    if (lags < 0).any():
        raise ValueError(f"ks must be lags k >= 0, got {lags.tolist()}")
    return lags.astype(np.int64)


def _generator(seed) -> torch.Generator:
    """A CPU generator seeded with ``seed``, an int >= 0 (Python or NumPy)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    return torch.Generator().manual_seed(int(seed))


def _weights(generator: torch.Generator, d_out: int, d_in: int, gain: float = 1.0):
    return gain * torch.randn(d_out, d_in, generator=generator) / math.sqrt(d_in)


# ---------------------------------------------------------------------------------------
# Two ways to carry the past, one token at a time
# ---------------------------------------------------------------------------------------


class RunningState:
    """Compress: a fixed-size state updated once per token.

        h_t = tanh(W h_{t-1} + U x_t),    y_t = h_t

    Args:
        d_model: size of each token x_t (d).
        d_state: size of the state h_t (n); defaults to d_model.
        seed: seeds the random weights.
    """

    def __init__(self, d_model: int, d_state: int | None = None, *, seed: int = 0):
        d_model = _check_positive_int("d_model", d_model)
        d_state = _check_positive_int("d_state", d_model if d_state is None else d_state)
        g = _generator(seed)
        self.W = _weights(g, d_state, d_state, gain=0.9)  # gain < 1: a stable recurrence
        self.U = _weights(g, d_state, d_model)
        self.h = torch.zeros(d_state)

    @torch.no_grad()
    def step(self, x: torch.Tensor) -> torch.Tensor:
        """Read one token x_t of shape ``(d,)``; return the new state ``(n,)``."""
        self.h = torch.tanh(self.W @ self.h + self.U @ x)
        return self.h

    def memory_bytes(self) -> int:
        """Bytes of history the model holds: the state, whatever the length."""
        return self.h.numel() * self.h.element_size()


class AttentionCache:
    """Keep everything: store a key and a value per token, attend over all of them.

        q_t, k_t, v_t = W_q x_t, W_k x_t, W_v x_t
        y_t = sum_s softmax_s(q_t · k_s / sqrt(d)) v_s,    s = 1..t

    Keys and values live in preallocated buffers (the "KV cache"), so adding a
    token costs no copy and the time measured is the attention itself.

    Args:
        d_model: size of each token x_t (d).
        capacity: the most tokens the cache can hold.
        seed: seeds the random weights.
    """

    def __init__(self, d_model: int, *, capacity: int = 2**16, seed: int = 0):
        d_model = _check_positive_int("d_model", d_model)
        capacity = _check_positive_int("capacity", capacity)
        g = _generator(seed)
        self.W_q, self.W_k, self.W_v = (_weights(g, d_model, d_model) for _ in range(3))
        self.keys = torch.zeros(capacity, d_model)    # (capacity, d)
        self.values = torch.zeros(capacity, d_model)  # (capacity, d)
        self.length = 0

    @torch.no_grad()
    def step(self, x: torch.Tensor) -> torch.Tensor:
        """Read one token x_t of shape ``(d,)``; return the attention output ``(d,)``."""
        if self.length == len(self.keys):
            raise ValueError(f"the cache is full: capacity={len(self.keys)} tokens")
        t = self.length
        self.keys[t], self.values[t] = self.W_k @ x, self.W_v @ x
        self.length = t + 1
        return attend(self.W_q @ x, self.keys[: t + 1], self.values[: t + 1])

    def fill(self, n: int, *, seed: int = 1) -> None:
        """Pretend n random tokens were read (for measuring at history length n)."""
        if not 0 <= n <= len(self.keys):
            raise ValueError(f"n must be in [0, {len(self.keys)}], got {n}")
        g = _generator(seed)
        self.keys[:n] = torch.randn(n, self.keys.shape[1], generator=g)
        self.values[:n] = torch.randn(n, self.keys.shape[1], generator=g)
        self.length = n

    def memory_bytes(self) -> int:
        """Bytes of history the model holds: a key and a value per token read."""
        return 2 * self.length * self.keys.shape[1] * self.keys.element_size()


def attend(q: torch.Tensor, K: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """One query attending over a history: ``softmax(K q / sqrt(d)) V``.

    Args:
        q: the query, shape ``(d,)``.
        K: keys, shape ``(t, d)``; V: values, shape ``(t, d_v)``.

    Returns:
        The weighted average of the values, shape ``(d_v,)``.
    """
    if q.ndim != 1 or K.ndim != 2 or V.ndim != 2:
        raise ValueError(f"expected q (d,), K (t, d), V (t, d_v); got q {tuple(q.shape)}, "
                         f"K {tuple(K.shape)}, V {tuple(V.shape)}")
    if K.shape[1] != q.shape[0] or K.shape[0] != V.shape[0]:
        raise ValueError(f"shapes do not match: q {tuple(q.shape)}, K {tuple(K.shape)}, "
                         f"V {tuple(V.shape)}")
    scores = K @ q / math.sqrt(q.shape[0])       # (t,)
    weights = torch.softmax(scores, dim=0)       # subtracts the max: no overflow
    return weights @ V                           # (d_v,)


def per_token_cost(kind: str, lengths, *, d_model: int = 64, repeat: int = 5,
                   number: int = 20) -> dict:
    """Time and memory of reading one more token after a history of each length.

    Args:
        kind: ``"state"`` (:class:`RunningState`), ``"attention"`` (:class:`AttentionCache`)
            or ``"convolution"`` (:class:`sseq.causal_conv.ConvCache`, width 4, 2 layers).
        lengths: history lengths t to measure at.
        d_model: token size d.
        repeat, number: timing rounds and calls per round (see :func:`sseq.bench.time_fn`).

    Returns:
        ``{"length": (L,), "seconds": (L,), "bytes": (L,)}`` as NumPy arrays: the median
        seconds per token and the bytes of history held at each length.
    """
    from sseq.bench import time_fn

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    lengths = [_check_positive_int("lengths", n) for n in lengths]
    x = torch.randn(d_model, generator=torch.Generator().manual_seed(0))
    seconds, held = [], []
    for n in lengths:
        if kind in ("state", "convolution"):
            model = RunningState(d_model) if kind == "state" else ConvCache(d_model)
            for _ in range(min(n, 8)):  # the same size after 8 or 10**6 tokens: fixed window
                model.step(x)
        else:
            model = AttentionCache(d_model, capacity=n + (repeat + 1) * number + 1)
            model.fill(n)
        held.append(model.memory_bytes())
        seconds.append(time_fn(lambda m=model: m.step(x), repeat=repeat, number=number).median)
    return {"length": np.array(lengths), "seconds": np.array(seconds), "bytes": np.array(held)}


# ---------------------------------------------------------------------------------------
# Causality and the reach of the past: who influences whom
# ---------------------------------------------------------------------------------------


def running_state(x: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """Run a :class:`RunningState` over a whole sequence ``(l, d)`` → states ``(l, d)``."""
    model = RunningState(x.shape[1], seed=seed)
    h, out = torch.zeros(x.shape[1], dtype=x.dtype), []
    for x_t in x:  # not model.step: we need gradients here
        h = torch.tanh(model.W @ h + model.U @ x_t)
        out.append(h)
    return torch.stack(out)


def attention(x: torch.Tensor, *, causal: bool = True, seed: int = 0) -> torch.Tensor:
    """Self-attention over a whole sequence ``(l, d)`` → ``(l, d)``, causal or not."""
    model = AttentionCache(x.shape[1], capacity=1, seed=seed)
    q, k, v = x @ model.W_q.T, x @ model.W_k.T, x @ model.W_v.T    # (l, d) each
    scores = q @ k.T / math.sqrt(x.shape[1])                          # (l, l)
    if causal:  # position t may look at s <= t only
        future = torch.triu(torch.ones_like(scores, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def influence(model, x: torch.Tensor) -> torch.Tensor:
    """How much each input moves each output: ``I[t, s] = ||∂y_t / ∂x_s||``.

    A causal model has ``I[t, s] = 0`` for every future input s > t.

    Args:
        model: a function from a sequence ``(l, d)`` to outputs ``(l, d)``.
        x: the input sequence, shape ``(l, d)``.

    Returns:
        The influence matrix, shape ``(l, l)``: row t is output y_t, column s input x_s.
    """
    if x.ndim != 2:
        raise ValueError(f"x must have shape (l, d), got {tuple(x.shape)}")
    jac = torch.autograd.functional.jacobian(model, x)   # (l, d, l, d)
    return jac.pow(2).sum(dim=(1, 3)).sqrt()


# ---------------------------------------------------------------------------------------
# What a fixed state of size n can recall: a linear state driven by white noise
# ---------------------------------------------------------------------------------------


def linear_memory(n: int, *, kind: str = "orthogonal", rho: float = 0.95, seed: int = 0):
    """A linear state ``h_t = A h_{t-1} + B u_t`` of size n for a scalar input u_t.

    Args:
        n: state size.
        kind: ``"shift"`` — a delay line, h_t = (u_t, u_{t-1}, ..., u_{t-n+1});
            ``"orthogonal"`` — a random rotation scaled by ``rho``: it mixes the past
            into all n numbers, and fades it by ``rho`` per step.
        rho: the spectral radius of the "orthogonal" state, in (0, 1).
        seed: seeds the random matrices.

    Returns:
        ``(A, B)`` float64 NumPy arrays of shapes ``(n, n)`` and ``(n,)``.
    """
    n = _check_positive_int("n", n)
    if not 0 < rho < 1:
        raise ValueError(f"rho must be in (0, 1) for a stable state, got {rho}")
    rng = np.random.default_rng(seed)
    if kind == "shift":
        return np.eye(n, k=-1), np.eye(n)[0]
    if kind == "orthogonal":
        Q, R = np.linalg.qr(rng.standard_normal((n, n)))
        return rho * Q * np.sign(np.diag(R)), rng.standard_normal(n) / np.sqrt(n)
    raise ValueError(f"kind must be 'shift' or 'orthogonal', got {kind!r}")


def _stationary_covariance(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Σ = Σ_j A^j B Bᵀ (A^j)ᵀ, the state's covariance under unit white noise.

    Solves Σ = A Σ Aᵀ + B Bᵀ by doubling: Σ_{2m} = Σ_m + A^m Σ_m (A^m)ᵀ.
    """
    sigma, power = np.outer(B, B), A.copy()
    for _ in range(64):
        step = power @ sigma @ power.T
        sigma = sigma + step
        if np.abs(step).max() <= 1e-15 * np.abs(sigma).max():
            break
        power = power @ power
    return sigma


def recall_theory(A: np.ndarray, B: np.ndarray, ks) -> np.ndarray:
    """The best linear recall of u_{t-k} from h_t, as a fraction of its variance.

        R²_k = (A^k B)ᵀ Σ⁻¹ (A^k B),   Σ = Cov(h_t)

    R²_k = 1 means u_{t-k} can be read out of the state exactly, 0 means it is gone.
    Summed over all k it never exceeds n, the state size (Jaeger, 2001).

    Returns:
        R²_k for each k in ``ks``, shape ``(len(ks),)``.
    """
    ks = _check_lags(ks)
    sigma_pinv = np.linalg.pinv(_stationary_covariance(A, B), rcond=1e-10, hermitian=True)
    G = np.empty((ks.max() + 1, len(B)))  # row k: g_k = A^k B, how u_{t-k} sits in h_t
    G[0] = B
    for k in range(1, len(G)):
        G[k] = A @ G[k - 1]
    r2 = np.einsum("kn,nm,km->k", G, sigma_pinv, G)
    return np.clip(r2[ks], 0.0, 1.0)


def recall_measured(A: np.ndarray, B: np.ndarray, ks, *, length: int = 4000,
                    seed: int = 0) -> np.ndarray:
    """Measure R²_k: drive the state with white noise, fit a linear read-out, test it.

    Every k uses the same steps t = max(ks) … length − 1, the ones at which u_{t-k} exists
    for all k: the read-out of u_{t-k} from h_t is fitted by least squares on the first
    half of them and scored on the second half, R² = 1 - MSE / Var(u).

    Returns:
        Measured R²_k for each k in ``ks``, shape ``(len(ks),)``.
    """
    ks, length = _check_lags(ks), _check_positive_int("length", length)
    n, kmax = len(B), int(ks.max())
    if length - kmax < 4 * n:  # each half needs more pairs than the read-out has weights
        raise ValueError(f"length={length} leaves {length - kmax} pairs (h_t, u_(t-k)) for "
                         f"max(ks)={kmax}; fitting and scoring a state of size {n} needs at "
                         f"least {4 * n}: length >= {kmax + 4 * n}")
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(length)
    H = np.zeros((length, n))
    h = np.zeros(n)
    for t in range(length):
        h = A @ h + B * u[t]
        H[t] = h
    split = (length - kmax) // 2  # pairs for fitting; the rest score
    out = []
    for k in ks:
        X, y = H[kmax:], u[kmax - k: length - k]   # pair h_t with u_{t-k}
        w = np.linalg.lstsq(X[:split], y[:split], rcond=None)[0]
        resid = y[split:] - X[split:] @ w
        out.append(1.0 - resid.var() / y[split:].var())
    return np.clip(np.array(out), 0.0, 1.0)


def _attention_reads(u, keys, steps, k: int, sharpness: float) -> torch.Tensor:
    """attend(sharpness · k_{t-k}, K[:t+1], u[:t+1]) for every step t at once: ``(q,)``.

    One masked softmax over all steps: position s > t is not yet in the cache at step t.
    """
    future = torch.arange(len(u))[None, :] > steps[:, None]  # (q, l)
    scores = sharpness * keys[steps - k] @ keys.T / math.sqrt(keys.shape[1])  # (q, l)
    return torch.softmax(scores.masked_fill(future, -math.inf), dim=-1) @ u  # (q,)


def recall_attention(ks, *, length: int = 2000, d_model: int = 64, sharpness: float = 4.0,
                     queries: int = 400, seed: int = 0) -> np.ndarray:
    """Measure R²_k for attention, with the protocol of :func:`recall_measured`.

    The KV cache stores every token of a white-noise stream: the value v_s = u_s, and a key
    k_s, a random ±1 code of position s in d dimensions (nearly orthogonal to the others).
    To read u_{t-k}, the query is the key of position t − k, sharpened:
    q = ``sharpness`` · k_{t-k}, and :func:`attend` returns softmax(K q / sqrt(d)) V over the
    t + 1 tokens in the cache (computed for all steps at once, the future masked). A scalar
    read-out of that output is fitted by least squares
    on the first half of ``queries`` random steps t and scored on the second half,
    R² = 1 − MSE / Var(u), as for the running states.

    Returns:
        Measured R²_k for each k in ``ks``, shape ``(len(ks),)``.
    """
    ks, length = _check_lags(ks), _check_positive_int("length", length)
    queries, d = _check_positive_int("queries", queries), _check_positive_int("d_model", d_model)
    kmax = int(ks.max())
    if length - kmax < queries or queries < 4:
        raise ValueError(f"need 4 <= queries <= length - max(ks) = {length - kmax}, got "
                         f"queries={queries}")
    g = _generator(seed)
    u = torch.randn(length, generator=g, dtype=torch.float64)  # (l,)
    keys = torch.randint(0, 2, (length, d), generator=g, dtype=torch.float64) * 2 - 1  # (l, d)
    steps = kmax + torch.randperm(length - kmax, generator=g)[:queries]  # (q,) steps t
    half, out = queries // 2, []
    for k in ks:
        read = _attention_reads(u, keys, steps, int(k), sharpness)  # (q,)
        target = u[steps - k]
        w = (read[:half] @ target[:half]) / (read[:half] @ read[:half])  # least squares
        resid = target[half:] - w * read[half:]
        out.append(1.0 - float(resid.var() / target[half:].var()))
    return np.clip(np.array(out), 0.0, 1.0)


def plot_recall(ax, n: int = 16, *, kind: str = "orthogonal", rho: float = 0.95,
                k_max: int = 64):
    """Plot R²_k against k for a state of size n, beside attention's perfect recall."""
    ks = np.arange(k_max + 1)
    A, B = linear_memory(n, kind=kind, rho=rho)
    r2 = recall_theory(A, B, ks)
    ax.plot(ks, np.ones_like(ks, dtype=float), color="#D55E00", linestyle="--",
            label="attention over the whole history")
    ax.plot(ks, r2, color="#0072B2", marker=".", label=f"{kind} state, n = {n}")
    ax.axvline(n, color="#7f7f7f", linewidth=1, linestyle=":")
    ax.set(xlabel="distance k (steps back)", ylabel="recall R²", ylim=(-0.05, 1.05),
           title=f"What a state of size {n} remembers (total {r2.sum():.1f} ≤ n = {n})")
    ax.legend(loc="center right")
    return ax


def recall_explorer():
    """An ipywidgets explorer: state size, kind and rho → the recall curve."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    def update(n=16, kind="orthogonal", rho=0.95):
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        plot_recall(ax, n, kind=kind, rho=rho)
        plt.show()

    return widgets.interactive(
        update,
        n=widgets.IntSlider(value=16, min=1, max=48, description="state size n"),
        kind=widgets.Dropdown(options=["orthogonal", "shift"], description="kind"),
        rho=widgets.FloatSlider(value=0.95, min=0.5, max=0.99, step=0.01, description="ρ"),
    )


def bench_main(args) -> None:
    """``python -m sseq.bench memory``: per-token cost of both answers against history."""
    from sseq.bench import format_table

    lengths = [2**p for p in range(6, 13 if args.quick else 17, 2)]
    rows = []
    for kind in KINDS:
        cost = per_token_cost(kind, lengths)
        rows += [{"model": kind, "history": int(n), "us/token": 1e6 * s, "bytes held": int(b)}
                 for n, s, b in zip(cost["length"], cost["seconds"], cost["bytes"], strict=True)]
    print(format_table(rows))
