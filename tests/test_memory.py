"""Chapter 1's models against independent oracles: torch's attention, closed forms, scipy."""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.linalg  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from sseq import memory  # noqa: E402
from sseq.checks import ch01  # noqa: E402


def test_running_state_is_the_tanh_recurrence_and_holds_constant_memory():
    model = memory.RunningState(3, 5)
    x1, x2 = torch.randn(3), torch.randn(3)
    h1 = torch.tanh(model.U @ x1)
    expected = torch.tanh(model.W @ h1 + model.U @ x2)
    model.step(x1)
    assert torch.allclose(model.step(x2), expected, atol=1e-6)
    assert model.memory_bytes() == 5 * 4


def test_attention_cache_equals_torch_causal_attention():
    """Reading tokens one by one with a KV cache = causal attention over the sequence."""
    l, d = 9, 8
    x = torch.randn(l, d)
    cache = memory.AttentionCache(d, capacity=l)
    stepwise = torch.stack([cache.step(x_t) for x_t in x])
    q, k, v = x @ cache.W_q.T, x @ cache.W_k.T, x @ cache.W_v.T
    oracle = F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True)[0]
    torch.testing.assert_close(stepwise, oracle, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(memory.attention(x, causal=True), oracle, rtol=1e-5, atol=1e-6)
    assert cache.memory_bytes() == 2 * l * d * 4


def test_attention_cache_rejects_overflow_and_bad_fill():
    cache = memory.AttentionCache(4, capacity=1)
    cache.step(torch.randn(4))
    with pytest.raises(ValueError, match="the cache is full: capacity=1"):
        cache.step(torch.randn(4))
    with pytest.raises(ValueError, match=r"n must be in \[0, 1\], got 5"):
        cache.fill(5)


def test_attend_matches_a_float64_formula_and_survives_large_scores():
    q, K, V = torch.randn(4) * 40, torch.randn(6, 4) * 40, torch.randn(6, 3)
    s = (K.double() @ q.double()) / 2.0
    w = np.exp((s - s.max()).numpy())
    expected = torch.from_numpy(w / w.sum()) @ V.double()
    out = memory.attend(q, K, V)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("shapes", "message"), [
    (((4,), (6, 3), (6, 3)), "shapes do not match"),
    (((4, 1), (6, 4), (6, 3)), r"expected q \(d,\), K \(t, d\), V \(t, d_v\)"),
])
def test_attend_names_bad_shapes(shapes, message):
    with pytest.raises(ValueError, match=message):
        memory.attend(*(torch.randn(s) for s in shapes))


def test_influence_shows_causality():
    x = torch.randn(6, 3)
    for model in (memory.running_state, memory.attention):
        upper = torch.triu(memory.influence(model, x), diagonal=1)
        assert upper.abs().max() == 0.0  # nothing flows from the future
    full = memory.influence(lambda s: memory.attention(s, causal=False), x)
    future = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    assert full[future].min() > 0.0  # bidirectional attention sees the future


def test_per_token_cost_memory_is_linear_for_attention_and_constant_for_state():
    attention = memory.per_token_cost("attention", [10, 100], d_model=8, repeat=1, number=1)
    state = memory.per_token_cost("state", [10, 100], d_model=8, repeat=1, number=1)
    assert list(attention["bytes"]) == [2 * 10 * 8 * 4, 2 * 100 * 8 * 4]
    assert list(state["bytes"]) == [8 * 4, 8 * 4]
    assert (attention["seconds"] > 0).all()
    with pytest.raises(ValueError, match="kind must be one of .*, got 'cnn'"):
        memory.per_token_cost("cnn", [1])


def test_per_token_cost_leaves_the_global_random_state_alone():
    """Protects the notebooks' reproducibility: measuring the cost draws its token from a
    generator of its own, so the random numbers drawn after it (a later cell's data or
    weights) are the same whether or not the measurement ran."""
    torch.manual_seed(123)
    before = torch.get_rng_state()
    for kind in memory.KINDS:
        memory.per_token_cost(kind, [3], d_model=4, repeat=1, number=1)
    assert torch.equal(torch.get_rng_state(), before)


def test_attention_recall_is_measured_by_attend_itself():
    """The batched, masked read-out of recall_attention is attend() at every query step."""
    g = torch.Generator().manual_seed(1)
    u = torch.randn(200, generator=g, dtype=torch.float64)
    keys = torch.randint(0, 2, (200, 16), generator=g, dtype=torch.float64) * 2 - 1
    steps = torch.tensor([3, 50, 120, 199])
    reads = memory._attention_reads(u, keys, steps, 3, 0.7)  # blunt: every weight counts
    for t, read in zip(steps.tolist(), reads, strict=True):
        expected = memory.attend(0.7 * keys[t - 3], keys[: t + 1], u[: t + 1, None])[0]
        assert abs(float(read - expected)) < 1e-12
    r2 = memory.recall_attention([0, 3, 9], length=300, d_model=64, queries=40, seed=1)
    assert r2.shape == (3,) and (r2 > 1 - 1e-9).all()  # sharp position codes: exact recall


def test_attention_reads_are_attend_for_any_keys():
    """Protects the batched read-out for keys that are not ±1 codes: the query is sharpness ·
    k_{t-k} (a product, whatever the keys), attend() over the history up to t."""
    g = torch.Generator().manual_seed(2)
    u = torch.randn(30, generator=g, dtype=torch.float64)
    keys = torch.randn(30, 5, generator=g, dtype=torch.float64) * 1.5
    steps = torch.tensor([2, 11, 29])
    reads = memory._attention_reads(u, keys, steps, 2, 0.8)
    for t, read in zip(steps.tolist(), reads, strict=True):
        expected = memory.attend(0.8 * keys[t - 2], keys[: t + 1], u[: t + 1, None])[0]
        assert abs(float(read - expected)) < 1e-12


def attention_recall_recipe(ks, length, d, sharpness, queries, seed):
    """recall_attention written out step by step, attend() called at every query step; the R²
    before clipping."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(length, generator=g, dtype=torch.float64)
    keys = torch.randint(0, 2, (length, d), generator=g, dtype=torch.float64) * 2 - 1
    kmax = max(ks)
    steps = (kmax + torch.randperm(length - kmax, generator=g)[:queries]).tolist()
    half, out = queries // 2, []
    for k in ks:
        read = np.array([float(memory.attend(sharpness * keys[t - k], keys[: t + 1],
                                             u[: t + 1, None])[0]) for t in steps])
        target = np.array([float(u[t - k]) for t in steps])
        w = read[:half] @ target[:half] / (read[:half] @ read[:half])
        out.append(1 - (target[half:] - w * read[half:]).var() / target[half:].var())
    return np.array(out)


def test_recall_attention_follows_its_recipe():
    """Protects recall_attention against its protocol written out: white noise u and ±1 position
    codes as keys from one generator seeded with ``seed``, ``queries`` random steps t >=
    max(ks), the read-out of u_{t-k} fitted on the first half and scored on the second, R²
    clipped to [0, 1]; and the global random state is left alone."""
    ks = [0, 3, 7]
    want = attention_recall_recipe(ks, length=80, d=8, sharpness=0.7, queries=30, seed=3)
    before = torch.get_rng_state()
    got = memory.recall_attention(ks, length=80, d_model=8, sharpness=0.7, queries=30, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    np.testing.assert_allclose(got, np.clip(want, 0, 1), rtol=1e-9, atol=1e-12)
    assert 0 < got.max() < 1
    want = attention_recall_recipe([0, 5, 9], length=60, d=8, sharpness=0.0, queries=20, seed=1)
    got = memory.recall_attention([0, 5, 9], length=60, d_model=8, sharpness=0.0, queries=20,
                                  seed=1)
    assert want.min() < 0 and got.min() == 0.0  # a negative R² is clipped to 0
    np.testing.assert_allclose(got, np.clip(want, 0, 1), rtol=1e-9, atol=1e-12)


def test_recall_attention_defaults(monkeypatch):
    """Protects the documented defaults that Chapter 1's plot uses: a history of 2000 tokens,
    keys of d = 64, sharpness 4, 400 query steps, seed 0."""
    seen, read = [], memory._attention_reads
    monkeypatch.setattr(memory, "_attention_reads",
                        lambda *args: seen.append(args) or read(*args))
    memory.recall_attention([2])
    u, keys, steps, k, sharpness = seen[0]
    g = torch.Generator().manual_seed(0)
    assert torch.equal(u, torch.randn(2000, generator=g, dtype=torch.float64))
    assert keys.shape == (2000, 64) and steps.shape == (400,) and (k, sharpness) == (2, 4.0)


def test_recall_attention_checks_its_sizes_by_name():
    """Protects the messages of recall_attention's checks, and their bounds: exactly
    length − max(ks) queries and exactly 4 queries are allowed."""
    assert memory.recall_attention([5], length=25, d_model=8, queries=20).shape == (1,)
    assert memory.recall_attention([0], length=25, d_model=8, queries=4).shape == (1,)
    for kwargs, message in (
            (dict(length=0), "length must be >= 1, got 0"),
            (dict(queries=2.5), "queries must be an int, got float (2.5)"),
            (dict(d_model=0), "d_model must be >= 1, got 0"),
            (dict(length=25, queries=21), "need 4 <= queries <= length - max(ks) = 20, got "
                                          "queries=21"),
            (dict(length=25, queries=3), "need 4 <= queries <= length - max(ks) = 20, got "
                                         "queries=3")):
        with pytest.raises((TypeError, ValueError)) as info:
            memory.recall_attention([5], **kwargs)
        assert str(info.value) == message


def test_attention_recall_can_fail():
    """A blunt query (sharpness 0: uniform weights) averages the past and recalls little."""
    r2 = memory.recall_attention([0, 5], length=400, d_model=16, sharpness=0.0, queries=100)
    assert (r2 < 0.2).all()
    with pytest.raises(ValueError, match="need 4 <= queries <= length - max"):
        memory.recall_attention([50], length=60, queries=20)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"n": 0}, ValueError, "n must be >= 1, got 0"),
    ({"n": 2.5}, TypeError, "n must be an int, got float"),
    ({"n": 4, "rho": 1.0}, ValueError, r"rho must be in \(0, 1\)"),
    ({"n": 4, "kind": "magic"}, ValueError, "kind must be 'shift' or 'orthogonal'"),
])
def test_linear_memory_rejects_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        memory.linear_memory(**kwargs)


def test_shift_register_recalls_exactly_n_steps():
    A, B = memory.linear_memory(8, kind="shift")
    np.testing.assert_allclose(memory.recall_theory(A, B, range(12)), [1.0] * 8 + [0.0] * 4,
                               atol=1e-12)


def test_scalar_state_recall_matches_the_closed_form():
    lam = 0.8
    ks = np.arange(10)
    got = memory.recall_theory(np.array([[lam]]), np.array([1.0]), ks)
    np.testing.assert_allclose(got, lam ** (2 * ks) * (1 - lam**2), rtol=1e-10)


def test_stationary_covariance_matches_scipy_lyapunov():
    A, B = memory.linear_memory(12, kind="orthogonal", rho=0.9)
    oracle = scipy.linalg.solve_discrete_lyapunov(A, np.outer(B, B))
    np.testing.assert_allclose(memory._stationary_covariance(A, B), oracle, rtol=1e-9,
                               atol=1e-12)


@pytest.mark.parametrize("n", [4, 16])
def test_total_recall_never_exceeds_the_state_size(n):
    A, B = memory.linear_memory(n, kind="orthogonal", rho=0.95)
    assert memory.recall_theory(A, B, range(400)).sum() <= n + 1e-6


def test_measured_recall_agrees_with_theory():
    A, B = memory.linear_memory(8, kind="orthogonal", rho=0.9)
    ks = [0, 2, 5, 10, 20]
    np.testing.assert_allclose(memory.recall_measured(A, B, ks, length=6000),
                               memory.recall_theory(A, B, ks), atol=0.03)


def test_measured_recall_with_a_lag_past_half_the_run():
    """A lag k >= length / 2 must not spoil the others (issue 9: every R² came back 0): the
    read-out is fitted and scored on the pairs (h_t, u_{t-k}) that exist for every k."""
    A, B = memory.linear_memory(8, kind="orthogonal", rho=0.9)
    ks = [0, 2, 5, 10, 3500]
    np.testing.assert_allclose(memory.recall_measured(A, B, ks, length=6000),
                               memory.recall_theory(A, B, ks), atol=0.05)
    with pytest.raises(ValueError, match=r"length=6000 leaves 10 pairs"):
        memory.recall_measured(A, B, [0, 5990], length=6000)


@pytest.mark.parametrize("fn", [memory.recall_theory, memory.recall_measured])
@pytest.mark.parametrize("ks, error, message", [
    ([-1], ValueError, r"ks must be lags k >= 0, got \[-1\]"),
    ([0, 1.7], TypeError, r"ks must be integer lags, got \[0.0, 1.7\]"),
    ([], ValueError, "ks must be a non-empty sequence"),
    (3, ValueError, "ks must be a non-empty sequence"),
])
def test_recall_refuses_bad_lags(fn, ks, error, message):
    """k = −1 used to wrap around to the last lag computed, k = 1.7 to be truncated to 1."""
    A, B = memory.linear_memory(4)
    with pytest.raises(error, match=message):
        fn(A, B, ks)


def test_numpy_integer_sizes_and_seeds_are_accepted():
    a, b = memory.RunningState(np.int64(3), seed=np.int64(2)), memory.RunningState(3, seed=2)
    assert torch.equal(a.W, b.W) and torch.equal(a.U, b.U)
    cache = memory.AttentionCache(np.int64(4), capacity=np.int64(8), seed=np.int64(1))
    cache.fill(np.int64(3), seed=np.int64(5))
    assert cache.length == 3
    with pytest.raises(ValueError, match="seed must be an int >= 0, got -1"):
        memory.RunningState(3, seed=-1)


def test_plot_recall_and_explorer():
    fig, ax = plt.subplots()
    assert memory.plot_recall(ax, 8, kind="shift", k_max=16) is ax
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [1.0] * 8 + [0.0] * 9, atol=1e-12)
    assert "total 8.0" in ax.get_title()
    plt.close(fig)
    explorer = memory.recall_explorer()
    assert [w.description for w in explorer.children[:3]] == ["state size n", "kind", "ρ"]
    explorer.children[0].value = 4  # the update runs without a browser
    plt.close("all")


def test_check_attend_passes_a_right_answer_and_catches_mistakes():
    def mine(q, K, V):
        return torch.softmax(K @ q / math.sqrt(q.shape[0]), dim=0) @ V

    assert ch01.check_attend(mine)
    if "MUTANT_UNDER_TEST" not in os.environ:  # make mutants: attend is mutmut's trampoline,
        report = ch01.check_attend(memory.attend)  # which calls the code of a mutant copy
        assert not report and "calls sseq.memory.attend" in report.lines[0]  # the book's own

    def unscaled(q, K, V):
        return torch.softmax(K @ q, dim=0) @ V

    def naive(q, K, V):
        e = torch.exp(K @ q / math.sqrt(q.shape[0]))
        return (e / e.sum()) @ V

    report = ch01.check_attend(unscaled)
    assert not report and any("sqrt(d)" in line for line in report.lines)
    report = ch01.check_attend(naive)
    assert report.n_passed == report.n_cases - 1
    assert "subtract the largest score" in report.lines[-1]


def test_check_cache_bytes():
    assert ch01.check_cache_bytes((256, 5_120_000))
    assert not ch01.check_cache_bytes((256, 2_560_000))
    assert "no answer yet" in ch01.check_cache_bytes(...).lines[0]


def test_check_scalar_recall():
    lam, k = ch01.symbols()
    assert ch01.check_scalar_recall(lam ** (2 * k) - lam ** (2 * k + 2))
    assert not ch01.check_scalar_recall(lam**k)


# --- what the mutation tests found untested (make mutants) ------------------------------------


def test_plot_recall_draws_the_chapter_figure():
    """Protects the recall figure readers see: attention's flat line at 1 (dashed, its
    colour), the state's R²_k with dots, a dotted mark at k = n, the labels, limits, title and
    legend; and the defaults n = 16, orthogonal, ρ = 0.95, k up to 64."""
    from matplotlib.colors import to_rgba

    fig, ax = plt.subplots()
    memory.plot_recall(ax, 6, kind="orthogonal", rho=0.9, k_max=20)
    flat, state, mark = ax.get_lines()
    ks = np.arange(21)
    np.testing.assert_array_equal(flat.get_xdata(), ks)
    np.testing.assert_array_equal(flat.get_ydata(), np.ones(21))
    assert flat.get_linestyle() == "--" and to_rgba(flat.get_color()) == to_rgba("#D55E00")
    A, B = memory.linear_memory(6, kind="orthogonal", rho=0.9)
    r2 = memory.recall_theory(A, B, ks)
    np.testing.assert_allclose(state.get_ydata(), r2)
    assert state.get_marker() == "." and to_rgba(state.get_color()) == to_rgba("#0072B2")
    assert list(mark.get_xdata()) == [6, 6] and mark.get_linestyle() == ":"
    assert mark.get_linewidth() == 1 and to_rgba(mark.get_color()) == to_rgba("#7f7f7f")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("distance k (steps back)", "recall R²")
    assert ax.get_ylim() == (-0.05, 1.05)
    assert ax.get_title() == f"What a state of size 6 remembers (total {r2.sum():.1f} ≤ n = 6)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "attention over the whole history", "orthogonal state, n = 6"]
    assert ax.get_legend()._loc == 7  # center right
    ax.clear()
    memory.plot_recall(ax)
    A, B = memory.linear_memory(16, kind="orthogonal", rho=0.95)
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(),
                               memory.recall_theory(A, B, np.arange(65)))
    plt.close(fig)


def test_recall_explorer_controls_and_redraw(monkeypatch):
    """Protects the explorer's controls (n from 1 to 48 at 16, the two kinds, ρ from 0.5 to
    0.99 by 0.01 at 0.95) and its redraw: a 6.4 × 3.4 figure of the chosen state (ipywidgets
    swallows errors in the update, so the drawn figure is what is checked)."""
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    explorer = memory.recall_explorer()
    n, kind, rho = explorer.children[:3]
    assert [w.description for w in (n, kind, rho)] == ["state size n", "kind", "ρ"]
    assert (n.value, n.min, n.max) == (16, 1, 48)
    assert list(kind.options) == ["orthogonal", "shift"] and kind.value == "orthogonal"
    assert (rho.value, rho.min, rho.max, rho.step) == (0.95, 0.5, 0.99, 0.01)
    shown.clear()
    kind.value = "shift"
    n.value = 4
    fig = shown[-1]
    assert tuple(fig.get_size_inches()) == pytest.approx((6.4, 3.4))
    (ax,) = fig.get_axes()
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata()[:6], [1, 1, 1, 1, 0, 0],
                               atol=1e-12)
    assert ax.get_title().startswith("What a state of size 4 remembers")
    kind.value = "orthogonal"
    rho.value = 0.6
    A, B = memory.linear_memory(4, kind="orthogonal", rho=0.6)
    np.testing.assert_allclose(shown[-1].get_axes()[0].get_lines()[1].get_ydata(),
                               memory.recall_theory(A, B, np.arange(65)))
    plt.close("all")


def test_running_state_and_cache_weights_come_from_their_seed():
    """Protects the models' weights against the formulas: W = 0.9·N(0, 1)/√n (a stable
    recurrence), U, W_q, W_k, W_v = N(0, 1)/√d, drawn in that order from a generator seeded
    with ``seed`` (default 0); d_state defaults to d_model; fill draws keys then values from
    its own seed (default 1), and filling none is allowed."""
    g = torch.Generator().manual_seed(4)
    model = memory.RunningState(3, 5, seed=4)
    torch.testing.assert_close(model.W, 0.9 * torch.randn(5, 5, generator=g) / math.sqrt(5))
    torch.testing.assert_close(model.U, torch.randn(5, 3, generator=g) / math.sqrt(3))
    default = memory.RunningState(3)
    assert default.W.shape == (3, 3)
    assert torch.equal(default.W, memory.RunningState(3, 3, seed=0).W)
    g = torch.Generator().manual_seed(2)
    cache = memory.AttentionCache(4, capacity=6, seed=2)
    for W in (cache.W_q, cache.W_k, cache.W_v):
        torch.testing.assert_close(W, torch.randn(4, 4, generator=g) / 2)
    assert torch.equal(memory.AttentionCache(4).W_q, memory.AttentionCache(4, seed=0).W_q)
    cache.fill(3)
    g = torch.Generator().manual_seed(1)
    torch.testing.assert_close(cache.keys[:3], torch.randn(3, 4, generator=g))
    torch.testing.assert_close(cache.values[:3], torch.randn(3, 4, generator=g))
    assert cache.length == 3 and (cache.keys[3:] == 0).all()
    cache.fill(0)
    assert cache.length == 0


def test_models_name_their_bad_sizes_and_seeds():
    """Protects the messages of the argument checks."""
    for call, message in ((lambda: memory.RunningState(3, 0), "^d_state must be >= 1, got 0$"),
                          (lambda: memory.AttentionCache(0), "^d_model must be >= 1, got 0$"),
                          (lambda: memory.AttentionCache(2, capacity=0),
                           "^capacity must be >= 1, got 0$"),
                          (lambda: memory.RunningState(2, seed="1"),
                           "^seed must be an int >= 0, got '1'$"),
                          (lambda: memory.influence(memory.running_state, torch.ones(3)),
                           r"^x must have shape \(l, d\), got \(3,\)$"),
                          (lambda: memory.attend(torch.ones(2), torch.ones(3, 2), torch.ones(3)),
                           r"^expected q \(d,\), K \(t, d\), V \(t, d_v\)"),
                          (lambda: memory.linear_memory(4, rho=0.0), "rho must be in")):
        with pytest.raises(ValueError, match=message):
            call()


def test_sequence_models_are_their_step_models_with_the_same_seed():
    """Protects running_state and attention: they use the weights of RunningState and
    AttentionCache built with their ``seed`` (default 0), and the recurrence adds U x_t."""
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(8))
    for seed in (0, 2):
        model = memory.RunningState(3, seed=seed)
        h, states = torch.zeros(3), []
        for x_t in x:
            h = torch.tanh(model.W @ h + model.U @ x_t)
            states.append(h)
        torch.testing.assert_close(memory.running_state(x, seed=seed), torch.stack(states))
        cache = memory.AttentionCache(3, seed=seed)
        q, k, v = x @ cache.W_q.T, x @ cache.W_k.T, x @ cache.W_v.T
        full = torch.softmax(q @ k.T / math.sqrt(3), dim=-1) @ v
        torch.testing.assert_close(memory.attention(x, causal=False, seed=seed), full)
    torch.testing.assert_close(memory.running_state(x), memory.running_state(x, seed=0))
    torch.testing.assert_close(memory.attention(x), memory.attention(x, seed=0))


def test_linear_memory_is_seeded_and_scaled():
    """Protects linear_memory's draws: Q then B from NumPy's generator seeded with ``seed``
    (default 0), B = N(0, 1)/√n, so that the same seed gives the same state."""
    A, B = memory.linear_memory(5, rho=0.9, seed=3)
    rng = np.random.default_rng(3)
    Q, R = np.linalg.qr(rng.standard_normal((5, 5)))
    np.testing.assert_allclose(A, 0.9 * Q * np.sign(np.diag(R)), rtol=1e-12)
    np.testing.assert_allclose(B, rng.standard_normal(5) / np.sqrt(5), rtol=1e-12)
    A0, B0 = memory.linear_memory(5)
    A1, B1 = memory.linear_memory(5, seed=0)
    assert np.array_equal(A0, A1) and np.array_equal(B0, B1)


def test_bench_memory_prints_both_models_at_each_length(capsys):
    """Protects ``python -m sseq.bench memory --quick``: a row per model and history length
    (64, 256, 1024, 4096), the time per token, and the bytes held: n·4 for the state of 64
    float32 numbers whatever the history, 2·t·64·4 for the cache, and 2 layers · 3 past
    inputs · 64 · 4 for the causal convolution's window (width 4) whatever the history."""
    import argparse

    memory.bench_main(argparse.Namespace(quick=True))
    lines = capsys.readouterr().out.splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == [
        "model", "history", "us/token", "bytes held"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [(r[0], int(r[1]), int(r[3])) for r in rows] == (
        [("state", t, 256) for t in (64, 256, 1024, 4096)]
        + [("attention", t, 2 * t * 64 * 4) for t in (64, 256, 1024, 4096)]
        + [("convolution", t, 2 * 3 * 64 * 4) for t in (64, 256, 1024, 4096)])
    assert all(float(r[2]) > 0 for r in rows)


def test_recall_measured_follows_its_recipe():
    """Protects recall_measured against its recipe written out: white noise from ``seed``
    (default 0, length 4000 by default), the states from h_t = A h_{t−1} + B u_t, a least-
    squares read-out of u_{t−k} fitted on the first half of the common steps and scored on
    the second, R² = 1 − MSE/Var, negative values clipped to 0."""
    A, B = memory.linear_memory(3, kind="shift")
    ks = np.array([0, 2, 3, 5])
    got = memory.recall_measured(A, B, ks, length=60, seed=4)
    rng = np.random.default_rng(4)
    u = rng.standard_normal(60)
    H, h = np.zeros((60, 3)), np.zeros(3)
    for t in range(60):
        h = A @ h + B * u[t]
        H[t] = h
    split, want = (60 - 5) // 2, []
    for k in ks:
        X, y = H[5:], u[5 - k: 60 - k]
        w = np.linalg.lstsq(X[:split], y[:split])[0]
        want.append(1 - (y[split:] - X[split:] @ w).var() / y[split:].var())
    np.testing.assert_allclose(got, np.clip(want, 0, 1), rtol=1e-10, atol=1e-12)
    assert got[0] == pytest.approx(1.0) and got[-1] == 0.0 and want[-1] < 0  # clipped at 0
    A, B = memory.linear_memory(3, rho=0.9)  # a noisy recall: the draws show
    default = memory.recall_measured(A, B, [1, 4])
    assert np.array_equal(default, memory.recall_measured(A, B, [1, 4], length=4000, seed=0))
    assert not np.array_equal(default, memory.recall_measured(A, B, [1, 4], length=4001))
    assert not np.array_equal(default, memory.recall_measured(A, B, [1, 4], seed=1))
    A, B = memory.linear_memory(3, kind="shift")
    assert np.array_equal(memory.recall_measured(A, B, ks, length=60, seed=4), got)


def test_recall_measured_needs_four_pairs_per_weight():
    """Protects the length check: length − max(ks) pairs must be at least 4n (2n to fit, 2n
    to score); exactly 4n is enough, and the message says what to pass."""
    A, B = memory.linear_memory(3, kind="shift")
    assert memory.recall_measured(A, B, [2], length=14).shape == (1,)
    with pytest.raises(ValueError, match=r"^length=13 leaves 11 pairs \(h_t, u_\(t-k\)\) for "
                                         r"max\(ks\)=2; fitting and scoring a state of size 3 "
                                         r"needs at least 12: length >= 14$"):
        memory.recall_measured(A, B, [2], length=13)
    with pytest.raises(ValueError, match="^length must be >= 1"):
        memory.recall_measured(A, B, [2], length=0)


def test_per_token_cost_times_real_steps_of_one_token(monkeypatch):
    """Protects what per_token_cost times: each timed call reads one token (the same seeded
    token x), warm-up and rounds included (1 + repeat·number calls; defaults 5 and 20), after
    up to 8 tokens for the state and a filled history for the cache; lengths named."""
    calls = {"state": [], "attention": []}
    for kind, cls in (("state", memory.RunningState), ("attention", memory.AttentionCache)):
        step = cls.step

        def counting(self, x, kind=kind, step=step):
            calls[kind].append(x.clone())
            return step(self, x)

        monkeypatch.setattr(cls, "step", counting)
    torch.manual_seed(123)  # the token is drawn from its own generator, not the global one
    memory.per_token_cost("state", [16], d_model=4, repeat=2, number=3)
    assert len(calls["state"]) == 8 + 1 + 2 * 3
    x = torch.randn(4, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(t, x) for t in calls["state"])
    cost = memory.per_token_cost("attention", [4], d_model=4, repeat=2, number=3)
    assert len(calls["attention"]) == 1 + 2 * 3 and cost["bytes"][0] == 2 * 4 * 4 * 4
    calls["attention"].clear()
    memory.per_token_cost("attention", [2], d_model=4)
    assert len(calls["attention"]) == 1 + 5 * 20
    with pytest.raises(ValueError, match="^lengths must be >= 1, got 0$"):
        memory.per_token_cost("state", [0])
    with pytest.raises(ValueError, match=r"^d_model must be >= 1, got 0$"):
        memory.RunningState(0)
