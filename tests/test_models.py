"""sseq.models: one constructor for every family — generation agrees with the parallel
forward, models are causal and seeded, parameter counts are matched, bad input is named."""

from __future__ import annotations

import math

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


# ---- sseq.models.stack in detail (issue 18, mutation testing) ----------------------------


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


def test_position_table_grows_by_doubling():
    """Absolute positions are computed once and the table doubles when outgrown (a step costs
    O(d), not O(t d)): its size after reading up to positions 5, 6, 10, 11 is 5, 10, 10, 20."""
    model = models.build(["mlp"], 10, d_model=8, positions="absolute")
    x = torch.randint(10, (1, 5))
    sizes = []
    for start, l in ((0, 5), (5, 1), (9, 1), (10, 1)):
        model._embed(x[:, :l], start)
        sizes.append(model._table.shape[0])
    assert sizes == [5, 10, 10, 20]


def test_step_refuses_a_state_of_another_depth():
    """A state whose layer list does not match the model's layers (from a model of another
    depth) is refused, not silently cut short; a wrong kind of state is named by its type."""
    model = models.build("lstm", 10, d_model=8).eval()
    x = torch.randint(10, (2, 4))
    with torch.no_grad():
        _, state = model.prefill(x)
        short = models.StackState(state.position, state.layers[:-1])
        with pytest.raises(ValueError) as short_info:
            model.step(x[:, 0], short)
        with pytest.raises(TypeError) as info:
            model.step(x[:, 0], state.layers)
    assert str(info.value) == "state must be a StackState (from prefill), got list"
    n = len(model.layers)
    assert str(short_info.value) == (f"state must hold one layer state per layer: expected "
                                     f"{n}, got {n - 1}")


def test_absolute_positions_keep_the_models_dtype():
    """A model cast to bfloat16 embeds in bfloat16: the float32 position table is cast to the
    embeddings' dtype, not the other way round."""
    model = models.build(["mlp"], 10, d_model=8, positions="absolute").to(torch.bfloat16)
    x = torch.randint(10, (2, 5))
    assert model._embed(x, 0).dtype == torch.bfloat16
    assert model(x).dtype == torch.bfloat16


def test_n_heads_reaches_the_attention_layers():
    """n_heads is passed on to every attention layer: the same weights (same seed; the head
    count does not change their shapes) split into 2 or 4 heads give different outputs."""
    x = torch.randint(10, (1, 6))
    two, four = (models.build(["attention"], 10, d_model=16, n_heads=h) for h in (2, 4))
    assert all(torch.equal(p, q) for p, q in zip(two.parameters(), four.parameters(),
                                                  strict=True))
    with torch.no_grad():
        assert not torch.allclose(two(x), four(x), atol=1e-4)


def test_first_token_of_a_fresh_absolute_model_gets_position_zero():
    """A fresh model reading one token at position 0 (generation's first step) adds P[0] =
    (0, 1, 0, 1, ...), not a placeholder row; an empty read gives an empty embedding."""
    model = models.build(["mlp"], 10, d_model=8, positions="absolute")
    x = torch.randint(10, (2, 1))
    want = model.embedding.weight[x] * math.sqrt(8) + torch.tensor([0.0, 1.0] * 4)
    torch.testing.assert_close(model._embed(x, 0), want)
    fresh = models.build(["mlp"], 10, d_model=8, positions="absolute")
    assert fresh._embed(torch.zeros(2, 0, dtype=torch.int64), 0).shape == (2, 0, 8)


def test_sizes_of_one_are_accepted():
    """Every size must be a positive int: 1 is the smallest accepted (vocabulary, width, N,
    heads)."""
    config = models.ModelConfig(1, ("mlp",), d_model=1, d_state=1, n_heads=1)
    assert (config.vocab_size, config.d_model, config.d_state, config.n_heads) == (1, 1, 1, 1)


# ---- sseq.models.cost in detail (issue 18, mutation testing) ----------------------------


def test_count_state_counts_every_kind_of_state_by_hand():
    """count_state against hand counts: None holds 0; a tensor its elements; an empty KV cache
    0 (its buffers are not counted) and a filled one its keys plus values; lists and tuples
    their sum; a StackState its layers (not its position); any small object of tensors
    (a dataclass) its fields; anything else is refused, naming its type."""
    from dataclasses import dataclass

    from sseq.attention import KVCache
    from sseq.models.cost import count_state

    assert count_state(None) == 0
    assert count_state(torch.zeros(2, 3, 5)) == 30
    cache = KVCache()
    assert count_state(cache) == 0
    cache.append(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))  # (b, h, t, d_head)
    assert count_state(cache) == 2 * 24
    assert count_state([torch.zeros(2), (torch.zeros(3), None), []]) == 5

    @dataclass
    class Pair:
        a: torch.Tensor
        b: torch.Tensor

    assert count_state(Pair(torch.zeros(4), torch.zeros(2, 2))) == 8
    assert count_state(models.StackState(99, [torch.zeros(3), cache])) == 3 + 48
    for bad, name in ((3, "int"), (2.5, "float"), ("h", "str")):
        with pytest.raises(TypeError) as info:
            count_state(bad)
        assert str(info.value) == f"state must hold tensors, got {name}"


@pytest.mark.parametrize("t", [0, -1, True, 1.5, "3"])
def test_the_number_of_tokens_read_is_checked_in_full(t):
    """state_numbers and step_seconds refuse t that is not an int >= 1, naming it, word for
    word; t = 1 is accepted."""
    model = models.build(["mlp"], 10, d_model=4, n_heads=1)
    for call in (lambda: models.state_numbers(model, t),
                 lambda: models.step_seconds(model, t, repeat=1)):
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == f"t must be an int >= 1, got {t!r}"
    assert models.state_numbers(models.build(["attention"], 10, d_model=4, n_heads=1), 1) == 8


def test_step_seconds_times_one_step_after_t_tokens_in_eval_mode(monkeypatch):
    """step_seconds reads the first t tokens of a seeded prompt (tokens drawn from the
    vocabulary by a generator seeded with ``seed``), then times model.step on token t + 1 in
    eval mode, 7 rounds by default after one warm-up, and reports their median; the model's
    mode is restored."""
    from sseq.bench import Timing
    from sseq.models import cost

    model = models.build(["lstm"], 10, d_model=4, n_heads=1)
    seen = {}
    real_prefill, real_step = model.prefill, model.step

    def prefill(tokens):
        seen["prompt"] = tokens.clone()
        return real_prefill(tokens)

    def step(token, state):
        seen.setdefault("tokens", []).append(token.clone())
        seen.setdefault("training", []).append(model.training)
        return real_step(token, state)

    def fake_time_fn(fn, *, repeat, warmup):
        seen["repeat"], seen["warmup"] = repeat, warmup
        fn()
        return Timing(0.25, 0.0, 1.0, (0.25,))

    monkeypatch.setattr(model, "prefill", prefill)
    monkeypatch.setattr(model, "step", step)
    monkeypatch.setattr(cost, "time_fn", fake_time_fn)
    assert models.step_seconds(model, 6, seed=3) == 0.25
    want = torch.randint(10, (1, 7), generator=torch.Generator().manual_seed(3))
    assert torch.equal(seen["prompt"], want[:, :6])
    assert torch.equal(seen["tokens"][0], want[:, 6])
    assert seen["training"] == [False] and model.training
    assert (seen["repeat"], seen["warmup"]) == (7, 1)
    model.eval()
    models.step_seconds(model, 2, repeat=3)  # the default seed is 0
    assert not model.training and seen["repeat"] == 3
    want = torch.randint(10, (1, 3), generator=torch.Generator().manual_seed(0))
    assert torch.equal(seen["prompt"], want[:, :2]) and torch.equal(seen["tokens"][-1], want[:, 2])


def test_training_seconds_is_the_median_of_five_training_steps(monkeypatch):
    """training_seconds times sseq.train's training step on the batch given, 5 rounds by
    default (or ``repeat``), and reports the median."""
    from sseq.bench import Timing
    from sseq.models import cost

    calls = []

    def fake(model, inputs, targets, *, repeat):
        calls.append((model, inputs, targets, repeat))
        return Timing(0.5, 0.0, 1.0, (0.5,))

    monkeypatch.setattr(cost, "time_training_step", fake)
    model = models.build(["mlp"], 10, d_model=4, n_heads=1)
    x, y = torch.zeros(2, 3, dtype=torch.int64), torch.ones(2, 3, dtype=torch.int64)
    assert models.training_seconds(model, x, y) == 0.5
    assert models.training_seconds(model, x, y, repeat=2) == 0.5
    assert [c[3] for c in calls] == [5, 2]
    assert calls[0][0] is model and calls[0][1] is x and calls[0][2] is y
