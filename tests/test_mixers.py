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
