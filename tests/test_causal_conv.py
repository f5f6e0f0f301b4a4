"""The causal convolution of Chapter 1 against oracles: a float64 loop, autograd's influence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sseq import causal_conv, memory


def conv_loop(x, *, width, layers, seed):
    """The definition, y_t = tanh(Σ_j W_j x_{t-j} + b), as a float64 loop over t and j."""
    h = x.double()
    for F, b in causal_conv.conv_weights(x.shape[1], width=width, layers=layers, seed=seed):
        out = []
        for t in range(len(h)):
            acc = b.double().clone()
            for j in range(width):
                if t - j >= 0:
                    acc = acc + F[j].double() @ h[t - j]
            out.append(torch.tanh(acc))
        h = torch.stack(out)
    return h


@pytest.mark.parametrize(("width", "layers"), [(1, 1), (3, 1), (4, 2), (2, 3)])
def test_whole_sequence_and_step_by_step_equal_the_definition(width, layers):
    x = torch.randn(12, 5, generator=torch.Generator().manual_seed(1))
    expected = conv_loop(x, width=width, layers=layers, seed=2)
    whole = causal_conv.causal_conv(x, width=width, layers=layers, seed=2)
    torch.testing.assert_close(whole.double(), expected, rtol=1e-5, atol=1e-6)
    cache = causal_conv.ConvCache(5, width=width, layers=layers, seed=2)
    steps = torch.stack([cache.step(x_t) for x_t in x])
    torch.testing.assert_close(steps.double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("width", "layers"), [(3, 1), (4, 2), (2, 4)])
def test_the_receptive_field_is_exactly_where_the_influence_is_nonzero(width, layers):
    x = torch.randn(20, 4, generator=torch.Generator().manual_seed(0))
    influence = memory.influence(
        lambda s: causal_conv.causal_conv(s, width=width, layers=layers), x)
    r = causal_conv.receptive_field(width, layers)
    assert r == layers * (width - 1) + 1
    lag = torch.arange(20)[:, None] - torch.arange(20)[None, :]  # t - s
    assert influence[(lag < 0) | (lag >= r)].max() == 0  # neither the future nor too far back
    assert influence[(lag >= 0) & (lag < r)].min() > 0  # everything inside is seen


def test_the_cache_holds_a_fixed_window_whatever_the_length():
    cache = causal_conv.ConvCache(8, width=4, layers=2)
    sizes = []
    for _ in range(50):
        cache.step(torch.randn(8))
        sizes.append(cache.memory_bytes())
    assert set(sizes) == {2 * 3 * 8 * 4}  # layers · (k − 1) · d float32 numbers


def test_per_token_cost_prices_the_convolution_flat():
    cost = memory.per_token_cost("convolution", [16, 4096], d_model=8, repeat=1, number=2)
    assert cost["bytes"][0] == cost["bytes"][1] == 2 * 3 * 8 * 4
    assert (cost["seconds"] > 0).all()


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: causal_conv.receptive_field(0, 2), ValueError, "width must be >= 1, got 0"),
    (lambda: causal_conv.receptive_field(3, 1.5), TypeError, "layers must be an int"),
    (lambda: causal_conv.causal_conv(torch.ones(3)), ValueError, "shape (l, d), got (3,)"),
    (lambda: causal_conv.ConvCache(0), ValueError, "d_model must be >= 1"),
    (lambda: memory.per_token_cost("cnn", [4]), ValueError, "kind must be one of"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_defaults_are_width_4_two_layers_seed_0():
    """causal_conv, ConvCache and conv_weights default to w = 4, 2 layers, seed 0 (the loop's)."""
    x = torch.randn(9, 3, generator=torch.Generator().manual_seed(5))
    expected = conv_loop(x, width=4, layers=2, seed=0)
    torch.testing.assert_close(causal_conv.causal_conv(x).double(), expected, rtol=1e-5,
                               atol=1e-6)
    cache = causal_conv.ConvCache(3)
    steps = torch.stack([cache.step(x_t) for x_t in x])
    torch.testing.assert_close(steps.double(), expected, rtol=1e-5, atol=1e-6)
    assert cache.memory_bytes() == 2 * 3 * 3 * 4


def test_conv_weights_are_seeded_and_scaled():
    """One (F, b) per layer, F (w, d, d) with standard deviation 1/√(w·d) and b (d,) with 0.1:
    the activations stay of order 1; the same seed gives the same weights, another seed not."""
    weights = causal_conv.conv_weights(16, width=4, layers=3, seed=7)
    assert len(weights) == 3
    for F, b in weights:
        assert F.shape == (4, 16, 16) and b.shape == (16,)
        assert F.std().item() == pytest.approx(1 / 8, rel=0.1)
        assert F.mean().abs() < 0.02
    b = torch.cat([b for _, b in causal_conv.conv_weights(256, width=1, layers=4, seed=7)])
    assert b.std().item() == pytest.approx(0.1, rel=0.1)
    again = causal_conv.conv_weights(16, width=4, layers=3, seed=7)
    assert all(torch.equal(F, G) and torch.equal(b, c)
               for (F, b), (G, c) in zip(weights, again, strict=True))
    assert not torch.equal(causal_conv.conv_weights(16, seed=8)[0][0], weights[0][0])
    assert not torch.equal(weights[0][0], weights[1][0])  # each layer its own draw


def test_float64_input_runs_in_float64():
    """A float64 sequence is convolved in float64: it meets the loop to 1e-12."""
    x = torch.randn(10, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = causal_conv.causal_conv(x, width=3, layers=2, seed=1)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, conv_loop(x, width=3, layers=2, seed=1), rtol=1e-12,
                               atol=1e-12)


def test_a_width_1_cache_holds_nothing():
    """w = 1: each output sees only its own input; the cache keeps no history (0 bytes)."""
    cache = causal_conv.ConvCache(4, width=1, layers=3)
    for _ in range(3):
        cache.step(torch.randn(4))
    assert cache.memory_bytes() == 0 and causal_conv.receptive_field(1, 3) == 1


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: causal_conv.receptive_field(True, 2), TypeError,
     "width must be an int, got bool (True)"),
    (lambda: causal_conv.receptive_field(2, 0), ValueError, "layers must be >= 1, got 0"),
    (lambda: causal_conv.conv_weights(4, width=2.0), TypeError,
     "width must be an int, got float (2.0)"),
    (lambda: causal_conv.conv_weights(4, layers=0), ValueError, "layers must be >= 1, got 0"),
    (lambda: causal_conv.conv_weights(0), ValueError, "d_model must be >= 1, got 0"),
    (lambda: causal_conv.causal_conv([[1.0]]), ValueError,
     "x must be a tensor of shape (l, d), got list"),
])
def test_bad_input_shows_what_was_given(call, error, message):
    """Each refusal names the argument and shows the value or type given (bools are no ints)."""
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message


def test_integer_like_sizes_are_accepted():
    """Sizes may be any integral number (a numpy int, from a config array), read as int."""
    assert causal_conv.receptive_field(np.int64(3), np.int64(2)) == 5
    assert type(causal_conv.receptive_field(np.int64(3), np.int64(2))) is int


def test_conv_weights_defaults_and_the_caches_width():
    """conv_weights(d) is w = 4, 2 layers, seed 0; a cache keeps the width it was built with."""
    default = causal_conv.conv_weights(3)
    explicit = causal_conv.conv_weights(3, width=4, layers=2, seed=0)
    assert len(default) == 2 and default[0][0].shape == (4, 3, 3)
    assert all(torch.equal(F, G) and torch.equal(b, c)
               for (F, b), (G, c) in zip(default, explicit, strict=True))
    assert causal_conv.ConvCache(3, width=5).width == 5
