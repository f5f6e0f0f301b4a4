"""Scaled dot-product attention, positions and multi-head attention, against PyTorch."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from sseq import attention as A


def qkv(b=2, h=4, h_kv=4, l_q=6, l_k=6, d=8, d_v=8, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, h, l_q, d, generator=g, dtype=dtype),
            torch.randn(b, h_kv, l_k, d, generator=g, dtype=dtype),
            torch.randn(b, h_kv, l_k, d_v, generator=g, dtype=dtype))


def torch_reference(q, k, v, *, causal=False, mask=None, scale=None):
    """PyTorch's SDPA on the same arguments; the bottom-right causal mask made explicit."""
    gqa = q.shape[1] != k.shape[1]
    if causal:
        tril = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool).tril(k.shape[2] - q.shape[2])
        if mask is None:
            mask = tril
        elif mask.dtype == torch.bool:
            mask = mask & tril
        else:
            mask = mask.masked_fill(~tril, float("-inf"))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=gqa)


# ----------------------------------------------------------------------------- SDPA
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("l_q", "l_k"), [(6, 6), (1, 9), (3, 8), (8, 3)])
@pytest.mark.parametrize("h_kv", [4, 2, 1])
@pytest.mark.parametrize("scale", [None, 0.3])
def test_sdpa_equals_torch_outputs_and_gradients(causal, l_q, l_k, h_kv, scale):
    q, k, v = (t.requires_grad_() for t in qkv(h_kv=h_kv, l_q=l_q, l_k=l_k, d_v=5))
    ours = A.scaled_dot_product_attention(q, k, v, causal=causal, scale=scale)
    theirs = torch_reference(q, k, v, causal=causal, scale=scale)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(ours)
    g_ours = torch.autograd.grad(ours, (q, k, v), grad)
    g_theirs = torch.autograd.grad(theirs, (q, k, v), grad)
    for a, b in zip(g_ours, g_theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mask_shape", [(6, 7), (2, 1, 6, 7), (1, 4, 1, 7), (1, 7)])
@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_with_masks_equals_torch(mask_shape, kind, causal):
    q, k, v = qkv(l_q=6, l_k=7)
    g = torch.Generator().manual_seed(1)
    if kind == "bool":
        mask = torch.rand(mask_shape, generator=g) > 0.3
    else:
        mask = torch.randn(mask_shape, generator=g, dtype=torch.float64)
    ours = A.scaled_dot_product_attention(q, k, v, causal=causal, mask=mask)
    torch.testing.assert_close(ours, torch_reference(q, k, v, causal=causal, mask=mask),
                               rtol=1e-12, atol=1e-12)


def test_causal_with_fewer_queries_is_torchs_lower_right_causal_bias():
    # imported here: this module imports Triton, which must not happen before the conftest
    # has seeded (and switched Triton's CPU interpreter on for sseq.scan's Triton kernel tests)
    from torch.nn.attention.bias import causal_lower_right

    q, k, v = qkv(l_q=3, l_k=10)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(3, 10))
    torch.testing.assert_close(A.scaled_dot_product_attention(q, k, v, causal=True), expected)
    q, k, v = qkv(l_q=5, l_k=5)
    torch.testing.assert_close(A.scaled_dot_product_attention(q, k, v, causal=True),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_a_query_that_sees_nothing_gets_zeros_like_torch():
    q, k, v = qkv(l_q=4, l_k=3)
    mask = torch.ones(4, 3, dtype=torch.bool)
    mask[2] = False
    out = A.scaled_dot_product_attention(q, k, v, mask=mask)
    assert torch.equal(out[:, :, 2], torch.zeros_like(out[:, :, 2]))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert torch.isfinite(out).all()


def test_causal_mask_is_aligned_at_the_bottom_right():
    assert torch.equal(A.causal_mask(4, 4), torch.ones(4, 4, dtype=torch.bool).tril())
    assert A.causal_mask(1, 5).all()  # one new token sees the whole cache and itself
    m = A.causal_mask(2, 5)
    assert m.tolist() == [[True, True, True, True, False], [True] * 5]


@pytest.mark.parametrize(("args", "error", "message"), [
    ((torch.zeros(2, 3, 4),) * 3, ValueError, r"q must have shape \(b, h, l_q, d\) \(rank 4\)"),
    ((torch.zeros(1, 4, 3, 8), torch.zeros(1, 3, 3, 8), torch.zeros(1, 3, 3, 8)), ValueError,
     "K/V heads must divide the query heads: q has h = 4 heads, k and v have h_kv = 3"),
    ((torch.zeros(1, 2, 3, 8), torch.zeros(2, 2, 3, 8), torch.zeros(2, 2, 3, 8)), ValueError,
     "same batch size"),
    ((torch.zeros(1, 2, 3, 8), torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4)), ValueError,
     "same head size d"),
    ((torch.zeros(1, 2, 3, 8), torch.zeros(1, 2, 3, 8), torch.zeros(1, 2, 5, 8)), ValueError,
     "k and v must have the same heads and length"),
    ((torch.zeros(1, 2, 3, 8, dtype=torch.int64),) * 3, TypeError, "floating-point"),
    (([1.0],) * 3, TypeError, "q must be a torch.Tensor"),
])
def test_sdpa_rejects_bad_inputs(args, error, message):
    with pytest.raises(error, match=message):
        A.scaled_dot_product_attention(*args)


@pytest.mark.parametrize(("mask", "error", "message"), [
    (torch.ones(5, 5, dtype=torch.bool), ValueError,
     r"mask must broadcast to the scores' shape \(b, h, l_q, l_k\) = \(2, 4, 6, 6\), got "
     r"shape \(5, 5\)"),
    (torch.ones(3, 4, 6, 6, dtype=torch.bool), ValueError, "mask must broadcast"),
    (torch.ones(6, 6, dtype=torch.int64), TypeError, "mask must be boolean"),
    ([[True]], TypeError, "mask must be a torch.Tensor"),
])
def test_sdpa_rejects_bad_masks(mask, error, message):
    with pytest.raises(error, match=message):
        A.scaled_dot_product_attention(*qkv(), mask=mask)


def test_without_the_scale_the_softmax_saturates():
    ds = [4, 64, 1024]
    scaled = A.softmax_saturation(ds)
    raw = A.softmax_saturation(ds, scaled=False)
    # scaled: the scores have unit variance at every d, so the weights look the same
    assert max(scaled["entropy"]) - min(scaled["entropy"]) < 0.1
    assert max(scaled["max_weight"]) < 0.2
    # unscaled: one key takes almost everything, and the gradient vanishes
    assert raw["max_weight"][-1] > 0.9 and raw["entropy"][-1] < 0.3
    assert raw["grad_norm"][-1] < 0.5 * scaled["grad_norm"][-1]
    assert scaled["d"] == ds


# ----------------------------------------------------------------------------- positions
def rope_complex(x, positions, base=10000.0):
    """Independent oracle: RoPE as a multiplication of complex numbers."""
    d = x.shape[-1]
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], d // 2, 2).contiguous())
    rot = torch.polar(torch.ones_like(theta), positions[:, None].double() * theta)
    return torch.view_as_real(z * rot).flatten(-2)


def test_rope_is_a_rotation_by_position_times_frequency():
    x = torch.randn(2, 3, 7, 16, dtype=torch.float64)
    positions = torch.arange(5, 12)
    torch.testing.assert_close(A.rope(x, positions), rope_complex(x, positions))
    torch.testing.assert_close(A.rope(x, positions).norm(dim=-1), x.norm(dim=-1))


def test_rope_scores_depend_only_on_relative_position():
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(2, 32, generator=g, dtype=torch.float64)
    scores = {}
    for m, n in [(0, 3), (10, 13), (500, 503), (7, 2), (1007, 1002)]:
        rq = A.rope(q[None], torch.tensor([m]))[0]
        rk = A.rope(k[None], torch.tensor([n]))[0]
        scores[m, n] = (rq @ rk).item()
    assert scores[0, 3] == pytest.approx(scores[10, 13], abs=1e-10)
    assert scores[0, 3] == pytest.approx(scores[500, 503], abs=1e-9)
    assert scores[7, 2] == pytest.approx(scores[1007, 1002], abs=1e-9)
    assert abs(scores[0, 3] - scores[7, 2]) > 1e-3  # but m − n matters


def test_sinusoidal_positions_closed_form():
    P = A.sinusoidal_positions(50, 8)
    t = torch.arange(50, dtype=torch.float64)
    for i in range(4):
        w = 10000.0 ** (-2 * i / 8)
        torch.testing.assert_close(P[:, 2 * i].double(), torch.sin(w * t), atol=1e-6, rtol=0)
        torch.testing.assert_close(P[:, 2 * i + 1].double(), torch.cos(w * t), atol=1e-6, rtol=0)


def test_positions_reject_bad_input():
    with pytest.raises(ValueError, match="must be an even int"):
        A.rope(torch.zeros(3, 5), torch.arange(3))
    with pytest.raises(ValueError, match=r"positions must have shape \(l,\) = \(3,\)"):
        A.rope(torch.zeros(3, 4), torch.arange(4))
    with pytest.raises(ValueError, match="d must be an even int"):
        A.sinusoidal_positions(4, 7)


# ----------------------------------------------------------------------------- multi-head attention
def test_mha_equals_torch_multihead_attention():
    torch.manual_seed(0)
    for causal in (False, True):
        ours = A.MultiHeadAttention(24, 4, causal=causal, bias=True).double()
        theirs = torch.nn.MultiheadAttention(24, 4, bias=True, batch_first=True).double()
        with torch.no_grad():
            theirs.in_proj_weight.copy_(torch.cat([ours.W_q.weight, ours.W_k.weight,
                                                   ours.W_v.weight]))
            theirs.in_proj_bias.copy_(torch.cat([ours.W_q.bias, ours.W_k.bias, ours.W_v.bias]))
            theirs.out_proj.weight.copy_(ours.W_o.weight)
            theirs.out_proj.bias.copy_(ours.W_o.bias)
        x = torch.randn(3, 9, 24, dtype=torch.float64)
        future = torch.ones(9, 9, dtype=torch.bool).triu(1) if causal else None
        expected, _ = theirs(x, x, x, attn_mask=future, need_weights=False)
        torch.testing.assert_close(ours(x)[0], expected, rtol=1e-10, atol=1e-12)


def test_gqa_equals_full_attention_with_repeated_kv_weights():
    torch.manual_seed(0)
    gqa = A.MultiHeadAttention(32, 8, n_kv_heads=2).double()
    full = A.MultiHeadAttention(32, 8).double()
    with torch.no_grad():
        full.W_q.weight.copy_(gqa.W_q.weight)
        full.W_o.weight.copy_(gqa.W_o.weight)
        for name in ("W_k", "W_v"):  # each K/V head serves 4 consecutive query heads
            w = getattr(gqa, name).weight.view(2, 4, 32)          # (h_kv, d_head, d_model)
            getattr(full, name).weight.copy_(w.repeat_interleave(4, dim=0).reshape(32, 32))
    x = torch.randn(2, 7, 32, dtype=torch.float64)
    torch.testing.assert_close(gqa(x)[0], full(x)[0], rtol=1e-10, atol=1e-12)
    assert gqa(x)[1].nbytes * 4 == full(x)[1].nbytes  # the cache shrinks by n_heads / n_kv


@pytest.mark.parametrize("n_kv_heads", [None, 2, 1])
@pytest.mark.parametrize("rope", [False, True])
@pytest.mark.parametrize("prompt_length", [0, 5])
def test_generation_with_the_cache_equals_recomputing(n_kv_heads, rope, prompt_length):
    torch.manual_seed(0)
    layer = A.MultiHeadAttention(32, 4, n_kv_heads, rope=rope).double()
    x = torch.randn(2, 12, 32, dtype=torch.float64)
    y_full, cache_full = layer(x)
    y_steps, cache = A.step_by_step(layer, x, prompt_length=prompt_length)
    torch.testing.assert_close(y_steps, y_full, rtol=1e-10, atol=1e-12)
    assert cache.length == 12 and cache.nbytes == cache_full.nbytes
    torch.testing.assert_close(cache.keys, cache_full.keys)


def test_fused_path_equals_the_reference_in_outputs_and_gradients():
    torch.manual_seed(0)
    layer = A.MultiHeadAttention(32, 4, 2, rope=True).double()
    x = torch.randn(2, 10, 32, dtype=torch.float64, requires_grad=True)
    y_ref = layer(x)[0]
    g_ref = torch.autograd.grad(y_ref.square().sum(), (x, *layer.parameters()))
    layer.fused = True
    y_fused = layer(x)[0]
    g_fused = torch.autograd.grad(y_fused.square().sum(), (x, *layer.parameters()))
    torch.testing.assert_close(y_fused, y_ref)
    for a, b in zip(g_fused, g_ref, strict=True):
        torch.testing.assert_close(a, b)
    y_steps, _ = A.step_by_step(layer, x.detach(), prompt_length=4)  # fused, with a cache
    torch.testing.assert_close(y_steps, y_ref.detach())


@pytest.mark.parametrize("fused", [False, True], ids=["book", "fused"])
def test_chunks_after_a_cache_equal_the_full_pass(fused):
    """Protects attention over a cache with several new tokens (l_q > 1, l_q != l_k): the mask
    aligned at the bottom right, in both paths (the fused one builds it itself), and GQA."""
    torch.manual_seed(0)
    layer = A.MultiHeadAttention(32, 4, 2, rope=True, fused=fused).double()
    x = torch.randn(2, 10, 32, dtype=torch.float64)
    full = layer(x)[0]
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            ys, cache = [], None
            for a, b in ((0, 3), (3, 5), (5, 6), (6, 10)):
                y, cache = layer(x[:, a:b], cache)
                ys.append(y)
        torch.testing.assert_close(torch.cat(ys, 1), full, rtol=1e-10, atol=1e-12)


def test_fused_path_without_a_mask_equals_the_reference():
    """Protects the fused path of an encoder (causal=False): every query sees every key."""
    torch.manual_seed(0)
    layer = A.MultiHeadAttention(32, 4, 2, causal=False).double()
    x = torch.randn(2, 7, 32, dtype=torch.float64)
    y_ref = layer(x)[0]
    layer.fused = True
    torch.testing.assert_close(layer(x)[0], y_ref, rtol=1e-10, atol=1e-12)


def test_mha_defaults_rope_base_and_bias():
    """Protects the defaults (no biases, the book's attention, RoPE base 10000) and that
    rope_base reaches the rotation."""
    torch.manual_seed(0)
    plain = A.MultiHeadAttention(16, 2)
    assert plain.fused is False
    assert sum(p.numel() for p in plain.parameters()) == 4 * 16 * 16  # four weights, no bias
    x = torch.randn(1, 6, 16, dtype=torch.float64)
    layers = [A.MultiHeadAttention(16, 2, rope=True, **kw).double()
              for kw in ({}, {"rope_base": 10000.0}, {"rope_base": 100.0})]
    for layer in layers[1:]:
        layer.load_state_dict(layers[0].state_dict())
    default, explicit, other = (layer(x)[0] for layer in layers)
    assert torch.equal(default, explicit)
    assert not torch.allclose(default, other)


def test_cache_under_autograd_gives_the_gradients_of_the_full_pass():
    torch.manual_seed(0)
    layer = A.MultiHeadAttention(16, 2, rope=True).double()
    x = torch.randn(1, 8, 16, dtype=torch.float64, requires_grad=True)
    y1, cache = layer(x[:, :5])
    y2, cache = layer(x[:, 5:], cache)
    g_parts = torch.autograd.grad(torch.cat([y1, y2], 1).sum(), x)[0]
    g_full = torch.autograd.grad(layer(x)[0].sum(), x)[0]
    torch.testing.assert_close(g_parts, g_full)


def test_kv_cache_grows_by_doubling_and_keeps_its_contents():
    cache = A.KVCache()
    chunks = [torch.randn(1, 2, n, 4) for n in (3, 1, 1, 5, 9)]
    for c in chunks:
        cache.append(c, -c)
    everything = torch.cat(chunks, dim=2)
    assert cache.length == 19 and torch.equal(cache.keys, everything)
    assert torch.equal(cache.values, -everything)
    assert cache.nbytes == 2 * everything.numel() * 4
    assert chunks[0].abs().sum() > 0 and torch.equal(cache.keys[:, :, :3], chunks[0])
    with pytest.raises(ValueError, match=r"k must have shape \(b, h_kv, l, d_head\) = "
                                         r"\(1, 2, l, 4\)"):
        cache.append(torch.randn(1, 3, 1, 4), torch.randn(1, 3, 1, 4))


def test_kv_cache_capacity_doubles_unless_autograd_records():
    """Protects the growth rule: capacity max(needed, 2 × capacity), only when full (amortized
    O(1) copies per token), whenever no gradient is recorded; under autograd (a new or held
    tensor that requires grad) it concatenates, so its capacity is its length."""
    def capacities(sizes, requires_grad=()):
        cache, out = A.KVCache(), []
        for i, n in enumerate(sizes):
            k = torch.randn(1, 2, n, 4, requires_grad=i in requires_grad)
            cache.append(k, k)
            out.append(cache._k.shape[2])
        return out

    assert capacities((3, 1, 2, 5, 9)) == [3, 6, 6, 12, 24]
    with torch.no_grad():
        assert capacities((3, 1, 2, 5, 9), requires_grad=(1,)) == [3, 6, 6, 12, 24]
    assert capacities((3, 1, 2), requires_grad=(1,)) == [3, 4, 6]
    assert capacities((3, 1, 2), requires_grad=(0,)) == [3, 4, 6]


def test_attention_without_positions_is_permutation_equivariant():
    torch.manual_seed(0)
    x = torch.randn(1, 10, 16, dtype=torch.float64)
    perm = torch.randperm(10)
    plain = A.MultiHeadAttention(16, 2, causal=False).double()
    torch.testing.assert_close(plain(x[:, perm])[0], plain(x)[0][:, perm])
    rotary = A.MultiHeadAttention(16, 2, rope=True, causal=False).double()
    rotary.load_state_dict(plain.state_dict())
    assert not torch.allclose(rotary(x[:, perm])[0], rotary(x)[0][:, perm])


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(d_model=30, n_heads=4), "n_heads must divide d_model: d_model = 30, n_heads = 4"),
    (dict(d_model=32, n_heads=8, n_kv_heads=3),
     "n_kv_heads must divide n_heads: n_heads = 8, n_kv_heads = 3"),
    (dict(d_model=12, n_heads=4, rope=True), "rope needs an even head size, got d_head = 3"),
    (dict(d_model=0, n_heads=1), "d_model must be a positive int"),
    (dict(d_model=16, n_heads=0), "^n_heads must be a positive int, got 0$"),
    (dict(d_model=16, n_heads=2, n_kv_heads=True), "^n_kv_heads must be a positive int, got True$"),
    (dict(d_model=16.0, n_heads=2), "^d_model must be a positive int, got 16.0$"),
])
def test_mha_rejects_bad_configurations(kwargs, message):
    with pytest.raises(ValueError, match=message):
        A.MultiHeadAttention(**kwargs)


def test_mha_rejects_bad_input_shapes():
    layer = A.MultiHeadAttention(16, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(b, l, d_model\) = \(b, l, 16\)"):
        layer(torch.zeros(2, 5, 8))
    with pytest.raises(ValueError, match="prompt_length must be in"):
        A.step_by_step(layer, torch.zeros(1, 3, 16), prompt_length=4)


def test_scale_default_is_one_over_sqrt_d():
    q, k, v = qkv(d=16)
    torch.testing.assert_close(A.scaled_dot_product_attention(q, k, v),
                               A.scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(16)))


@pytest.mark.parametrize(("x", "got"), [([[1.0] * 16], "()"), (torch.zeros(5, 16), "(5, 16)"),
                                        (torch.zeros(1, 3, 8), "(1, 3, 8)")])
def test_mha_rejects_bad_input_by_shape(x, got):
    """Protects the input check: a tensor (b, l, d_model) only, the given shape in the message."""
    layer = A.MultiHeadAttention(16, 2)
    with pytest.raises(ValueError, match=re.escape(
            f"x must have shape (b, l, d_model) = (b, l, 16), got {got}")):
        layer(x)


# ----------------------------------------------------------------------------- input checks in full
def z(*shape, dtype=torch.float32, device="cpu"):
    return torch.zeros(shape, dtype=dtype, device=device)


@pytest.mark.parametrize(("args", "error", "message"), [
    (([1.0], z(1, 2, 3, 8), z(1, 2, 3, 8)), TypeError,
     "q must be a torch.Tensor of shape (b, h, l_q, d), got list"),
    ((z(1, 2, 3, 8), (1.0,), z(1, 2, 3, 8)), TypeError,
     "k must be a torch.Tensor of shape (b, h_kv, l_k, d), got tuple"),
    ((z(1, 2, 3, 8), z(1, 2, 3, 8), 1.0), TypeError,
     "v must be a torch.Tensor of shape (b, h_kv, l_k, d_v), got float"),
    ((z(1, 2, 3, 8), z(1, 2, 3, 8, dtype=torch.int32), z(1, 2, 3, 8)), TypeError,
     "k must be a floating-point tensor, got dtype torch.int32"),
    ((z(1, 2, 3, 8), z(1, 2, 3, 8), z(1, 2, 3, 8, dtype=torch.bool)), TypeError,
     "v must be a floating-point tensor, got dtype torch.bool"),
    ((z(2, 3, 8), z(1, 2, 3, 8), z(1, 2, 3, 8)), ValueError,
     "q must have shape (b, h, l_q, d) (rank 4), got shape (2, 3, 8) (rank 3)"),
    ((z(1, 2, 3, 8), z(1, 1, 2, 3, 8), z(1, 2, 3, 8)), ValueError,
     "k must have shape (b, h_kv, l_k, d) (rank 4), got shape (1, 1, 2, 3, 8) (rank 5)"),
    ((z(1, 2, 3, 8), z(1, 2, 3, 8), z(2, 3, 8)), ValueError,
     "v must have shape (b, h_kv, l_k, d_v) (rank 4), got shape (2, 3, 8) (rank 3)"),
    ((z(1, 4, 3, 8), z(2, 1, 3, 8), z(3, 1, 3, 8)), ValueError,
     "q, k and v must have the same batch size b, got 1, 2 and 3"),
    ((z(1, 4, 3, 8), z(1, 2, 3, 8), z(1, 1, 3, 8)), ValueError,
     "k and v must have the same heads and length (h_kv, l_k), got k (1, 2, 3, 8) and "
     "v (1, 1, 3, 8)"),
    ((z(1, 4, 3, 8), z(1, 2, 3, 8), z(1, 2, 5, 8)), ValueError,
     "k and v must have the same heads and length (h_kv, l_k), got k (1, 2, 3, 8) and "
     "v (1, 2, 5, 8)"),
    ((z(1, 4, 3, 8), z(1, 0, 3, 8), z(1, 0, 3, 8)), ValueError,
     "the number of K/V heads must divide the query heads: q has h = 4 heads, k and v have "
     "h_kv = 0"),
    ((z(1, 4, 5, 8), z(1, 3, 2, 8), z(1, 3, 2, 8)), ValueError,
     "the number of K/V heads must divide the query heads: q has h = 4 heads, k and v have "
     "h_kv = 3"),
    ((z(1, 2, 3, 8), z(1, 2, 3, 4), z(1, 2, 3, 8)), ValueError,
     "q and k must have the same head size d, got q (1, 2, 3, 8) and k (1, 2, 3, 4)"),
    ((z(1, 2, 3, 8), z(1, 2, 3, 8, device="meta"), z(1, 2, 3, 8, device="meta")), ValueError,
     "q, k and v must be on one device, got cpu, meta and meta"),
    ((z(1, 2, 3, 8), z(1, 2, 3, 8), z(1, 2, 3, 8, device="meta")), ValueError,
     "q, k and v must be on one device, got cpu, cpu and meta"),
])
def test_sdpa_names_the_bad_argument_in_full(args, error, message):
    """Protects every input check of q, k, v (used by all of chapter 6's attention functions):
    the argument named, the expected layout and the given shape, dtype or device in full."""
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        A.scaled_dot_product_attention(*args)


def test_check_qkv_can_require_d_v_equal_to_d():
    """Protects check_qkv's same_d_v option (for methods whose state is d x d): off by
    default, and when on it accepts d_v = d and rejects any other d_v, naming both."""
    from sseq.attention.sdpa import check_qkv

    q, k = z(1, 2, 3, 8), z(1, 2, 3, 8)
    check_qkv(q, k, z(1, 2, 3, 5))
    check_qkv(q, k, z(1, 2, 3, 8), same_d_v=True)
    with pytest.raises(ValueError, match=re.escape(
            "v must have the head size d = 8 of q and k here, got v (1, 2, 3, 5)")):
        check_qkv(q, k, z(1, 2, 3, 5), same_d_v=True)


@pytest.mark.parametrize(("mask", "l_q", "message"), [
    ([[True]], 6, "mask must be a torch.Tensor (bool or float), got list"),
    (torch.ones(1, 1, 1, 6, 6, dtype=torch.bool), 6,
     "mask must broadcast to the scores' shape (b, h, l_q, l_k) = (2, 4, 6, 6), got shape "
     "(1, 1, 1, 6, 6)"),
    (torch.ones(6, 6, dtype=torch.bool), 1,   # broadcastable both ways, but not *to* scores
     "mask must broadcast to the scores' shape (b, h, l_q, l_k) = (2, 4, 1, 6), got shape "
     "(6, 6)"),
    (torch.zeros(3, 1, 1, 6), 6,
     "mask must broadcast to the scores' shape (b, h, l_q, l_k) = (2, 4, 6, 6), got shape "
     "(3, 1, 1, 6)"),
])
def test_sdpa_rejects_masks_that_do_not_broadcast_to_the_scores(mask, l_q, message):
    """Protects the mask check: a mask must broadcast to (b, h, l_q, l_k) itself, rank <= 4
    (a mask that would enlarge the output, e.g. more query rows than l_q, is refused)."""
    with pytest.raises((TypeError, ValueError), match=f"^{re.escape(message)}$"):
        A.scaled_dot_product_attention(*qkv(l_q=l_q), mask=mask)


def test_causal_mask_is_made_on_the_device_asked():
    """Protects causal_mask's device argument (the mask is built where the scores are)."""
    m = A.causal_mask(3, 5, device="meta")
    assert m.device.type == "meta" and m.dtype == torch.bool and m.shape == (3, 5)


def saturation_oracle(ds, n_keys=64, n_queries=256, scaled=True, seed=0):
    """Independent oracle for softmax_saturation: the documented draws (q, k, v for each d
    from one generator), then max weight, entropy and the gradient of Σ_i (A v)_i with
    respect to the scores in closed form, ∂/∂s_ij = A_ij (v_j − Σ_k A_ik v_k), in numpy."""
    import numpy as np

    g = torch.Generator().manual_seed(seed)
    out = {"d": [], "max_weight": [], "entropy": [], "grad_norm": []}
    for d in ds:
        q = torch.randn(n_queries, d, generator=g, dtype=torch.float64).numpy()
        k = torch.randn(n_keys, d, generator=g, dtype=torch.float64).numpy()
        v = torch.randn(n_keys, 1, generator=g, dtype=torch.float64).numpy()[:, 0]
        s = q @ k.T / (np.sqrt(d) if scaled else 1.0)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        w = e / e.sum(axis=1, keepdims=True)
        logw = np.log(np.where(w > 0, w, 1.0))
        grad = w * (v[None, :] - (w @ v)[:, None])
        out["d"].append(d)
        out["max_weight"].append(w.max(axis=1).mean())
        out["entropy"].append(-(w * logw).sum(axis=1).mean())
        out["grad_norm"].append(np.sqrt((grad**2).sum(axis=1)).mean())
    return out


@pytest.mark.parametrize("kwargs", [{}, {"scaled": False},
                                    {"n_keys": 5, "n_queries": 3, "seed": 4}])
def test_softmax_saturation_equals_an_independent_computation(kwargs):
    """Protects every number of the saturation table (chapter 6's plot of why 1/√d): the
    defaults (64 keys, 256 queries, seed 0), the draws, the max weight, the entropy in nats
    and the gradient norm, against numpy and the closed-form softmax gradient."""
    ds = [2, 16, 128]
    got, expected = A.softmax_saturation(ds, **kwargs), saturation_oracle(ds, **kwargs)
    assert got["d"] == ds and all(type(d) is int for d in got["d"])
    for key in ("max_weight", "entropy", "grad_norm"):
        assert got[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-12), key


# ----------------------------------------------------------------------------- positions in full
@pytest.mark.parametrize("bad", [0, 1, 7, -2, 2.0, True, "8"])
def test_positions_accept_only_even_int_sizes(bad):
    """Protects the size check of all three position functions: an even int >= 2, nothing
    else (not 0, not a float or a bool), with the value shown."""
    message = f"must be an even int >= 2 (coordinates come in pairs), got {bad!r}"
    with pytest.raises(ValueError, match="^d " + re.escape(message) + "$"):
        A.sinusoidal_positions(4, bad)
    with pytest.raises(ValueError, match="^d " + re.escape(message) + "$"):
        A.rope_frequencies(bad)
    if isinstance(bad, int) and not isinstance(bad, bool) and bad > 0:
        with pytest.raises(ValueError, match=r"^x\.shape\[-1\] " + re.escape(message) + "$"):
            A.rope(torch.zeros(3, bad), torch.arange(3))


def test_the_smallest_width_is_one_pair():
    """Protects d = 2 (one coordinate pair, the smallest width) against the closed forms."""
    t = torch.arange(5, dtype=torch.float64)
    expected = torch.stack([torch.sin(t), torch.cos(t)], dim=-1).float()
    torch.testing.assert_close(A.sinusoidal_positions(5, 2), expected, rtol=0, atol=1e-7)
    assert A.rope_frequencies(2).tolist() == [1.0]
    x = torch.tensor([[1.0, 0.0]] * 5, dtype=torch.float64)
    torch.testing.assert_close(A.rope(x, torch.arange(5)),
                               torch.stack([torch.cos(t), torch.sin(t)], dim=-1))


def test_position_frequencies_and_their_base():
    """Protects θ_i = base^(−2i/d) in float64 for every base, the default base 10000, and
    that the base reaches the sinusoids and the rotation."""
    for base in (10000.0, 100.0, 7.5):
        theta = torch.tensor([base ** (-2 * i / 6) for i in range(3)], dtype=torch.float64)
        got = A.rope_frequencies(6, base=base)
        assert got.dtype == torch.float64
        torch.testing.assert_close(got, theta, rtol=1e-15, atol=0)
        t = torch.arange(9, dtype=torch.float64)[:, None]
        P = torch.stack([torch.sin(t * theta), torch.cos(t * theta)], dim=-1).flatten(-2)
        torch.testing.assert_close(A.sinusoidal_positions(9, 6, base=base), P.float(),
                                   rtol=0, atol=1e-6)
        x = torch.randn(2, 9, 6, dtype=torch.float64)
        torch.testing.assert_close(A.rope(x, torch.arange(9), base=base),
                                   rope_complex(x, torch.arange(9), base=base))
    torch.testing.assert_close(A.rope_frequencies(6), A.rope_frequencies(6, base=10000.0),
                               rtol=0, atol=0)
    assert A.sinusoidal_positions(3, 4).dtype == torch.float32


def test_rope_keeps_the_dtype_and_takes_positions_as_a_list():
    """Protects RoPE's output dtype (the angles are computed in float64, then cast to x's
    dtype: a float32 x stays float32) and positions given as a list or as floats."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 8, generator=g)
    y = A.rope(x, [3, 0, 1, 10])
    assert y.dtype == torch.float32
    torch.testing.assert_close(y.double(), rope_complex(x.double(), torch.tensor([3, 0, 1, 10])),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(A.rope(x, torch.tensor([3.0, 0.0, 1.0, 10.0])), y)
    big = torch.tensor([123456789.0] * 4)   # float64 angles: exact enough far out
    torch.testing.assert_close(A.rope(x.double(), big),
                               rope_complex(x.double(), big), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("x", "got"), [([[1.0, 2.0]], "list ()"),
                                         (torch.zeros(3, 4, dtype=torch.int64), "Tensor (3, 4)"),
                                         (torch.zeros(4), "Tensor (4,)")])
def test_rope_rejects_what_is_not_a_float_tensor_of_tokens(x, got):
    """Protects RoPE's input check: a floating-point tensor (..., l, d), named in full."""
    with pytest.raises(TypeError, match="^" + re.escape(
            f"x must be a floating-point tensor of shape (..., l, d), got {got}") + "$"):
        A.rope(x, torch.arange(3))


def test_rope_positions_must_be_one_per_token():
    """Protects the positions check: shape (l,), the expected and the given shape shown."""
    with pytest.raises(ValueError, match="^" + re.escape(
            "positions must have shape (l,) = (3,), one per token of x (2, 3, 4), got (3, 1)")
            + "$"):
        A.rope(torch.zeros(2, 3, 4), torch.zeros(3, 1))


def test_sdpa_builds_its_causal_mask_on_the_inputs_device():
    """Protects the causal mask made where q is (a CPU mask on a GPU's scores fails): run on
    PyTorch's "meta" device, which checks devices like a GPU without computing anything."""
    q, k = torch.zeros(1, 2, 3, 4, device="meta"), torch.zeros(1, 1, 5, 4, device="meta")
    y = A.scaled_dot_product_attention(q, k, k, causal=True)
    assert y.device.type == "meta" and y.shape == (1, 2, 3, 4)


def test_rope_rotates_on_the_inputs_device():
    """Protects RoPE's positions and frequencies moved to x's device (CPU ones on a GPU's x
    fail): run on PyTorch's "meta" device, which checks devices like a GPU does."""
    x = torch.zeros(2, 5, 8, device="meta")
    for positions in ([0, 1, 2, 3, 4], torch.arange(5, device="meta")):
        y = A.rope(x, positions)
        assert y.device.type == "meta" and y.shape == x.shape and y.dtype == x.dtype
