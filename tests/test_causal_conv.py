"""The causal convolution of Chapter 1 against oracles: a float64 loop, autograd's influence."""

from __future__ import annotations

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
