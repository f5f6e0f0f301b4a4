"""The three families: each against an independent oracle, and its recurrent/cached reading equal
to reading the whole text at once."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sseq import nn as snn
from sseq.lm import GPT, LSTMLM, MambaLM

V = 11  # a small vocabulary


def _ids(b, l, seed=0):
    return torch.randint(V, (b, l), generator=torch.Generator().manual_seed(seed))


def _read_step_by_step(model, idx, prompt):
    """Logits at every position from prefill(idx[:, :prompt]) then one step per token."""
    logits, state = model.prefill(idx[:, :prompt])
    out = [logits]
    for t in range(prompt, idx.shape[1]):
        logits, state = model.step(idx[:, t], state)
        out.append(logits)
    return torch.stack(out, dim=1)  # (b, l − prompt + 1, v)


# --- GPT -------------------------------------------------------------------------------------


def test_gpt_block_matches_torch_transformer_layer():
    """A block is torch.nn.TransformerEncoderLayer (pre-norm, GELU, no biases), causal."""
    model = GPT(V, 16, 1, 4, 32).double()
    block = model.blocks[0]
    ref = nn.TransformerEncoderLayer(32, 4, 128, dropout=0.0, activation="gelu", batch_first=True,
                                     norm_first=True, bias=False).double()
    with torch.no_grad():
        a = block.attn
        ref.self_attn.in_proj_weight.copy_(torch.cat([a.W_q.weight, a.W_k.weight, a.W_v.weight]))
        ref.self_attn.out_proj.weight.copy_(a.W_o.weight)
        ref.linear1.weight.copy_(block.mlp.fc.weight)
        ref.linear2.weight.copy_(block.mlp.proj.weight)
        ref.norm1.weight.copy_(block.ln_1.weight)
        ref.norm2.weight.copy_(block.ln_2.weight)
    x = torch.randn(3, 10, 32, dtype=torch.float64)
    mask = nn.Transformer.generate_square_subsequent_mask(10, dtype=torch.float64)
    torch.testing.assert_close(block(x)[0], ref(x, src_mask=mask, is_causal=True),
                               rtol=1e-10, atol=1e-12)


def test_gpt_shapes_tied_head_and_gpt2_initialisation():
    model = GPT(V, 16, 2, 2, 32)
    assert model(_ids(2, 16)).shape == (2, 16, V)
    assert model.head.weight is model.token_embedding.weight
    n = sum(p.numel() for p in model.parameters())
    assert n == V * 32 + 16 * 32 + 2 * (12 * 32 * 32 + 2 * 32) + 32
    assert model.blocks[1].mlp.proj.weight.std().item() == pytest.approx(0.02 / 2, rel=0.15)


@pytest.mark.parametrize("fused", [True, False])
def test_gpt_kv_cache_reading_equals_recomputation(fused):
    torch.manual_seed(0)
    model = GPT(V, 24, 2, 4, 32, fused=fused).eval()
    idx = _ids(3, 24)
    with torch.no_grad():
        full = model(idx)                                             # (b, l, v)
        cached = _read_step_by_step(model, idx, prompt=5)
    torch.testing.assert_close(cached, full[:, 4:], rtol=1e-5, atol=1e-5)


def test_gpt_past_its_context_rereads_the_last_window():
    torch.manual_seed(0)
    model = GPT(V, 8, 2, 2, 16).eval()
    idx = _ids(2, 14)
    with torch.no_grad():
        cached = _read_step_by_step(model, idx, prompt=3)
        for t in range(2, 14):  # the logits after token t see tokens t − 7 .. t
            window = idx[:, max(0, t - 7): t + 1]
            torch.testing.assert_close(cached[:, t - 2], model(window)[:, -1],
                                       rtol=1e-5, atol=1e-5)


def test_gpt_fused_attention_agrees_with_the_books_attention_in_outputs_and_gradients():
    torch.manual_seed(0)
    fast = GPT(V, 16, 2, 4, 32, fused=True).double()
    slow = GPT(V, 16, 2, 4, 32, fused=False).double()
    slow.load_state_dict(fast.state_dict())
    idx = _ids(2, 16)
    out_fast, out_slow = fast(idx), slow(idx)
    torch.testing.assert_close(out_fast, out_slow, rtol=1e-10, atol=1e-12)
    out_fast.square().sum().backward()
    out_slow.square().sum().backward()
    for (name, a), b in zip(fast.named_parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12, msg=name)


def test_gpt_argument_checks():
    with pytest.raises(ValueError, match="n_heads must divide d_model: d_model = 30, n_heads = 4"):
        GPT(V, 8, 1, 4, 30)
    with pytest.raises(ValueError, match="context must be a positive int, got 0"):
        GPT(V, 0, 1, 2, 8)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        GPT(V, 8, 1, 2, 8, dropout=1.0)
    model = GPT(V, 8, 1, 2, 8)
    with pytest.raises(ValueError, match="positions must be below context = 8, got 9 tokens"):
        model(_ids(1, 9))
    with pytest.raises(ValueError, match=r"idx must be integer token ids of shape \(b, l\)"):
        model(torch.zeros(2, 3))


# --- LSTM ------------------------------------------------------------------------------------


def test_lstm_lm_matches_a_stack_of_the_books_lstm_layers():
    torch.manual_seed(0)
    model = LSTMLM(V, 16, 3).double()
    layers = [snn.LSTM(16, 16).double() for _ in range(3)]
    with torch.no_grad():
        for i, layer in enumerate(layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(layer, f"{name}_l0").copy_(getattr(model.lstm, f"{name}_l{i}"))
    idx = _ids(2, 12)
    h = model.embedding(idx)
    for layer in layers:
        h, _ = layer(h)
    torch.testing.assert_close(model(idx), h @ model.embedding.weight.T, rtol=1e-10, atol=1e-12)


def test_lstm_lm_state_reading_equals_recomputation_and_starts_remembering():
    torch.manual_seed(0)
    model = LSTMLM(V, 16, 2).eval()
    idx = _ids(3, 20)
    with torch.no_grad():
        torch.testing.assert_close(_read_step_by_step(model, idx, 4), model(idx)[:, 3:],
                                   rtol=1e-5, atol=1e-6)
    assert model.head.weight is model.embedding.weight
    b = model.lstm.bias_hh_l1 + model.lstm.bias_ih_l1
    assert torch.equal(b[16:32], torch.ones(16))  # the forget gates' total bias


def test_lstm_lm_argument_checks():
    with pytest.raises(ValueError, match="d_model must be a positive int, got 0"):
        LSTMLM(V, 0, 1)
    with pytest.raises(ValueError, match=r"token ids must be an integer tensor of shape \(b,\)"):
        LSTMLM(V, 8, 1).step(torch.zeros(2, 2, dtype=torch.long), None)


# --- Mamba -----------------------------------------------------------------------------------


def mamba_ssm_layout(vocab, d_model, n_layer, d_state=16, d_conv=4, expand=2, pad=1):
    """Key names and shapes of mamba_ssm's MambaLMHeadModel (mixer_seq_simple.py and
    mamba_simple.py of state-spaces/mamba), written out from the reference's definitions."""
    v = -(-vocab // pad) * pad
    e, r = expand * d_model, -(-d_model // 16)
    keys = {"backbone.embedding.weight": (v, d_model)}
    for i in range(n_layer):
        p = f"backbone.layers.{i}."
        keys.update({
            p + "mixer.A_log": (e, d_state), p + "mixer.D": (e,),
            p + "mixer.in_proj.weight": (2 * e, d_model),
            p + "mixer.conv1d.weight": (e, 1, d_conv), p + "mixer.conv1d.bias": (e,),
            p + "mixer.x_proj.weight": (r + 2 * d_state, e),
            p + "mixer.dt_proj.weight": (e, r), p + "mixer.dt_proj.bias": (e,),
            p + "mixer.out_proj.weight": (d_model, e), p + "norm.weight": (d_model,)})
    keys["backbone.norm_f.weight"] = (d_model,)
    keys["lm_head.weight"] = (v, d_model)
    return keys


def test_mamba_lm_state_dict_has_the_reference_names_and_shapes():
    model = MambaLM(50277, 48, 3, pad_vocab_size_multiple=8)
    got = {k: tuple(t.shape) for k, t in model.state_dict().items()}
    assert got == mamba_ssm_layout(50277, 48, 3, pad=8)
    assert model.lm_head.weight is model.backbone.embedding.weight  # tied
    assert model(_ids(1, 5)).shape == (1, 5, 50277)  # the padding rows are not logits


def test_a_reference_state_dict_loads_strictly_and_gives_the_same_model():
    """A state dict in the reference's layout (keys in any order, as a checkpoint file holds
    them) loads with strict=True; the loaded model computes what the saved one did."""
    torch.manual_seed(0)
    saved = MambaLM(V, 32, 2, d_state=8)
    checkpoint = {k: t.clone() for k, t in sorted(saved.state_dict().items(), reverse=True)}
    config = {"d_model": 32, "n_layer": 2, "vocab_size": V, "ssm_cfg": {"d_state": 8},
              "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True,
              "pad_vocab_size_multiple": 1}
    torch.manual_seed(1)
    loaded = MambaLM.from_mamba_ssm_config(config)
    assert loaded.load_state_dict(checkpoint, strict=True).missing_keys == []
    idx = _ids(2, 9)
    torch.testing.assert_close(loaded(idx), saved(idx), rtol=0, atol=0)
    assert loaded.lm_head.weight is loaded.backbone.embedding.weight


def test_from_mamba_ssm_config_refuses_what_it_cannot_build():
    base = {"d_model": 16, "n_layer": 1, "vocab_size": V, "rms_norm": True}
    with pytest.raises(ValueError, match="rms_norm = true"):
        MambaLM.from_mamba_ssm_config({**base, "rms_norm": False})
    with pytest.raises(ValueError, match="only Mamba-1 models"):
        MambaLM.from_mamba_ssm_config({**base, "ssm_cfg": {"layer": "Mamba2"}})
    with pytest.raises(ValueError, match=r"ssm_cfg has keys this model does not take: "
                                         r"\['dt_rank'\]"):
        MambaLM.from_mamba_ssm_config({**base, "ssm_cfg": {"dt_rank": 4}})


def test_mamba_lm_recurrent_reading_equals_the_parallel_scan():
    torch.manual_seed(0)
    model = MambaLM(V, 32, 2, d_state=8).eval()
    idx = _ids(3, 20)
    with torch.no_grad():
        torch.testing.assert_close(_read_step_by_step(model, idx, 6), model(idx)[:, 5:],
                                   rtol=1e-4, atol=1e-5)


def test_mamba_lm_fused_cpu_scan_agrees_with_the_reference_in_outputs_and_gradients():
    pytest.importorskip("numba")
    torch.manual_seed(0)
    fast = MambaLM(V, 16, 2, d_state=4, backend="cpu").double()
    slow = MambaLM(V, 16, 2, d_state=4, backend="reference").double()
    slow.load_state_dict(fast.state_dict())
    idx = _ids(2, 12)
    out_fast, out_slow = fast(idx), slow(idx)
    torch.testing.assert_close(out_fast, out_slow, rtol=1e-9, atol=1e-11)
    out_fast.square().sum().backward()
    out_slow.square().sum().backward()
    for (name, a), b in zip(fast.named_parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-8, atol=1e-10, msg=name)


def test_mamba_lm_uses_the_reference_initialisation():
    torch.manual_seed(0)
    model = MambaLM(V, 64, 4)
    assert model.backbone.embedding.weight.std().item() == pytest.approx(0.02, rel=0.1)
    mixer = model.backbone.layers[0].mixer
    # out_proj: PyTorch's default (uniform, std 1/√(3 fan_in)) divided by √n_layers
    expected = (1 / (3 * mixer.d_inner)) ** 0.5 / 2
    assert mixer.out_proj.weight.std().item() == pytest.approx(expected, rel=0.1)
    torch.testing.assert_close(mixer.A_log[0].exp(), torch.arange(1.0, 17.0))  # S4D-Real


def test_gpt_initialisation_scales_every_matrix_as_gpt2_does():
    """N(0, 0.02) for the token and position tables and every linear layer; the two layers that
    write into the residual stream (attention's W_o and the MLP's proj) 0.02 / √(2 n_layers)."""
    torch.manual_seed(0)
    model = GPT(V, 64, 2, 4, 64)
    assert model.token_embedding.weight.std().item() == pytest.approx(0.02, rel=0.15)
    assert model.position_embedding.weight.std().item() == pytest.approx(0.02, rel=0.1)
    for block in model.blocks:
        for layer in (block.attn.W_q, block.attn.W_k, block.attn.W_v, block.mlp.fc):
            assert layer.weight.std().item() == pytest.approx(0.02, rel=0.1)
            assert layer.weight.mean().abs().item() < 0.002
        for layer in (block.attn.W_o, block.mlp.proj):
            assert layer.weight.std().item() == pytest.approx(0.01, rel=0.1)  # 0.02 / √4


def test_gpt_dropout_acts_in_training_only_and_fused_is_passed_on():
    """With dropout the training-mode forward pass is random (embeddings and residual branches
    thinned) and the evaluation-mode pass is not; fused picks the attention path of each layer;
    the config and its repr show every setting."""
    torch.manual_seed(0)
    model = GPT(V, 8, 2, 2, 16, dropout=0.3)
    idx = _ids(2, 8)
    assert not torch.equal(model(idx), model(idx))
    model.eval()
    assert torch.equal(model(idx), model(idx))
    dropouts = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts == [0.3] * len(dropouts) and len(dropouts) == 1 + 2 * 2
    assert [b.attn.fused for b in GPT(V, 8, 2, 2, 16, fused=False).blocks] == [False, False]
    assert [b.attn.fused for b in model.blocks] == [True, True]
    assert model.extra_repr() == ("vocab_size=11, context=8, n_layers=2, n_heads=2, "
                                  "d_model=16, dropout=0.3")
    assert model.config.vocab_size == 11 and model.context == 8


def test_gpt_refusals_name_the_argument_and_show_the_value():
    for i, name in enumerate(("vocab_size", "context", "n_layers", "n_heads", "d_model")):
        for bad in (0, True, 2.0):
            args = [V, 8, 1, 2, 8]
            args[i] = bad
            with pytest.raises(ValueError, match=rf"^{name} must be a positive int, got {bad}$"):
                GPT(*args)
    with pytest.raises(ValueError, match=r"^n_heads must divide d_model: d_model = 30, "
                                         r"n_heads = 4$"):
        GPT(V, 8, 1, 4, 30)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=rf"^dropout must be in \[0, 1\), got {bad}$"):
            GPT(V, 8, 1, 2, 8, dropout=bad)
    model = GPT(V, 8, 1, 2, 8)
    with pytest.raises(ValueError, match=r"^positions must be below context = 8, got 9 tokens$"):
        model(_ids(1, 9))
    with pytest.raises(ValueError, match=r"^idx must be integer token ids of shape \(b, l\), got "
                                         r"Tensor \(2, 3\)$"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"^idx must be integer token ids of shape \(b, l\), got "
                                         r"Tensor \(3,\)$"):
        model(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^idx must be integer token ids of shape \(b, l\), got "
                                         r"list \(\)$"):
        model([[1, 2]])


def test_gpt_one_layer_cache_reads_like_recomputation_past_its_window():
    """The cached reading of a one-layer GPT (a single KV cache) equals re-reading the last
    ``context`` tokens for every position, before and after the position table runs out."""
    torch.manual_seed(1)
    model = GPT(V, 6, 1, 2, 8).eval()
    idx = _ids(2, 11, seed=3)
    with torch.no_grad():
        cached = _read_step_by_step(model, idx, prompt=2)
        for t in range(1, 11):
            window = idx[:, max(0, t - 5): t + 1]
            torch.testing.assert_close(cached[:, t - 1], model(window)[:, -1],
                                       rtol=1e-5, atol=1e-6)


def test_gpt_mlp_is_linear_gelu_linear_without_dropout_by_default():
    """The feed-forward layer on its own: Linear(d, 4d) → GELU → Linear(4d, d), no biases, and
    no dropout unless asked (deterministic in training mode)."""
    from sseq.lm.gpt import MLP

    torch.manual_seed(0)
    mlp = MLP(8).double().train()
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    h = x @ mlp.fc.weight.T
    expected = (0.5 * h * (1 + torch.erf(h / 2**0.5))) @ mlp.proj.weight.T  # exact GELU
    torch.testing.assert_close(mlp(x), expected, rtol=1e-12, atol=1e-14)
    assert mlp.fc.bias is None and mlp.proj.bias is None and mlp.dropout.p == 0.0


def test_gpt_block_on_its_own_uses_the_fused_attention_by_default():
    """Block(config) without ``fused`` takes PyTorch's fused attention, as GPT does by default."""
    from sseq.lm.gpt import Block, GPTConfig

    assert Block(GPTConfig(V, 8, 1, 2, 8)).attn.fused is True
    assert Block(GPTConfig(V, 8, 1, 2, 8), fused=False).attn.fused is False


def test_lstm_lm_configuration_initialization_and_messages():
    """Protects the LSTM language model's set-up: sizes must be ints >= 1 (not bools) and
    dropout in [0, 1), with messages naming them; dropout is kept in the config, used between
    stacked layers only (PyTorch warns for one layer), and before the tied head, which has no
    bias; the embedding starts at std 1/sqrt(d); each layer's forget gate starts at
    forget_bias (input-side bias 0, only the f block); bad ids get a message with the wanted
    shape and what was given."""
    for bad in (True, 0, 2.0):
        with pytest.raises(ValueError, match=rf"n_layers must be a positive int, got {bad!r}"):
            LSTMLM(V, 8, bad)
    for bad in (1, 1.5, -0.1):
        with pytest.raises(ValueError, match=rf"dropout must be in \[0, 1\), got {bad!r}"):
            LSTMLM(V, 8, 2, dropout=bad)
    model = LSTMLM(V, 8, 2, dropout=0.25)
    assert model.config.dropout == 0.25 and model.lstm.dropout == 0.25
    assert model.dropout.p == 0.25 and model.head.bias is None
    assert LSTMLM(V, 8, 1, dropout=0.25).lstm.dropout == 0.0
    assert LSTMLM(V, 8, 3, dropout=0.25).lstm.dropout == 0.25
    torch.manual_seed(0)
    wide = LSTMLM(V, 400, 1, forget_bias=2.5)
    assert abs(float(wide.embedding.weight.detach().std()) - 400**-0.5) < 0.1 * 400**-0.5
    d = 400
    for name, want in (("bias_ih_l0", 0.0), ("bias_hh_l0", 2.5)):
        bias = getattr(wide.lstm, name).detach()
        assert torch.all(bias[d:2 * d] == want)
        assert not torch.all(bias[2 * d:3 * d] == want)  # the g block keeps its init
    with pytest.raises(ValueError, match=r"shape \(b, l\), got Tensor \(3,\)$"):
        model(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(b,\), got list \(\)$"):
        model.step([1, 2], None)


def test_lstm_lm_forward_continues_from_a_given_state_and_shows_its_config():
    """Protects forward's ``state`` argument (a text read in two parts, the second from the
    first's final state, gives the logits of reading it whole) and the model's printed
    configuration."""
    torch.manual_seed(0)
    model = LSTMLM(V, 8, 2).eval()
    ids = torch.randint(V, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = model(ids)
        _, state = model.lstm(model.embedding(ids[:, :4]))
        torch.testing.assert_close(model(ids[:, 4:], state), whole[:, 4:])
    assert "vocab_size=11, d_model=8, n_layers=2, dropout=0.0" in repr(model)


def test_gpt_step_refuses_a_state_of_another_depth_or_type():
    """A state from a GPT of another depth used to reach zip(strict=True) and fail with zip's
    message; now step names the argument, the expected and the given number of caches."""
    torch.manual_seed(0)
    model, deeper, shallower = GPT(V, 8, 2, 2, 8), GPT(V, 8, 3, 2, 8), GPT(V, 8, 1, 2, 8)
    prompt, token = _ids(2, 3), _ids(2, 1)[:, 0]
    for other, n in ((deeper, 3), (shallower, 1)):
        _, wrong = other.prefill(prompt)
        with pytest.raises(ValueError, match=rf"^state must hold one KVCache per block: "
                                             rf"expected 2, got {n}$"):
            model.step(token, wrong)
    _, state = model.prefill(prompt)
    for bad in (state.caches, None):
        with pytest.raises(TypeError, match=rf"^state must be a GPTState \(from prefill\), got "
                                            rf"{type(bad).__name__}$"):
            model.step(token, bad)
    logits, state = model.step(token, state)  # the right state still reads
    assert logits.shape == (2, V) and state.caches[0].length == 4
