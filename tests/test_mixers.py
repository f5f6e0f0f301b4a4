"""sseq.mixers and the selective-copying task: the chapter's models and their data."""

from __future__ import annotations

import pytest
import torch

from sseq import mixers, ssm, tasks
from sseq.mamba import Mamba
from sseq.tasks import BLANK, IGNORE


@pytest.mark.parametrize("kind", mixers.KINDS)
def test_every_model_maps_tokens_to_logits_and_trains(kind):
    model = mixers.make_model(kind, 10, d_model=8, d_state=4)
    tokens = torch.randint(0, 10, (3, 12))
    logits = model(tokens)
    assert logits.shape == (3, 12, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_models_differ_only_in_the_mixer():
    shapes = {kind: {k: tuple(v.shape) for k, v in mixers.make_model(kind, 10).state_dict().items()
                     if ".mixer." not in k} for kind in ("s4d", "s4d_gate", "s6", "mamba")}
    assert all(s == shapes["mamba"] for s in shapes.values())
    mamba = mixers.make_model("mamba", 10)
    assert isinstance(mamba.layers[0].mixer, Mamba) and mamba.layers[0].mixer.gate
    s4d = mixers.make_model("s4d", 10)
    assert isinstance(s4d.layers[1].mixer.ssm, ssm.S4D) and not s4d.layers[1].mixer.gate


def test_the_lstm_has_about_as_many_parameters_as_mamba():
    for vocab, d_model in ((10, 32), (18, 32), (18, 64)):
        n_mamba = mixers.count_parameters(mixers.make_model("mamba", vocab, d_model=d_model))
        n_lstm = mixers.count_parameters(mixers.make_model("lstm", vocab, d_model=d_model))
        assert abs(n_lstm - n_mamba) / n_mamba < 0.03


def test_the_s4d_mixer_is_time_invariant_in_its_ssm():
    """Its SSM is a convolution: the same kernel whatever the input (linear and LTI)."""
    mixer = mixers.S4DMixer(8, 4, gate=False)
    x1, x2 = torch.randn(2, 10, 16), torch.randn(2, 10, 16)
    torch.testing.assert_close(mixer.ssm(x1 + x2), mixer.ssm(x1) + mixer.ssm(x2),
                               rtol=1e-4, atol=1e-5)


def test_models_are_seeded_and_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = (mixers.make_model("mamba", 10, seed=3) for _ in range(2))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    c = mixers.make_model("mamba", 10, seed=4)
    assert not torch.equal(a.embedding.weight, c.embedding.weight)


def test_make_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        mixers.make_model("transformer", 10)
    with pytest.raises(ValueError, match="seed must be an int >= 0, got -1"):
        mixers.make_model("s6", 10, seed=-1)
    with pytest.raises(TypeError, match="tokens must be an int64 tensor"):
        mixers.make_model("s6", 10)(torch.randn(2, 5))


# --- the task ----------------------------------------------------------------------------------


@pytest.mark.parametrize("selective", [True, False])
def test_selective_copying_layout(selective):
    x, y = tasks.selective_copying(50, 20, 4, n_symbols=6, selective=selective, seed=1)
    assert x.shape == y.shape == (50, 24) and x.dtype == y.dtype == torch.int64
    assert (x[:, 20:] == 7).all()  # the COPY token
    assert (y[:, :20] == IGNORE).all()
    data = x[:, :20]
    assert ((data == BLANK).sum(1) == 16).all() and data.max() <= 6
    for i in range(50):  # the targets are the data symbols, in order
        assert torch.equal(y[i, 20:], data[i][data[i] != BLANK])
    if not selective:
        assert (data[:, :4] != BLANK).all()


def test_selective_positions_vary_and_are_seeded():
    x, _ = tasks.selective_copying(200, 30, 5, seed=2)
    positions = {tuple((row[:30] != BLANK).nonzero().flatten().tolist()) for row in x}
    assert len(positions) > 150
    assert torch.equal(x, tasks.selective_copying(200, 30, 5, seed=2)[0])


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    (dict(n=0, length=10, n_memorize=2), ValueError, "n must be an int >= 1"),
    (dict(n=2, length=3, n_memorize=4), ValueError, "length must be an int >= 4"),
    (dict(n=2, length=10, n_memorize=0), ValueError, "n_memorize must be an int >= 1"),
    (dict(n=2, length=10, n_memorize=2, n_symbols=1), ValueError, "n_symbols must be an int"),
    (dict(n=2, length=10, n_memorize=2, selective=1), TypeError, "selective must be True"),
])
def test_selective_copying_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        tasks.selective_copying(**kwargs)


def test_render_tokens():
    x, y = tasks.selective_copying(1, 10, 3, n_symbols=4, seed=0)
    text = tasks.render_tokens(x[0], 4)
    assert len(text) == 13 and text.endswith("???") and text.count("·") == 7
    assert tasks.render_tokens(y[0], 4)[:10] == "_" * 10
    assert tasks.render_tokens([0, 1, 26, 27], 26) == "·az?"
    with pytest.raises(ValueError, match="n_symbols must be <= 26"):
        tasks.render_tokens([1], 27)


# --- wiring, defaults and messages (gaps found by mutation testing) -----------------------------


def _shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_make_model_passes_its_sizes_to_every_mixer():
    """n_layer blocks, each mixer built with d_model, d_state, expand and its gate; the
    defaults are d_model 32, 2 layers, N = 16, expand 2, seed 0."""
    for kind, gate in (("s4d", False), ("s4d_gate", True), ("s6", False), ("mamba", True)):
        model = mixers.make_model(kind, 7, d_model=8, n_layer=3, d_state=4, expand=3)
        assert len(model.layers) == 3
        mixer = model.layers[2].mixer
        assert mixer.gate is gate
        ref = (mixers.S4DMixer(8, 4, expand=3, gate=gate) if kind.startswith("s4d")
               else Mamba(8, 4, expand=3, gate=gate))
        assert _shapes(mixer) == _shapes(ref)
    a = mixers.make_model("mamba", 5)
    b = mixers.make_model("mamba", 5, d_model=32, n_layer=2, d_state=16, expand=2, seed=0)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_s4d_mixer_defaults_and_options():
    """S4DMixer(d) has N = 16, a width-4 convolution, expand 2, the gate and no linear biases;
    init is passed on to its S4D layer."""
    got = _shapes(mixers.S4DMixer(8))
    assert got == _shapes(mixers.S4DMixer(8, 16, 4, 2, gate=True, init="lin"))
    assert got["in_proj.weight"] == (32, 8) and got["conv1d.weight"] == (16, 1, 4)
    assert "in_proj.bias" not in got and "out_proj.bias" not in got
    assert mixers.S4DMixer(8, 4, init="inv").ssm.config.init == "inv"


@pytest.mark.parametrize("gate", [True, False])
def test_s4d_mixer_forward_is_its_wiring(gate):
    """in_proj → causal depthwise conv (a float64 loop) → SiLU → S4D → × SiLU(z) → out_proj."""
    torch.manual_seed(0)
    mixer = mixers.S4DMixer(4, 4, d_conv=3, expand=1, gate=gate).double()
    u = torch.randn(2, 6, 4, dtype=torch.float64)
    xz = u @ mixer.in_proj.weight.T
    x, z = xz.chunk(2, dim=-1) if gate else (xz, None)
    w, bias = mixer.conv1d.weight[:, 0], mixer.conv1d.bias  # (d, 3): tap k sees x_{t−2+k}
    conv = torch.zeros_like(x)
    for t in range(6):
        for k in range(3):
            if t - 2 + k >= 0:
                conv[:, t] += w[:, k] * x[:, t - 2 + k]
    y = mixer.ssm(torch.nn.functional.silu(conv + bias))
    if gate:
        y = y * torch.nn.functional.silu(z)
    torch.testing.assert_close(mixer(u), y @ mixer.out_proj.weight.T, rtol=1e-10, atol=1e-12)


def test_token_model_has_no_readout_bias_and_refusals_show_what_was_given():
    """lm_head has no bias; bad tokens are refused showing their dtype (or type) and shape."""
    model = mixers.make_model("s6", 6, d_model=8, d_state=4)
    assert "lm_head.bias" not in model.state_dict()
    with pytest.raises(TypeError, match=r"^tokens must be an int64 tensor \(b, l\), got "
                                        r"torch.float32 of shape \(2, 5\)$"):
        model(torch.randn(2, 5))
    with pytest.raises(TypeError, match=r"got list of shape \(\)$"):
        model([[1, 2]])
    with pytest.raises(ValueError, match="seed must be an int >= 0, got True"):
        mixers.make_model("s6", 6, seed=True)


def test_lstm_hidden_solves_the_parameter_count():
    """The LSTM's hidden size is the integer h whose count 4h(v + h) + 8h + (h + 1)v is nearest
    the target (here 735 and 852 for h = 10, 11 around 800), and at least 1."""
    def count(v, h):
        return mixers.count_parameters(torch.nn.LSTM(v, h)) + (h + 1) * v

    assert count(5, 10) == 735 and count(5, 11) == 852
    assert mixers._lstm_hidden(5, 800) == 11 and mixers._lstm_hidden(5, 735) == 10
    assert mixers._lstm_hidden(5, 10) == 1


def test_the_lstm_baseline_runs_on_torchs_fused_lstm():
    """make_model("lstm") uses torch.nn.LSTM (the fused kernel, for the chapter's training
    runs), not sseq's readable cell loop."""
    model = mixers.make_model("lstm", 5, d_model=8, d_state=4)
    assert isinstance(model.recurrent, torch.nn.LSTM)
