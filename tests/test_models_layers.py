"""sseq.models.layers: each kind of layer against an independent oracle (torch.nn modules,
float64 loops), prefill + step against the parallel forward, make_layer's defaults and
refusals (issue 18, mutation testing)."""

from __future__ import annotations

import math

import pytest
import torch

from sseq.attention import KVCache
from sseq.mamba import Mamba, MambaState
from sseq.models import layers


def _inputs(b=2, l=7, d=8, seed=0):
    return torch.randn(b, l, d, generator=torch.Generator().manual_seed(seed))


def _torch_attention(layer: layers.AttentionLayer, u: torch.Tensor) -> torch.Tensor:
    """The oracle: torch.nn.MultiheadAttention holding the same four projections, causal."""
    a = layer.attn
    d = a.d_model
    mha = torch.nn.MultiheadAttention(d, a.n_heads, bias=False, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([a.W_q.weight, a.W_k.weight, a.W_v.weight]))
        mha.out_proj.weight.copy_(a.W_o.weight)
    l = u.shape[1]
    future = torch.ones(l, l, dtype=torch.bool).triu(1)  # True: may not attend
    return mha(u, u, u, attn_mask=future, need_weights=False)[0]


def _lstm_loop(lstm: torch.nn.LSTM, u: torch.Tensor):
    """The oracle: LSTM's equations in a float64 loop over positions (gates i, f, g, o)."""
    W_ih, W_hh = lstm.weight_ih_l0.double(), lstm.weight_hh_l0.double()
    bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).double()
    b, l, _ = u.shape
    n = lstm.hidden_size
    h = c = torch.zeros(b, n, dtype=torch.float64)
    ys = []
    for t in range(l):
        z = u[:, t].double() @ W_ih.T + h @ W_hh.T + bias  # (b, 4n)
        i, f, g, o = z.split(n, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        ys.append(h)
    return torch.stack(ys, 1), h, c


def test_attention_layer_is_causal_multi_head_attention():
    """AttentionLayer's forward (and prefill's output) is causal multi-head attention:
    torch.nn.MultiheadAttention with the same weights and a causal mask, to 1e-5. It uses the
    fused path, no positions unless asked, and prefill's cache holds every key read."""
    torch.manual_seed(0)
    layer = layers.AttentionLayer(8, 2)
    u = _inputs()
    with torch.no_grad():
        want = _torch_attention(layer, u)
        torch.testing.assert_close(layer(u), want, atol=1e-5, rtol=1e-5)
        y, cache = layer.prefill(u)
    torch.testing.assert_close(y, want, atol=1e-5, rtol=1e-5)
    assert isinstance(cache, KVCache) and cache.length == 7
    assert cache.keys.shape == (2, 2, 7, 4)
    assert layer.attn.fused is True and layer.attn.rope is False
    assert layer.attn.n_heads == 2 and layer.attn.d_model == 8


def test_attention_layer_rope_makes_order_matter():
    """rope=True reaches the attention (its positions rotate queries and keys): swapping two
    earlier tokens changes the last output; without rope the last output reads its past as a
    set and does not change."""
    u = _inputs(1, 6, 8)
    swapped = u[:, [2, 1, 0, 3, 4, 5]]
    for rope in (False, True):
        torch.manual_seed(1)
        layer = layers.AttentionLayer(8, 2, rope=rope)
        assert layer.attn.rope is rope
        with torch.no_grad():
            same = torch.allclose(layer(u)[:, -1], layer(swapped)[:, -1], atol=1e-6)
        assert same == (not rope)


def test_mlp_layer_is_linear_gelu_linear_with_no_state():
    """MLPLayer is Linear(d, 4d) → exact GELU → Linear(4d, d), no biases (a float64 oracle
    written with erf); prefill and step return it with the state None."""
    torch.manual_seed(0)
    layer = layers.MLPLayer(6)
    assert layer.fc.weight.shape == (24, 6) and layer.proj.weight.shape == (6, 24)
    u = _inputs(d=6)
    h = u.double() @ layer.fc.weight.double().T
    gelu = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
    want = (gelu @ layer.proj.weight.double().T).float()
    with torch.no_grad():
        torch.testing.assert_close(layer(u), want, atol=1e-6, rtol=1e-5)
        y, state = layer.prefill(u)
        torch.testing.assert_close(y, want, atol=1e-6, rtol=1e-5)
        assert state is None
        y_t, state = layer.step(u[:, 3], "anything")
        torch.testing.assert_close(y_t, want[:, 3], atol=1e-6, rtol=1e-5)
        assert state is None


def test_lstm_layer_is_an_lstm_of_width_d_reading_batch_first():
    """LSTMLayer is one LSTM layer of width d over (b, l, d) (batch first: b = 2 ≠ l = 7),
    against a float64 loop of the LSTM equations; prefill returns the outputs and the final
    (h, c), each (1, b, d); the forget gate's total bias starts at exactly 1 (b_if = 0,
    b_hf = 1)."""
    torch.manual_seed(0)
    layer = layers.LSTMLayer(8)
    assert layer.lstm.batch_first and layer.lstm.hidden_size == 8 and layer.lstm.input_size == 8
    n = 8
    assert torch.equal(layer.lstm.bias_ih_l0[n:2 * n], torch.zeros(n))
    assert torch.equal(layer.lstm.bias_hh_l0[n:2 * n], torch.ones(n))
    u = _inputs()
    ys, h, c = _lstm_loop(layer.lstm, u)
    with torch.no_grad():
        torch.testing.assert_close(layer(u).double(), ys, atol=1e-5, rtol=1e-5)
        y, (h_p, c_p) = layer.prefill(u)
    torch.testing.assert_close(y.double(), ys, atol=1e-5, rtol=1e-5)
    assert h_p.shape == c_p.shape == (1, 2, 8)
    torch.testing.assert_close(h_p[0].double(), h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c_p[0].double(), c, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", layers.LAYER_KINDS)
def test_prefill_then_step_is_the_parallel_forward(kind):
    """For every kind, the module-level prefill of 3 positions and then one step per
    position give the parallel forward's outputs (b, d) at every position, to 1e-5."""
    torch.manual_seed(0)
    layer = layers.make_layer(kind, 8, d_state=4, n_heads=2).eval()
    u = _inputs()
    with torch.no_grad():
        full = layer(u)
        y, state = layers.prefill(layer, u[:, :3])
        outs = [y]
        for t in range(3, 7):
            y_t, state = layer.step(u[:, t], state)
            assert y_t.shape == (2, 8)
            outs.append(y_t[:, None])
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=1e-5)


def test_prefill_of_a_mamba_block_returns_its_state():
    """prefill reads a prompt with a Mamba block through forward(return_state=True): the
    output equals forward and the state is a MambaState with the scan state (b, d_inner, N)."""
    torch.manual_seed(0)
    block = Mamba(8, 4)
    u = _inputs()
    with torch.no_grad():
        y, state = layers.prefill(block, u)
        torch.testing.assert_close(y, block(u))
    assert isinstance(state, MambaState)
    assert state.ssm.shape == (2, 16, 4) and state.conv.shape == (2, 16, 3)


def test_make_layer_builds_each_kind_with_the_documented_defaults():
    """make_layer's kinds and defaults: a Mamba layer of width d with N = 16, attention with 4
    heads and no RoPE; d_state, n_heads and rope reach the layer when given."""
    expected = {"attention": layers.AttentionLayer, "mlp": layers.MLPLayer, "mamba": Mamba,
                "lstm": layers.LSTMLayer}
    for kind, cls in expected.items():
        assert type(layers.make_layer(kind, 16)) is cls
    mamba = layers.make_layer("mamba", 16)
    assert (mamba.d_model, mamba.d_state) == (16, 16)
    assert layers.make_layer("mamba", 8, d_state=3).d_state == 3
    attn = layers.make_layer("attention", 16).attn
    assert (attn.d_model, attn.n_heads, attn.rope, attn.fused) == (16, 4, False, True)
    attn = layers.make_layer("attention", 16, n_heads=2, rope=True).attn
    assert (attn.n_heads, attn.rope) == (2, True)
    assert layers.make_layer("mlp", 5).fc.weight.shape == (20, 5)
    assert layers.make_layer("lstm", 5).lstm.hidden_size == 5


def test_make_layer_refuses_an_unknown_kind_in_full():
    """The message names the argument, the kinds accepted and the kind given."""
    with pytest.raises(ValueError) as info:
        layers.make_layer("gru", 8)
    assert str(info.value) == ("kind must be one of ('attention', 'mlp', 'mamba', 'lstm'), "
                               "got 'gru'")
