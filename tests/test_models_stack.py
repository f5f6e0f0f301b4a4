"""sseq.models.stack in detail (issue 18, mutation testing): the configuration each family
gets, absolute positions against the closed form, the parameter count of a partly frozen model,
and every error message in full."""

from __future__ import annotations

import math

import pytest
import torch

from sseq import models


def _sinusoids(l, d):
    """The oracle: P[t, 2i] = sin(t / 10000^(2i/d)), P[t, 2i+1] = cos(...), with a loop."""
    P = torch.zeros(l, d, dtype=torch.float64)
    for t in range(l):
        for i in range(d // 2):
            P[t, 2 * i] = math.sin(t / 10000 ** (2 * i / d))
            P[t, 2 * i + 1] = math.cos(t / 10000 ** (2 * i / d))
    return P


def test_families_and_defaults_are_as_documented():
    """build's defaults (width 64, N = 16, 4 heads, seed 0) and each family's layers and
    positions; a list of kinds gets no positions unless asked; the repr shows the config."""
    model = models.build("mamba", 10)
    assert model.config == models.ModelConfig(10, ("mamba",) * 3, 64, 16, 4, "none")
    assert all(torch.equal(p, q) for p, q in
               zip(model.parameters(), models.build("mamba", 10, seed=0).parameters(),
                   strict=True))
    expected = {"transformer": (("attention", "mlp") * 2, "absolute"),
                "transformer_rope": (("attention", "mlp") * 2, "rope"),
                "lstm": (("lstm",) * 3, "none")}
    for kind, (layers, positions) in expected.items():
        config = models.build(kind, 10, d_model=8, n_heads=2).config
        assert (config.layers, config.positions) == (layers, positions)
    hybrid = models.build(("mamba", "attention"), 10, d_model=8, n_heads=2)
    assert hybrid.config.positions == "none" and hybrid.config.layers == ("mamba", "attention")
    assert models.build(["attention"], 10, d_model=8, n_heads=2,
                        positions="rope").config.positions == "rope"
    assert ("vocab_size=10, layers=('mamba', 'mamba', 'mamba'), d_model=64, d_state=16, "
            "n_heads=4, positions=none") in repr(model)


def test_absolute_positions_follow_the_closed_form_at_any_offset():
    """Tokens are embedded as E[x] · √d + P[start + t], the table grown on demand: reading 3,
    then 5 at offset 10, then 40 from the start all match the closed form."""
    d = 8
    model = models.build(["mlp"], 10, d_model=d, positions="absolute")
    table = _sinusoids(60, d).float()
    x = torch.randint(10, (2, 40))
    for start, l in ((0, 3), (10, 5), (0, 40), (13, 1)):
        got = model._embed(x[:, :l], start)
        want = model.embedding.weight[x[:, :l]] * math.sqrt(d) + table[start:start + l]
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    none = models.build(["mlp"], 10, d_model=d)
    torch.testing.assert_close(none._embed(x, 5), none.embedding.weight[x])


def test_count_parameters_counts_only_trainable_ones():
    """A frozen embedding is left out of the count (vocab · d fewer numbers)."""
    model = models.build("lstm", 30, d_model=8)
    total = models.count_parameters(model)
    assert total == sum(p.numel() for p in model.parameters())
    model.embedding.weight.requires_grad_(False)
    assert models.count_parameters(model) == total - 30 * 8


@pytest.mark.parametrize("call, error, message", [
    (lambda: models.build("rnn", 10), ValueError,
     "kind must be one of ['lstm', 'mamba', 'transformer', 'transformer_rope'] or a list of "
     "layer kinds, got 'rnn'"),
    (lambda: models.build(3, 10), TypeError,
     "kind must be a family name or a list of layer kinds, got int"),
    (lambda: models.build("mamba", 10, seed=True), ValueError,
     "seed must be an int >= 0, got True"),
    (lambda: models.build("mamba", 10, seed=-1), ValueError, "seed must be an int >= 0, got -1"),
    (lambda: models.build("mamba", 0), ValueError, "vocab_size must be a positive int, got 0"),
    (lambda: models.build("mamba", 10, d_model=True), ValueError,
     "d_model must be a positive int, got True"),
    (lambda: models.build("mamba", 10, d_state=0), ValueError,
     "d_state must be a positive int, got 0"),
    (lambda: models.build("mamba", 10, n_heads=2.0), ValueError,
     "n_heads must be a positive int, got 2.0"),
    (lambda: models.ModelConfig(10, ["mamba"]), ValueError,
     "layers must be a non-empty tuple of kinds from ('attention', 'mlp', 'mamba', 'lstm'), "
     "got ['mamba']"),
    (lambda: models.build("mamba", 10, positions="alibi"), ValueError,
     "positions must be one of ('absolute', 'rope', 'none'), got 'alibi'"),
    (lambda: models.build("transformer", 10, d_model=12, n_heads=4), ValueError,
     "attention needs d_model divisible by 2 · n_heads (even heads), got d_model = 12, "
     "n_heads = 4"),
    (lambda: models.build("mamba", 10, d_model=8)(torch.zeros(2, 3)), TypeError,
     "tokens must be an int64 tensor (b, l), got torch.float32 of shape (2, 3)"),
    (lambda: models.build("mamba", 10, d_model=8)([1, 2]), TypeError,
     "tokens must be an int64 tensor (b, l), got list of shape ()"),
    (lambda: models.build("mamba", 10, d_model=8)(torch.zeros(3, dtype=torch.int64)), TypeError,
     "tokens must be an int64 tensor (b, l), got torch.int64 of shape (3,)"),
    (lambda: models.build("lstm", 10, d_model=8).step(torch.zeros(2, dtype=torch.int64), None),
     TypeError, "state must be a StackState (from prefill), got NoneType"),
])
def test_error_messages_in_full(call, error, message):
    """Every message names the argument, what is expected and what was given, word for word."""
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message


def test_mlp_only_stack_of_odd_heads_is_accepted():
    """The even-heads rule binds only when there is attention: an MLP stack of width 12 with
    4 heads is built."""
    assert models.build(["mlp", "mlp"], 10, d_model=12, n_heads=4).config.d_model == 12
