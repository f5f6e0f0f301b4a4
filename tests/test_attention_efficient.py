"""Attention without the n × n matrix: tiles, sparse patterns and random features."""

from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
import pytest
import torch

from sseq import attention as A


def qkv(b=2, h=2, h_kv=2, l_q=16, l_k=16, d=8, d_v=8, seed=0, dtype=torch.float64, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(b, h, l_q, d, generator=g, dtype=dtype),
            scale * torch.randn(b, h_kv, l_k, d, generator=g, dtype=dtype),
            torch.randn(b, h_kv, l_k, d_v, generator=g, dtype=dtype))


# ----------------------------------------------------------------------------- flash attention
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("l_q", "l_k"), [(16, 16), (13, 29), (1, 21), (20, 7)])
@pytest.mark.parametrize("block_size", [1, 2, 4, 5, 64])
@pytest.mark.parametrize("h_kv", [2, 1])
def test_flash_equals_direct_in_float64(causal, l_q, l_k, block_size, h_kv):
    q, k, v = (t.requires_grad_() for t in qkv(l_q=l_q, l_k=l_k, h_kv=h_kv, d_v=3))
    tiled = A.flash_attention(q, k, v, causal, block_size)
    direct = A.scaled_dot_product_attention(q, k, v, causal=causal)
    torch.testing.assert_close(tiled, direct, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(direct)
    for a, b in zip(torch.autograd.grad(tiled, (q, k, v), grad),
                    torch.autograd.grad(direct, (q, k, v), grad), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_flash_is_stable_where_a_naive_exp_overflows():
    q, k, v = qkv(l_q=40, l_k=40, dtype=torch.float32, scale=30.0)  # scores of order 10^3
    tiled = A.flash_attention(q, k, v, causal=True, block_size=8)
    assert torch.isfinite(tiled).all()
    torch.testing.assert_close(tiled, A.scaled_dot_product_attention(q, k, v, causal=True),
                               rtol=1e-4, atol=1e-5)


def test_flash_rejects_bad_block_sizes():
    with pytest.raises(ValueError, match="block_size must be a positive int, got 0"):
        A.flash_attention(*qkv(), block_size=0)
    for bad in (2.5, True, "8"):
        with pytest.raises(ValueError, match=f"block_size must be a positive int, got {bad!r}"):
            A.flash_attention(*qkv(), block_size=bad)


def test_flash_defaults_and_scale():
    """Protects the defaults: not causal, and 1/√d unless ``scale`` is given (as the direct
    form)."""
    q, k, v = qkv(l_q=9, l_k=12)
    torch.testing.assert_close(A.flash_attention(q, k, v),
                               A.scaled_dot_product_attention(q, k, v), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(A.flash_attention(q, k, v, True, 4, scale=0.3),
                               A.scaled_dot_product_attention(q, k, v, causal=True, scale=0.3),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("l_q", "l_k"), [(16, 16), (6, 14)])
def test_flash_causal_skips_the_key_blocks_in_the_future(monkeypatch, l_q, l_k):
    """Protects the causal saving: query block i streams only the keys up to its last row's
    diagonal, min(l_k, (i + 1)·B + l_k − l_q), not all l_k (the output alone cannot show it:
    the skipped tiles would be masked entirely)."""
    import sseq.attention.flash as flash

    seen, inner = [], flash._one_query_block
    monkeypatch.setattr(flash, "_one_query_block",
                        lambda q_i, k, v, first, n_keys, *rest: seen.append(n_keys)
                        or inner(q_i, k, v, first, n_keys, *rest))
    A.flash_attention(*qkv(l_q=l_q, l_k=l_k), causal=True, block_size=4)
    assert seen == [min(l_k, i0 + 4 + l_k - l_q) for i0 in range(0, l_q, 4)]
    seen.clear()
    A.flash_attention(*qkv(l_q=l_q, l_k=l_k), causal=False, block_size=4)
    assert seen == [l_k] * len(range(0, l_q, 4))


def test_flash_never_holds_the_n_by_n_matrix():
    n, d = 1024, 32
    q, k, v = qkv(b=1, h=1, h_kv=1, l_q=n, l_k=n, d=d, d_v=d, dtype=torch.float32)
    with torch.no_grad():
        direct = A.peak_tensor_memory(lambda: A.scaled_dot_product_attention(q, k, v,
                                                                             causal=True))
        tiled = A.peak_tensor_memory(lambda: A.flash_attention(q, k, v, True, 128))
    assert direct >= 2 * n * n * 4               # scores and weights, float32
    assert tiled < 4 * n * d * 4 + 16 * 128 * 128 * 4  # the output and a few tiles
    assert tiled < direct / 20


# ----------------------------------------------------------------------------- sparse patterns
def test_sliding_window_mask_is_its_definition():
    l, w = 12, 3
    for causal in (True, False):
        mask = A.sliding_window_mask(l, w, causal=causal)
        expected = torch.tensor([[abs(i - j) < w and (j <= i or not causal) for j in range(l)]
                                 for i in range(l)])
        assert torch.equal(mask, expected)
    assert A.sliding_window_mask(l, w).sum(1).tolist() == [min(i + 1, w) for i in range(l)]


def test_bigbird_layout_has_globals_window_and_random_blocks():
    layout = A.bigbird_layout(16, n_global=2, n_random=3, seed=0)
    assert layout[:2].all() and layout[:, :2].all()          # global blocks
    assert all(layout[i, j] for i in range(16) for j in range(16) if abs(i - j) <= 1)
    window = (torch.arange(16)[:, None] - torch.arange(16)).abs() <= 1
    window[:, :2] = True
    extra = (layout & ~window).sum(1)
    assert extra[2:].tolist() == [3] * 14                    # exactly n_random more per row
    assert torch.equal(layout, A.bigbird_layout(16, 2, 3, seed=0))
    assert not torch.equal(layout, A.bigbird_layout(16, 2, 3, seed=1))
    mask = A.bigbird_mask(64, 4, 2, 3, seed=0)
    assert torch.equal(mask[::4, ::4], layout) and mask.shape == (64, 64)


def test_bigbird_mask_needs_whole_blocks():
    with pytest.raises(ValueError, match="l must be a multiple of block: l = 30, block = 8"):
        A.bigbird_mask(30, 8, 1, 1, seed=0)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize(("window", "block_size"), [(1, 4), (3, 4), (4, 4), (9, 4), (5, 8)])
def test_window_layout_is_exactly_the_blocks_the_window_touches(causal, window, block_size):
    l = 8 * block_size
    mask = A.sliding_window_mask(l, window, causal=causal)
    touched = mask.view(8, block_size, 8, block_size).any(dim=(1, 3))
    assert torch.equal(A.window_layout(8, window, block_size, causal=causal), touched)


def test_block_sparse_bigbird_equals_the_masked_direct_form():
    q, k, v = (t.requires_grad_() for t in qkv(l_q=64, l_k=64, h=4, h_kv=2))
    layout = A.bigbird_layout(8, 1, 2, seed=3)
    sparse = A.block_sparse_attention(q, k, v, layout, 8)
    dense = A.scaled_dot_product_attention(q, k, v, mask=A.expand_layout(layout, 8))
    torch.testing.assert_close(sparse, dense, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(sparse.sum(), (q, k, v)),
                    torch.autograd.grad(dense.sum(), (q, k, v)), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("window", [1, 6, 8, 20])
def test_block_sparse_sliding_window_equals_the_masked_direct_form(causal, window):
    q, k, v = qkv(l_q=48, l_k=48)
    layout = A.window_layout(6, window, 8, causal=causal)
    sparse = A.block_sparse_attention(q, k, v, layout, 8, causal=causal, window=window)
    mask = A.sliding_window_mask(48, window, causal=causal)
    torch.testing.assert_close(sparse, A.scaled_dot_product_attention(q, k, v, mask=mask),
                               rtol=1e-12, atol=1e-12)


def test_block_sparse_rejects_bad_layouts():
    q, k, v = qkv(l_q=16, l_k=16)
    with pytest.raises(ValueError, match=r"layout must be a bool tensor of shape .* = \(4, 4\)"):
        A.block_sparse_attention(q, k, v, torch.ones(3, 3, dtype=torch.bool), 4)
    with pytest.raises(ValueError, match="a multiple of block_size = 5"):
        A.block_sparse_attention(q, k, v, torch.ones(3, 3, dtype=torch.bool), 5)


def test_block_sparse_memory_grows_linearly():
    def peak(n):
        q, k, v = qkv(b=1, h=1, h_kv=1, l_q=n, l_k=n, d=16, d_v=16, dtype=torch.float32)
        layout = A.bigbird_layout(n // 16, 1, 2, seed=0)
        with torch.no_grad():
            return A.peak_tensor_memory(lambda: A.block_sparse_attention(q, k, v, layout, 16))

    ratio = peak(2048) / peak(1024)
    assert 1.8 < ratio < 2.3  # doubling n doubles memory (a dense mask would quadruple it)


# ----------------------------------------------------------------------------- reach and probe
def test_reach_of_a_window_grows_by_a_window_per_layer():
    l, w = 64, 4
    fractions = A.reach(A.sliding_window_mask(l, w, causal=False), 3)
    for layers, fraction in enumerate(fractions, start=1):  # a band of half-width L (w − 1)
        band = A.sliding_window_mask(l, layers * (w - 1) + 1, causal=False)
        assert fraction == pytest.approx(band.float().mean().item())


def test_global_blocks_connect_everything_in_two_layers():
    mask = A.bigbird_mask(128, 8, n_global=1, n_random=0, seed=0)
    fractions = A.reach(mask, 2)
    assert fractions[0] < 0.4 and fractions[1] == 1.0
    assert A.reach(torch.ones(5, 5, dtype=torch.bool), 2) == [1.0, 1.0]
    with pytest.raises(ValueError, match="mask must be a square bool tensor"):
        A.reach(torch.ones(3, 4, dtype=torch.bool), 2)


def test_retrieval_probe_sees_exactly_what_the_mask_allows():
    l, window = 256, 16
    full = A.retrieval_probe(A.pattern_mask("full", l), [1, 15, 16, 200], trials=2)
    assert full["accuracy"] == [1.0] * 4
    local = A.retrieval_probe(A.pattern_mask("sliding window", l, window=window),
                              [1, 15, 16, 200], trials=2)
    assert local["accuracy"][:2] == [1.0, 1.0]
    assert max(local["accuracy"][2:]) < 0.2  # chance is 1/16
    with pytest.raises(ValueError, match="distances must be in"):
        A.retrieval_probe(A.pattern_mask("full", 8), [8])
    with pytest.raises(ValueError, match="pattern must be one of"):
        A.pattern_mask("dilated", 8)


def test_sparsity_plot_and_explorer_update_without_a_browser():
    fig, axes = plt.subplots(1, 2)
    _, fractions = A.plot_sparsity(axes, "sliding window", l=64, window=4, layers=2)
    assert len(fractions) == 2 and fractions[0] < fractions[1]
    assert "reach after 2 layer(s)" in axes[1].get_title()
    explorer = A.sparsity_explorer(l=64)
    names = [c.description for c in explorer.children[:5]]
    assert names == ["pattern", "window (tokens)", "global blocks", "random blocks", "layers"]
    explorer.children[0].value = "sliding window"  # each change reruns the update
    explorer.children[4].value = 3
    plt.close("all")


# ----------------------------------------------------------------------------- Performer
@pytest.mark.parametrize("orthogonal", [False, True])
def test_performer_kernel_estimate_is_unbiased(orthogonal):
    g = torch.Generator().manual_seed(0)
    q = 0.3 * torch.randn(5, 8, generator=g, dtype=torch.float64)
    k = 0.3 * torch.randn(6, 8, generator=g, dtype=torch.float64)
    exact = torch.exp(q @ k.T)
    draws = torch.stack([A.softmax_kernel_estimate(q, k, 16, seed, orthogonal=orthogonal)
                         for seed in range(4000)])
    mean, stderr = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    # within Monte Carlo error (a QR without the sign fix, not quite uniform, is 45 errors off)
    assert ((mean - exact).abs() < 5 * stderr).all()
    assert ((mean - exact).abs() / exact).max() < 0.05


def test_orthogonal_projection_rows():
    W = A.gaussian_projection(20, 8, seed=0)
    block = W[:8] / W[:8].norm(dim=1, keepdim=True)
    torch.testing.assert_close(block @ block.T, torch.eye(8, dtype=torch.float64))
    lengths = A.gaussian_projection(4000, 8, seed=1).norm(dim=1)  # chi with 8 degrees of freedom
    assert lengths.pow(2).mean().item() == pytest.approx(8, rel=0.05)
    with pytest.raises(ValueError, match="n_features must be a positive int"):
        A.gaussian_projection(0, 8, seed=0)


@pytest.mark.parametrize("causal", [False, True])
def test_performer_converges_to_softmax_attention(causal):
    q, k, v = qkv(l_q=32, l_k=32, d=16, scale=0.5)
    errors = A.performer_error(q, k, v, [16, 4096], seeds=range(3), causal=causal)["error"]
    assert errors[1] < errors[0] / 4 and errors[1] < 0.05


def test_performer_is_linear_attention_with_random_features():
    q, k, v = qkv(d=8, scale=0.5)
    W = A.gaussian_projection(64, 8, seed=5)
    phi_q = A.positive_random_features(q / 8**0.25, W)
    phi_k = A.positive_random_features(k / 8**0.25, W)
    expected = A.linear_attention_from_features(phi_q, phi_k, v, causal=True, eps=0.0)
    torch.testing.assert_close(A.performer_attention(q, k, v, 64, 5, causal=True), expected)
    with pytest.raises(ValueError, match="stabilize must be"):
        A.positive_random_features(q, W, stabilize="max")


# ----------------------------------------------------------------------------- sparse, in full
def bigbird_oracle(n_blocks, n_global, n_window):
    """Independent oracle: BigBird's fixed part, one (I, J) pair at a time."""
    return torch.tensor([[I < n_global or J < n_global or abs(I - J) <= n_window // 2
                          for J in range(n_blocks)] for I in range(n_blocks)])


@pytest.mark.parametrize(("call", "message"), [
    (lambda: A.sliding_window_mask(0, 2), "l must be an int >= 1, got 0"),
    (lambda: A.sliding_window_mask(4.0, 2), "l must be an int >= 1, got 4.0"),
    (lambda: A.sliding_window_mask(4, 0), "window must be an int >= 1, got 0"),
    (lambda: A.sliding_window_mask(4, True), "window must be an int >= 1, got True"),
    (lambda: A.bigbird_layout(0, 1, 1, 0), "n_blocks must be an int >= 1, got 0"),
    (lambda: A.bigbird_layout(4, -1, 1, 0), "n_global must be an int >= 0, got -1"),
    (lambda: A.bigbird_layout(4, 1, -1, 0), "n_random must be an int >= 0, got -1"),
    (lambda: A.bigbird_layout(4, 1, 1, 0, n_window=0), "n_window must be an int >= 1, got 0"),
    (lambda: A.bigbird_mask(16, 0, 1, 1, 0), "block must be an int >= 1, got 0"),
    (lambda: A.bigbird_mask(0, 4, 1, 1, 0), "l must be an int >= 1, got 0"),
    (lambda: A.window_layout(0, 2, 4), "n_blocks must be an int >= 1, got 0"),
    (lambda: A.window_layout(4, 0, 4), "window must be an int >= 1, got 0"),
    (lambda: A.window_layout(4, 2, 0), "block_size must be an int >= 1, got 0"),
])
def test_sparse_patterns_name_the_bad_size_in_full(call, message):
    """Protects the size checks of every sparse pattern: the argument, its minimum (0 allowed
    for global and random blocks, 1 for the rest) and the value given (no floats or bools)."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call()


def test_smallest_sparse_patterns_are_accepted():
    """Protects the minimums themselves: one token, a window of 1, no global or random blocks."""
    assert torch.equal(A.sliding_window_mask(1, 1), torch.ones(1, 1, dtype=torch.bool))
    assert torch.equal(A.sliding_window_mask(3, 1, causal=False), torch.eye(3, dtype=torch.bool))
    assert torch.equal(A.bigbird_layout(5, 0, 0, seed=0, n_window=1),
                       torch.eye(5, dtype=torch.bool))
    assert torch.equal(A.window_layout(1, 1, 1), torch.ones(1, 1, dtype=torch.bool))
    assert torch.equal(A.bigbird_mask(4, 1, 0, 0, seed=0), bigbird_oracle(4, 0, 3))


@pytest.mark.parametrize(("n_global", "n_window"), [(0, 1), (1, 3), (2, 5), (0, 7)])
def test_bigbird_layout_window_globals_and_random_rows(n_global, n_window):
    """Protects BigBird's layout for any window (n_window blocks centred on the query block)
    and any number of global blocks, with exactly n_random random blocks added to each
    non-global row among the blocks it did not see, drawn by the seed; the bigbird_mask
    passes n_window on."""
    n, n_random = 12, 2
    fixed = bigbird_oracle(n, n_global, n_window)
    layout = A.bigbird_layout(n, n_global, n_random, seed=5, n_window=n_window)
    assert torch.equal(layout & fixed, fixed)
    extra = (layout & ~fixed).sum(1)
    assert extra[:n_global].tolist() == [0] * n_global
    free = (~fixed).sum(1)[n_global:]
    assert extra[n_global:].tolist() == torch.clamp(free, max=n_random).tolist()
    mask = A.bigbird_mask(3 * n, 3, n_global, n_random, seed=5, n_window=n_window)
    assert torch.equal(mask, A.expand_layout(layout, 3))


def test_bigbird_random_blocks_are_uniform_and_fewer_when_none_are_left():
    """Protects the random draw: each block a row does not see yet is equally likely (over
    seeds), and a row asking for more random blocks than remain gets all of them."""
    counts = torch.zeros(8)
    for seed in range(280):
        counts += A.bigbird_layout(8, 0, 1, seed=seed, n_window=1)[0].float()
    counts[0] -= 280                          # row 0 always sees itself
    assert counts[0] == 0 and counts.sum() == 280
    # 7 free blocks, 280 draws: each count is 40 ± 6 (binomial); 18..62 is 3.7 sigma out
    assert counts[1:].min() > 18 and counts[1:].max() < 62
    assert A.bigbird_layout(6, 1, 10, seed=0).all()


def test_block_sparse_rejects_bad_sizes_in_full():
    """Protects block_sparse_attention's checks: block_size and window named with their
    minimum, the lengths shown, the layout's expected and given dtype and shape."""
    q, k, v = qkv(l_q=16, l_k=16)
    cases = [
        (dict(layout=torch.ones(4, 4, dtype=torch.bool), block_size=0),
         "block_size must be an int >= 1, got 0"),
        (dict(layout=torch.ones(4, 4, dtype=torch.bool), block_size=4, window=0),
         "window must be an int >= 1, got 0"),
        (dict(layout=torch.ones(4, 4), block_size=4),
         "layout must be a bool tensor of shape (l / block_size,) * 2 = (4, 4), got "
         "torch.float32 (4, 4)"),
        (dict(layout=[[True]], block_size=16),
         "layout must be a bool tensor of shape (l / block_size,) * 2 = (1, 1), got list ()"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            A.block_sparse_attention(q, k, v, **kwargs)
    with pytest.raises(ValueError, match="^" + re.escape(
            "q and k must have one length l, a multiple of block_size = 4; got l_q = 16, "
            "l_k = 12") + "$"):
        A.block_sparse_attention(q, k[:, :, :12], v[:, :, :12],
                                 torch.ones(4, 4, dtype=torch.bool), 4)


def test_block_sparse_gathers_narrow_rows_and_attends_wide_rows_densely(monkeypatch):
    """Protects the split that keeps memory linear: query blocks that see more than half of
    all blocks (BigBird's global ones) go to the dense path, every other one is gathered."""
    import sseq.attention.sparse as S

    seen = {}

    def spying(name):
        original = getattr(S, name)

        def spy(*args, **kwargs):
            seen[name] = args[4].tolist()      # the query blocks (rows) sent to this path
            return original(*args, **kwargs)
        return spy

    for name in ("_gathered_blocks", "_dense_blocks"):
        monkeypatch.setattr(S, name, spying(name))
    q, k, v = qkv(l_q=32, l_k=32)
    layout = torch.eye(8, dtype=torch.bool)
    layout[2, :5] = True                       # 5 of 8 blocks: wide
    layout[5, :3] = True                       # 4 of 8 (with itself), exactly half: gathered
    out = A.block_sparse_attention(q, k, v, layout, 4)
    assert seen == {"_gathered_blocks": [0, 1, 3, 4, 5, 6, 7], "_dense_blocks": [2]}
    torch.testing.assert_close(out, A.scaled_dot_product_attention(
        q, k, v, mask=A.expand_layout(layout, 4)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_blocks", [1, 3])
def test_block_sparse_query_blocks_that_see_nothing_get_zeros(n_blocks):
    """Protects empty rows of the layout (and the one-block sequence): zeros, like the masked
    direct form, never NaN, on both paths."""
    q, k, v = qkv(l_q=4 * n_blocks, l_k=4 * n_blocks)
    layout = torch.zeros(n_blocks, n_blocks, dtype=torch.bool)
    out = A.block_sparse_attention(q, k, v, layout, 4)
    assert torch.equal(out, torch.zeros_like(out))
    layout[-1] = True                           # one row that sees everything (dense)
    out = A.block_sparse_attention(q, k, v, layout, 4, causal=True)
    torch.testing.assert_close(out, A.scaled_dot_product_attention(
        q, k, v, mask=A.expand_layout(layout, 4), causal=True), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("path", ["gathered", "dense"])
@pytest.mark.parametrize(("causal", "window", "scale"), [(True, None, None), (False, 3, None),
                                                         (True, 5, 0.3), (False, None, 2.0)])
def test_block_sparse_limits_and_scale_on_both_paths(path, causal, window, scale):
    """Protects the token-level limits (causal, window) and the scale inside the computed
    blocks, on the gathered path (narrow rows) and the dense one (wide rows), with GQA, against
    the masked direct form."""
    q, k, v = qkv(l_q=24, l_k=24, h=4, h_kv=2, d_v=3)
    layout = A.bigbird_layout(6, 0, 1, seed=2)
    if path == "dense":
        layout[:] = True
    out = A.block_sparse_attention(q, k, v, layout, 4, causal=causal, window=window,
                                   scale=scale)
    mask = A.expand_layout(layout, 4)
    if window is not None:
        mask = mask & A.sliding_window_mask(24, window, causal=causal)
    expected = A.scaled_dot_product_attention(q, k, v, mask=mask, causal=causal, scale=scale)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_window_layout_is_causal_by_default():
    """Protects window_layout's default (causal, like sliding_window_mask's): no block above
    the diagonal unless causal=False is asked."""
    layout = A.window_layout(6, 5, 4)
    assert torch.equal(layout, A.window_layout(6, 5, 4, causal=True))
    assert not layout.triu(1).any() and A.window_layout(6, 5, 4, causal=False).triu(1).any()


def test_gathered_rows_with_some_empty_queries_get_zeros_only_there():
    """Protects the per-query handling of empty rows on the gathered path: a causal query
    block that sees only a future key block gets zeros, while the other blocks are exact."""
    q, k, v = qkv(l_q=16, l_k=16)
    layout = torch.zeros(4, 4, dtype=torch.bool)
    layout[0, 1] = True                         # only the future: every query of block 0 empty
    layout[1, 0] = layout[2, 2] = layout[3, 1] = True
    out = A.block_sparse_attention(q, k, v, layout, 4, causal=True)
    expected = A.scaled_dot_product_attention(q, k, v, mask=A.expand_layout(layout, 4),
                                              causal=True)
    assert torch.equal(out[:, :, :4], torch.zeros_like(out[:, :, :4]))
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- Performer in full
def projection_oracle(m, d, seed, orthogonal=True):
    """Independent oracle: the documented draw, with numpy's QR (made unique by R's positive
    diagonal): ceil(m / d) Gaussian d x d blocks, their orthonormal rows, then m lengths of
    Gaussian vectors, all from the generator seeded with the offset seed."""
    import numpy as np

    from sseq.attention.performer import _SEED_OFFSET

    g = torch.Generator().manual_seed(_SEED_OFFSET + seed)
    if not orthogonal:
        return torch.randn(m, d, generator=g, dtype=torch.float64).numpy()
    rows = []
    for _ in range(-(-m // d)):
        Q, R = np.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64).numpy())
        rows.append((Q * np.sign(np.diag(R))).T)
    lengths = np.linalg.norm(torch.randn(m, d, generator=g, dtype=torch.float64).numpy(), axis=1)
    return np.concatenate(rows)[:m] * lengths[:, None]


@pytest.mark.parametrize(("m", "d", "seed"), [(20, 8, 0), (5, 8, 3), (16, 4, 1), (1, 1, 2)])
@pytest.mark.parametrize("orthogonal", [True, False])
def test_gaussian_projection_is_its_documented_draw(m, d, seed, orthogonal):
    """Protects the projection of a seed: groups of d orthonormal Haar rows (QR of Gaussian
    blocks, as many as m needs), each scaled to an independent Gaussian length, or plain
    Gaussian rows; float64 by default, any dtype asked; the seed offset from q's seeds."""
    W = A.gaussian_projection(m, d, seed, orthogonal=orthogonal)
    assert W.dtype == torch.float64 and W.shape == (m, d)
    torch.testing.assert_close(W.numpy(), projection_oracle(m, d, seed, orthogonal),
                               rtol=1e-10, atol=1e-12)
    W32 = A.gaussian_projection(m, d, seed, orthogonal=orthogonal, dtype=torch.float32)
    assert W32.dtype == torch.float32 and torch.equal(W32, W.float())
    plain = torch.randn(m, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert not torch.allclose(W, plain)           # not the normals of a q seeded alike


@pytest.mark.parametrize("bad", [0, -3, True, 2.0, "8"])
def test_gaussian_projection_needs_a_positive_int_count(bad):
    """Protects the count check: a positive int (no bool or float), the value shown."""
    with pytest.raises(ValueError, match="^" + re.escape(
            f"n_features must be a positive int, got {bad!r}") + "$"):
        A.gaussian_projection(bad, 8, seed=0)


def features_oracle(x, W, stabilize=None):
    """Independent oracle: φ(x) = exp(W x − |x|²/2) / √m row by row in numpy, the stabilizer
    a constant subtracted from the exponents (per row, or per (batch, head) for "all")."""
    import numpy as np

    x, W = x.detach().numpy(), W.numpy()
    e = np.einsum("...ld,md->...lm", x, W) - 0.5 * (x**2).sum(-1, keepdims=True)
    if stabilize == "row":
        e = e - e.max(axis=-1, keepdims=True)
    elif stabilize == "all":
        e = e - e.max(axis=(-2, -1), keepdims=True)
    return np.exp(e) / np.sqrt(W.shape[0])


@pytest.mark.parametrize("stabilize", [None, "row", "all"])
def test_positive_random_features_are_their_closed_form(stabilize):
    """Protects φ(x) = exp(Wx − |x|²/2)/√m and both stabilizers (the largest exponent of each
    row, or of all rows of a batch and head), and that the stabilizer is a constant for
    autograd (its gradient is that of φ times a fixed factor)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    W = A.gaussian_projection(6, 4, seed=2)
    phi = A.positive_random_features(x, W, stabilize=stabilize)
    torch.testing.assert_close(phi.detach().numpy(), features_oracle(x, W, stabilize),
                               rtol=1e-12, atol=0)
    factor = (phi / A.positive_random_features(x, W)).detach()   # the constant taken out
    grad = torch.randn_like(phi)
    torch.testing.assert_close(torch.autograd.grad(phi, x, grad)[0],
                               torch.autograd.grad(A.positive_random_features(x, W), x,
                                                   grad * factor)[0])
    with pytest.raises(ValueError, match="^" + re.escape(
            "stabilize must be None, 'row' or 'all', got 'col'") + "$"):
        A.positive_random_features(x, W, stabilize="col")


@pytest.mark.parametrize("orthogonal", [True, False])
def test_softmax_kernel_estimate_is_a_dot_product_of_features(orthogonal):
    """Protects the kernel estimate: φ(q_i)·φ(k_j) with the seed's projection of either kind,
    unscaled inputs, in q's dtype."""
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(4, 3, generator=g), torch.randn(5, 3, generator=g)
    est = A.softmax_kernel_estimate(q, k, 7, seed=4, orthogonal=orthogonal)
    assert est.dtype == torch.float32
    W = torch.from_numpy(projection_oracle(7, 3, 4, orthogonal))
    expected = features_oracle(q.double(), W) @ features_oracle(k.double(), W).T
    torch.testing.assert_close(est.double().numpy(), expected, rtol=1e-5, atol=0)


def performer_oracle(q, k, v, m, seed, orthogonal, causal):
    """Independent oracle: Σ_j φ(q_i)·φ(k_j) v_j / Σ_j φ(q_i)·φ(k_j) one query at a time, with
    q and k scaled by d^(-1/4), K/V heads repeated for their query heads, and the causal limit
    j ≤ i + (l_k − l_q)."""
    import numpy as np

    d = q.shape[-1]
    W = torch.from_numpy(projection_oracle(m, d, seed, orthogonal))
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1).numpy()
    # the stabilizers are constant factors (per query row; for all keys) that cancel below
    fq, fk = features_oracle(q / d**0.25, W, "row"), features_oracle(k / d**0.25, W, "all")
    l_q, l_k = q.shape[2], k.shape[2]
    y = np.zeros((*q.shape[:3], v.shape[-1]))
    for i in range(l_q):
        last = i + l_k - l_q + 1 if causal else l_k
        sim = np.einsum("bhm,bhjm->bhj", fq[:, :, i], fk[:, :, :last])
        y[:, :, i] = np.einsum("bhj,bhjv->bhv", sim, v[:, :, :last]) / sim.sum(-1)[..., None]
    return y


@pytest.mark.parametrize(("causal", "l_q", "orthogonal"), [(False, 6, True), (True, 6, False),
                                                           (True, 3, True), (False, 2, False)])
def test_performer_attention_equals_an_independent_loop(causal, l_q, orthogonal):
    """Protects FAVOR+ as documented: features of q and k scaled by d^(-1/4), the seed's
    projection of the kind asked, grouped K/V heads, the causal limit at the bottom right."""
    q, k, v = qkv(h=4, h_kv=2, l_q=l_q, l_k=6, d=4, d_v=3, scale=0.7)
    out = A.performer_attention(q, k, v, 9, seed=6, causal=causal, orthogonal=orthogonal)
    torch.testing.assert_close(out.numpy(), performer_oracle(q, k, v, 9, 6, orthogonal, causal),
                               rtol=1e-9, atol=1e-12)


def test_performer_error_is_the_mean_and_spread_over_seeds():
    """Protects performer_error's table: for each m, the mean over seeds of ‖ŷ − y‖/‖y‖ and its
    standard deviation (0 for a single seed), with causal and orthogonal passed on."""
    q, k, v = qkv(h=1, h_kv=1, l_q=5, l_k=5, d=4, d_v=2, scale=0.5)
    for causal, orthogonal, seeds in ((False, True, [0, 5, 9]), (True, False, [2, 7])):
        table = A.performer_error(q, k, v, [3, 8], seeds=seeds, causal=causal,
                                  orthogonal=orthogonal)
        exact = A.scaled_dot_product_attention(q, k, v, causal=causal).numpy()
        assert table["n_features"] == [3, 8]
        for i, m in enumerate((3, 8)):
            errors = torch.tensor([
                float(((performer_oracle(q, k, v, m, s, orthogonal, causal) - exact) ** 2).sum()
                      ** 0.5 / (exact**2).sum() ** 0.5) for s in seeds])
            assert table["error"][i] == pytest.approx(errors.mean().item(), rel=1e-9)
            assert table["spread"][i] == pytest.approx(errors.std().item(), rel=1e-9)
    one = A.performer_error(q, k, v, [4], seeds=[1])
    assert one["spread"] == [0.0] and len(one["error"]) == 1


# ----------------------------------------------------------------------------- probes in full
def test_pattern_mask_defaults_and_arguments_reach_each_pattern():
    """Protects pattern_mask: each name builds its pattern two-sided, with the documented
    defaults (window 32; blocks of 16, 1 global, 2 random, seed 0) and the arguments passed on."""
    assert torch.equal(A.pattern_mask("full", 5), torch.ones(5, 5, dtype=torch.bool))
    assert A.pattern_mask("full", 5).dtype == torch.bool
    assert torch.equal(A.pattern_mask("sliding window", 80),
                       A.sliding_window_mask(80, 32, causal=False))
    assert torch.equal(A.pattern_mask("sliding window", 20, window=3),
                       A.sliding_window_mask(20, 3, causal=False))
    assert torch.equal(A.pattern_mask("BigBird", 128), A.bigbird_mask(128, 16, 1, 2, 0))
    assert torch.equal(A.pattern_mask("BigBird", 96, block=8, n_global=2, n_random=1, seed=3),
                       A.bigbird_mask(96, 8, 2, 1, 3))
    with pytest.raises(ValueError, match="^" + re.escape(
            "pattern must be one of ('full', 'sliding window', 'BigBird'), got 'bigbird'") + "$"):
        A.pattern_mask("bigbird", 8)


def reach_oracle(mask, layers):
    """Independent oracle: reachable sets by breadth-first steps over python sets."""
    l = mask.shape[0]
    hops = [set(torch.nonzero(mask[i]).flatten().tolist()) for i in range(l)]
    fractions, reached = [], [set(h) for h in hops]
    for _ in range(layers):
        fractions.append(sum(len(r) for r in reached) / l**2)
        reached = [r | {j for m in r for j in hops[m]} for r in reached]
    return fractions


def test_reach_equals_breadth_first_search():
    """Protects reach: the fraction of pairs joined by at most L hops, for L = 1..layers, on a
    random mask (not symmetric; each i sees itself, as documented), and a causal window's
    documented share."""
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(12, 12, generator=g) < 0.12) | torch.eye(12, dtype=torch.bool)
    assert A.reach(mask, 4) == pytest.approx(reach_oracle(mask, 4), abs=1e-7)
    assert A.reach(mask, 1) == pytest.approx([mask.float().mean().item()])
    causal = A.sliding_window_mask(10, 2)
    assert A.reach(causal, 9)[-1] == pytest.approx((10 + 1) / 20)


@pytest.mark.parametrize(("mask", "got"), [
    (torch.ones(3, 4, dtype=torch.bool), "torch.bool (3, 4)"),
    (torch.ones(2, 3, 3, dtype=torch.bool), "torch.bool (2, 3, 3)"),
    (torch.ones(3), "torch.float32 (3,)"),
    (torch.ones(3, 3), "torch.float32 (3, 3)"),
    ([[True]], "list ()"),
])
def test_reach_names_a_bad_mask_in_full(mask, got):
    """Protects reach's mask check: a square bool (l, l) tensor, the dtype and shape shown."""
    with pytest.raises(ValueError, match="^" + re.escape(
            f"mask must be a square bool tensor (l, l), got {got}") + "$"):
        A.reach(mask, 2)


def probe_oracle(mask, distances, d=64, n_classes=16, trials=4, seed=0):
    """Independent oracle: the documented probe (random unit keys, one-hot random labels, the
    query 4√d times the key δ back, softmax attention with scale 1 under the mask) with its
    draws from the seeded generator, the attention written in numpy, float64."""
    import numpy as np

    l = mask.shape[0]
    g = torch.Generator().manual_seed(seed)
    acc = []
    for delta in distances:
        hits = total = 0
        for _ in range(trials):
            K = torch.randn(l, d, generator=g).double().numpy()
            K /= np.linalg.norm(K, axis=1, keepdims=True)
            labels = torch.randint(n_classes, (l,), generator=g).numpy()
            for i in range(delta, l):
                s = 4 * np.sqrt(d) * K[i - delta] @ K.T
                s = np.where(mask[i].numpy(), s, -np.inf)
                w = np.exp(s - s.max())
                w /= w.sum()
                votes = np.bincount(labels, weights=w, minlength=n_classes)
                hits += int(votes.argmax() == labels[i - delta])
                total += 1
        acc.append(hits / total)
    return acc


@pytest.mark.parametrize("kwargs", [{}, {"d": 8, "n_classes": 3, "trials": 2, "seed": 5}])
def test_retrieval_probe_equals_an_independent_probe(kwargs):
    """Protects the retrieval probe's numbers: its defaults (d 64, 16 classes, 4 trials,
    seed 0), the sharpened query, the scale 1, the mask row of each query, and the accuracy
    over every position i >= δ, against a numpy reimplementation."""
    mask = A.pattern_mask("sliding window", 24, window=4)
    distances = [0, 2, 3, 5]
    got = A.retrieval_probe(mask, distances, **kwargs)
    assert got["distance"] == distances
    assert got["accuracy"] == pytest.approx(probe_oracle(mask, distances, **kwargs), abs=1e-12)


@pytest.mark.parametrize("bad", [8, -1, 9])
def test_retrieval_probe_distances_must_fit_the_sequence(bad):
    """Protects the distance check: 0 <= δ < l, the range and the distance shown."""
    with pytest.raises(ValueError, match="^" + re.escape(
            f"distances must be in [0, l) = [0, 8), got {bad}") + "$"):
        A.retrieval_probe(A.pattern_mask("full", 8), [0, bad])


def test_sparsity_plot_draws_the_mask_and_its_reach():
    """Protects the sparsity figure: the left image is the pattern's mask (its defaults: BigBird,
    l 256, window 16, blocks of 16, 1 global, 2 random, seed 0), the right one the pairs reached
    after `layers` layers, in the book's colours, titled and labelled."""
    from sseq.viz import PALETTE

    fig, axes = plt.subplots(1, 2)
    _, fractions = A.plot_sparsity(axes)
    mask = A.bigbird_mask(256, 16, 1, 2, 0)
    assert fractions == pytest.approx(A.reach(mask, 2))
    left, right = (ax.get_images()[0] for ax in axes)
    assert (left.get_array() == mask.float().numpy()).all()
    reached = (mask.float() @ mask.float()) > 0
    assert (right.get_array() == reached.float().numpy()).all()
    assert axes[0].get_title() == "BigBird: who sees whom (1 layer)"
    assert axes[1].get_title() == f"reach after 2 layer(s): {fractions[-1]:.0%} of pairs"
    for ax, colour in zip(axes, ("state", "accent"), strict=True):
        assert ax.get_xlabel() == "key position j" and ax.get_ylabel() == "query position i"
        image = ax.get_images()[0]
        assert image.cmap(1.0)[:3] == pytest.approx(matplotlib_rgb(PALETTE[colour]))
        assert image.cmap(0.0)[:3] == (1.0, 1.0, 1.0) and image.get_clim() == (0, 1)
        assert image.get_interpolation() == "nearest"
        assert not any(line.get_visible() for line in ax.get_xgridlines())   # no grid
    plt.close(fig)
    fig, axes = plt.subplots(1, 2)
    _, fractions = A.plot_sparsity(axes, "BigBird", l=64, window=3, block=8, n_global=2,
                                   n_random=1, layers=3, seed=4)
    mask = A.bigbird_mask(64, 8, 2, 1, 4)
    assert fractions == pytest.approx(A.reach(mask, 3))
    assert (axes[0].get_images()[0].get_array() == mask.float().numpy()).all()
    plt.close(fig)
    fig, axes = plt.subplots(1, 2)                    # a window: each layer reaches further
    _, fractions = A.plot_sparsity(axes, "sliding window", l=40, window=3, layers=3)
    reached = A.sliding_window_mask(40, 7, causal=False)       # 3 hops of up to 2 tokens
    assert (axes[1].get_images()[0].get_array() == reached.float().numpy()).all()
    assert fractions[1] < fractions[2]
    assert axes[1].get_title() == f"reach after 3 layer(s): {fractions[2]:.0%} of pairs"
    plt.close(fig)
    for kwargs, window in (({}, 16), ({"window": 5}, 5)):      # the window reaches the mask
        fig, axes = plt.subplots(1, 2)
        A.plot_sparsity(axes, "sliding window", l=40, **kwargs)
        expected = A.sliding_window_mask(40, window, causal=False).float().numpy()
        assert (axes[0].get_images()[0].get_array() == expected).all()
        plt.close(fig)


def matplotlib_rgb(colour):
    from matplotlib.colors import to_rgb

    return to_rgb(colour)


def test_sparsity_explorer_widgets_and_their_update(monkeypatch):
    """Protects the explorer's controls (pattern menu, window, global and random blocks,
    layers: their ranges and starting values) and that each change redraws, on a 9.6 x 4.4
    figure of two panels side by side, with those values at the explorer's length (256 by
    default)."""
    import sseq.attention.probes as P

    calls = []

    figures = []

    def record(axes, pattern, **kw):  # (ipywidgets shows, not raises, errors in here)
        calls.append((pattern, kw))
        figures.append((len(axes), axes[0].get_subplotspec().get_geometry()[:2],
                        tuple(axes[0].figure.get_size_inches())))

    monkeypatch.setattr(P, "plot_sparsity", record)
    A.sparsity_explorer()
    assert calls[-1][1]["l"] == 256                  # the default length
    assert figures[-1] == (2, (1, 2), pytest.approx((9.6, 4.4)))
    explorer = A.sparsity_explorer(l=48)
    pattern, window, n_global, n_random, layers = explorer.children[:5]
    assert list(pattern.options) == ["full", "sliding window", "BigBird"]
    assert pattern.value == "BigBird"
    assert [(w.value, w.min, w.max) for w in (window, n_global, n_random, layers)] == [
        (16, 1, 64), (1, 0, 4), (2, 0, 6), (2, 1, 6)]
    calls.clear()
    window.value = 5
    assert calls == [("BigBird", dict(l=48, window=5, n_global=1, n_random=2, layers=2))]
    plt.close("all")


def test_performer_defaults_are_orthogonal_and_not_causal():
    """Protects the documented defaults: orthogonal features (FAVOR+) for the kernel estimate,
    the attention and the error table; no causal limit for the attention and the table."""
    q, k, v = qkv(h=1, h_kv=1, l_q=4, l_k=4, d=4, d_v=2, scale=0.5)
    assert torch.equal(A.softmax_kernel_estimate(q[0, 0], k[0, 0], 5, seed=1),
                       A.softmax_kernel_estimate(q[0, 0], k[0, 0], 5, seed=1, orthogonal=True))
    assert torch.equal(A.performer_attention(q, k, v, 5, seed=1),
                       A.performer_attention(q, k, v, 5, 1, causal=False, orthogonal=True))
    assert A.performer_error(q, k, v, [5], [1]) == A.performer_error(
        q, k, v, [5], [1], orthogonal=True, causal=False)


def test_features_and_kernel_estimate_on_batched_inputs():
    """Protects the (..., l, d) layout: a kernel estimate per batch entry with l_q != l_k, the
    "all" stabilizer over each entry's own rows, and a float64 projection used by float32 x."""
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(3, 4, 2, generator=g), torch.randn(3, 5, 2, generator=g)
    est = A.softmax_kernel_estimate(q, k, 6, seed=2)
    assert est.shape == (3, 4, 5)
    for i in range(3):
        torch.testing.assert_close(est[i], A.softmax_kernel_estimate(q[i], k[i], 6, seed=2))
    W = A.gaussian_projection(6, 2, seed=2)                      # float64
    phi = A.positive_random_features(q, W, stabilize="all")
    assert phi.dtype == torch.float32
    torch.testing.assert_close(phi.double().numpy(), features_oracle(q.double(), W, "all"),
                               rtol=1e-5, atol=0)


def test_performer_is_stable_where_unstabilized_features_underflow():
    """Protects the stabilizers of the Performer's features in float32: exp(Wx − |x|²/2)
    underflows to 0 (then 0/0 = NaN) for a query of large norm unless its row's largest
    exponent is taken out, and for keys far from the origin unless the largest exponent of
    all keys is; with both, the result matches the float64 oracle."""
    q, k, v = qkv(h=2, h_kv=2, l_q=6, l_k=6, d=8, d_v=3, dtype=torch.float32, scale=12.0)
    g = torch.Generator().manual_seed(9)
    far = 40.0 * torch.nn.functional.normalize(torch.randn(8, generator=g), dim=0)
    W = A.gaussian_projection(16, 8, seed=0, dtype=torch.float32)
    for qs, ks in ((q, k), (q / 24, far + k / 24)):    # large queries; keys far away
        out = A.performer_attention(qs, ks, v, 16, seed=0)
        assert torch.isfinite(out).all()
        expected = performer_oracle(qs.double(), ks.double(), v.double(), 16, 0, True, False)
        torch.testing.assert_close(out.double().numpy(), expected, rtol=1e-3, atol=1e-4)
        raw = [A.positive_random_features(x / 8**0.25, W) for x in (qs, ks)]
        assert (raw[0] == 0).all(-1).any() or (raw[1] == 0).all()   # unstabilized: 0/0
