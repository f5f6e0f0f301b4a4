"""sseq.models: one constructor for every family — generation agrees with the parallel
forward, models are causal and seeded, parameter counts are matched, bad input is named."""

from __future__ import annotations

import pytest
import torch

from sseq import models

KINDS = ["transformer", "transformer_rope", "mamba", "lstm", ["mamba", "attention", "mamba"],
         ["lstm", "attention", "mlp"]]


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_prefill_then_step_equals_the_parallel_forward(kind):
    model = models.build(kind, 12, d_model=16, d_state=4).eval()
    x = torch.randint(12, (2, 15))
    with torch.no_grad():
        full = model(x)  # (b, l, v)
        logits, state = model.prefill(x[:, :6])
        steps = [logits]
        for t in range(6, 15):
            logits, state = model.step(x[:, t], state)
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full[:, 5:], atol=1e-5, rtol=1e-5)
    assert state.position == 15


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_models_are_causal(kind):
    model = models.build(kind, 12, d_model=16, d_state=4)
    x = torch.randint(12, (1, 10))
    y = x.clone()
    y[:, 7:] = (y[:, 7:] + 1) % 12  # change the future only
    torch.testing.assert_close(model(x)[:, :7], model(y)[:, :7])
    assert not torch.allclose(model(x)[:, 7:], model(y)[:, 7:])


def test_positions_change_what_attention_sees():
    x = torch.randint(12, (1, 8))
    perm = torch.tensor([[3, 1, 2, 0, 4, 5, 6, 7]])  # swap two earlier tokens
    swapped = x.gather(1, perm)
    last = {p: models.build(["attention"], 12, d_model=16, positions=p)
            for p in ("none", "absolute", "rope")}
    with torch.no_grad():  # without positions, one attention layer reads the past as a set
        for p, model in last.items():
            same = torch.allclose(model(x)[:, -1], model(swapped)[:, -1], atol=1e-6)
            assert same == (p == "none"), p


def test_building_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    a, b = models.build("mamba", 10, seed=3), models.build("mamba", 10, seed=3)
    c = models.build("mamba", 10, seed=4)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.embedding.weight, c.embedding.weight)


def test_parameter_counts_match_across_families():
    counts = {k: models.count_parameters(models.build(k, 30, d_model=32, d_state=8))
              for k in ("transformer", "mamba", "lstm")}
    assert max(counts.values()) / min(counts.values()) < 1.05, counts
    lstm = models.build("lstm", 30, d_model=32)
    # the oracle: torch.nn.LSTM's four gates (two biases each), a norm per block, embedding,
    # final norm and head
    per_layer = 4 * (32 * 32 + 32 * 32 + 2 * 32) + 32
    assert models.count_parameters(lstm) == 3 * per_layer + 30 * 32 + 32 + 32 * 30


@pytest.mark.parametrize("call, error, message", [
    (lambda: models.build("rnn", 10), ValueError, "kind must be one of"),
    (lambda: models.build(["mamba", "gru"], 10), ValueError, "layers must be a non-empty"),
    (lambda: models.build([], 10), ValueError, "layers must be a non-empty"),
    (lambda: models.build(3, 10), TypeError, "kind must be a family name or a list"),
    (lambda: models.build("mamba", 0), ValueError, "vocab_size must be a positive int, got 0"),
    (lambda: models.build("mamba", 10, positions="alibi"), ValueError, "positions must be one"),
    (lambda: models.build("transformer", 10, d_model=12, n_heads=4), ValueError,
     "d_model divisible by 2 · n_heads"),
    (lambda: models.build("mamba", 10, seed=-1), ValueError, "seed must be an int >= 0"),
])
def test_bad_arguments_name_themselves(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_bad_tokens_and_states_are_named():
    model = models.build("lstm", 10, d_model=8)
    with pytest.raises(TypeError, match="tokens must be an int64 tensor"):
        model(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="state must be a StackState"):
        model.step(torch.zeros(2, dtype=torch.int64), None)


def test_state_numbers_count_what_generation_carries():
    d, n = 16, 4
    kinds = {"transformer": lambda t: 2 * 2 * t * d,  # 2 attention layers: a key and a value
             "mamba": lambda t: 3 * 2 * d * (n + 3),  # d_inner = 2d: scan state, conv inputs
             "lstm": lambda t: 3 * 2 * d,  # (h, c)
             ("mamba", "attention"): lambda t: 2 * d * (n + 3) + 2 * t * d}
    for kind, closed_form in kinds.items():
        model = models.build(list(kind) if isinstance(kind, tuple) else kind, 10, d_model=d,
                             d_state=n)
        for t in (1, 7, 50):
            assert models.state_numbers(model, t) == closed_form(t), (kind, t)


def test_timing_helpers_leave_the_model_alone():
    model = models.build("mamba", 10, d_model=8, d_state=4)
    before = [p.clone() for p in model.parameters()]
    x = torch.randint(10, (2, 6))
    assert models.step_seconds(model, 5, repeat=2) > 0
    assert models.training_seconds(model, x, x, repeat=2) > 0
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))
    assert model.training
    with pytest.raises(ValueError, match="t must be an int >= 1, got 0"):
        models.state_numbers(model, 0)
    with pytest.raises(TypeError, match="state must hold tensors, got str"):
        models.count_state("h")
