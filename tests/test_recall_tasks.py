"""Chapter 8's tasks (sseq.recall_tasks): each format checked against a plain-Python reading of
its definition, determinism, the bad-input errors, and the sequence accuracy."""

from __future__ import annotations

import pytest
import torch

from sseq import recall_tasks as rt
from sseq.tasks import BLANK, IGNORE


def _copy_row(row):
    """The oracle: parse one copying sequence with a loop; return the string and its targets."""
    marks = rt.copy_tokens(26)
    assert row[0] == marks["BOS"]
    sep = row.index(marks["SEP"])
    s = row[1:sep]
    assert row[sep + 1:2 * sep] == s and row[2 * sep] == marks["EOS"]
    assert all(t == BLANK for t in row[2 * sep + 1:])
    targets = [IGNORE] * len(row)
    for t in range(sep, 2 * sep):  # after SEP and each copied symbol: the next token
        targets[t] = row[t + 1]
    return s, targets


def test_copying_matches_its_definition():
    inputs, targets = rt.copying(200, 9, min_length=2, seed=3)
    assert inputs.shape == targets.shape == (200, 21) and inputs.dtype == torch.int64
    lengths = set()
    for row, target in zip(inputs.tolist(), targets.tolist(), strict=True):
        s, expected = _copy_row(row)
        assert target == expected and all(1 <= c <= 26 for c in s)
        lengths.add(len(s))
    assert lengths == set(range(2, 10))  # every length in [min_length, length] occurs


def test_mqar_matches_its_definition():
    inputs, targets = rt.mqar(100, 40, 6, vocab_size=32, seed=4)
    assert inputs.shape == targets.shape == (100, 40)
    for row, target in zip(inputs.tolist(), targets.tolist(), strict=True):
        keys, values = row[0:12:2], row[1:12:2]
        assert len(set(keys)) == 6 and len(set(values)) == 6
        assert all(1 <= k <= 15 for k in keys) and all(16 <= v <= 31 for v in values)
        queries = [(t, tok) for t, tok in enumerate(row[12:], start=12) if tok != BLANK]
        assert sorted(tok for _, tok in queries) == sorted(keys)  # each key asked once
        assert all((t - 12) % 2 == 0 for t, _ in queries)
        pair = dict(zip(keys, values, strict=True))
        expected = [IGNORE] * 40
        for t, key in queries:
            expected[t] = pair[key]
        assert target == expected


def test_mqar_queries_come_early_under_the_power_law():
    inputs, _ = rt.mqar(2000, 64, 4, seed=0)
    first_half = (inputs[:, 8:36] != BLANK).sum().item()
    assert first_half / (4 * 2000) > 0.7  # power_a = 0.01: gaps ∝ 1/g (0.79); uniform: 0.5
    uniform, _ = rt.mqar(2000, 64, 4, power_a=1.0, seed=0)
    assert abs((uniform[:, 8:36] != BLANK).sum().item() / 8000 - 0.5) < 0.05


def test_induction_heads_matches_its_definition():
    inputs, targets = rt.induction_heads(300, 12, n_symbols=5, seed=5)
    marker = 6
    for row, target in zip(inputs.tolist(), targets.tolist(), strict=True):
        where = [t for t, tok in enumerate(row) if tok == marker]
        assert len(where) == 2 and where[1] == 11 and where[0] <= 9
        assert all(1 <= tok <= 5 for t, tok in enumerate(row) if t not in where)
        assert target == [IGNORE] * 11 + [row[where[0] + 1]]


@pytest.mark.parametrize("task, args", [(rt.copying, (8, 5)), (rt.mqar, (8, 16, 2)),
                                        (rt.induction_heads, (8, 10))])
def test_tasks_are_seeded(task, args):
    a, b, c = task(*args, seed=1), task(*args, seed=1), task(*args, seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    g = torch.Generator().manual_seed(1)
    assert torch.equal(task(*args, seed=g)[0], a[0])  # a generator seeded alike: the same


@pytest.mark.parametrize("call, message", [
    (lambda: rt.copying(0, 5), "n must be an int >= 1, got 0"),
    (lambda: rt.copying(4, 5, min_length=6), "min_length must be <= length = 5, got 6"),
    (lambda: rt.copying(4, 5, n_symbols=1), "n_symbols must be an int >= 2, got 1"),
    (lambda: rt.copying(4, 5, seed=-1), "seed must be >= 0"),
    (lambda: rt.mqar(4, 15, 2), "length must be even"),
    (lambda: rt.mqar(4, 6, 2), "length must be an int >= 8, got 6"),
    (lambda: rt.mqar(4, 16, 2, vocab_size=5), "vocab_size must be an int >= 6, got 5"),
    (lambda: rt.mqar(4, 16, 2, vocab_size=7), "vocab_size must be even"),
    (lambda: rt.mqar(4, 16, 2, power_a=0), "power_a must be a number > 0, got 0"),
    (lambda: rt.induction_heads(4, 3), "length must be an int >= 4, got 3"),
    (lambda: rt.induction_heads(4, 8, n_symbols=True), "n_symbols must be an int >= 2"),
])
def test_bad_arguments_name_themselves(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_seed_of_the_wrong_type():
    with pytest.raises(TypeError, match="seed must be an int or a torch.Generator, got float"):
        rt.mqar(4, 16, 2, seed=1.5)


class _Oracle(torch.nn.Module):
    """Says the target wherever one is scored (and token 1 elsewhere), except in ``wrong``."""

    def __init__(self, targets, wrong=()):
        super().__init__()
        self.targets, self.wrong = targets, wrong

    def forward(self, inputs):
        rows = [i for i in range(len(self.targets)) if torch.equal(inputs[0], self._x[i])][0]
        said = self.targets[rows:rows + len(inputs)].clamp(min=1).clone()
        for i, t in self.wrong:
            if rows <= i < rows + len(inputs):
                said[i - rows, t] = 0
        return torch.nn.functional.one_hot(said, 40).float()


def test_sequence_accuracy_counts_tokens_and_whole_sequences():
    x, y = rt.copying(10, 4, seed=0)
    model = _Oracle(y)
    model._x = x
    assert rt.sequence_accuracy(model, x, y, batch_size=3) == (1.0, 1.0)
    model.wrong = [(2, 5)]  # one scored position (SEP at 5 .. 9) of one string
    token, sequence = rt.sequence_accuracy(model, x, y, batch_size=3)
    assert token == pytest.approx(1 - 1 / 50) and sequence == pytest.approx(0.9)
    with pytest.raises(ValueError, match="inputs and targets must be"):
        rt.sequence_accuracy(model, x, y[:, :3])


# ---- distributions and edge cases (issue 18: mutation testing of sseq.recall_tasks) ----------

def test_copying_draws_every_symbol_and_every_length_with_a_small_alphabet():
    """Symbols are uniform over 1 .. n_symbols (both ends drawn, markers n_symbols + 1 .. + 3),
    lengths uniform over [min_length, length] (both ends), checked by counting with a loop."""
    n_symbols = 3
    inputs, targets = rt.copying(3000, 4, min_length=1, n_symbols=n_symbols, seed=7)
    marks = rt.copy_tokens(n_symbols)
    assert marks == {"BOS": 4, "SEP": 5, "EOS": 6}
    symbols, lengths = [0] * (n_symbols + 1), [0] * 5
    for row, target in zip(inputs.tolist(), targets.tolist(), strict=True):
        assert row[0] == 4 and row.count(5) == 1 and row.count(6) == 1
        L = row.index(5) - 1
        assert row[1:L + 1] == row[L + 2:2 * L + 2] and row[2 * L + 2] == 6
        assert row[2 * L + 3:] == [BLANK] * (8 - 2 * L)
        assert target == [IGNORE] * (L + 1) + row[L + 2:2 * L + 3] + [IGNORE] * (9 - 2 * L)
        lengths[L] += 1
        for c in row[1:L + 1]:
            symbols[c] += 1
    assert lengths[0] == 0 and all(abs(k / 3000 - 0.25) < 0.04 for k in lengths[1:])
    total = sum(symbols)
    assert symbols[0] == 0 and all(abs(k / total - 1 / 3) < 0.03 for k in symbols[1:])


def test_copying_min_length_defaults_to_length_and_may_equal_it():
    """Without min_length every string has the full length; min_length == length is allowed."""
    for kwargs in ({}, {"min_length": 5}):
        inputs, targets = rt.copying(50, 5, n_symbols=2, **kwargs, seed=1)
        assert inputs.shape == (50, 13)
        assert (inputs[:, 6] == rt.copy_tokens(2)["SEP"]).all()
        assert (inputs[:, 12] == rt.copy_tokens(2)["EOS"]).all()
        assert ((targets != IGNORE).sum(1) == 6).all()


def test_copying_with_length_one():
    """The shortest string: ``$ a | a .`` with a and EOS scored."""
    inputs, targets = rt.copying(20, 1, n_symbols=2, seed=0)
    for row, target in zip(inputs.tolist(), targets.tolist(), strict=True):
        assert row == [3, row[1], 4, row[1], 5] and row[1] in (1, 2)
        assert target == [IGNORE, IGNORE, row[1], 5, IGNORE]


def test_mqar_draws_every_key_and_value():
    """Keys cover all of 1 .. vocab_size/2 − 1 and values all of vocab_size/2 .. vocab_size − 1,
    about uniformly (both ends drawn; never a key that is a value, or BLANK)."""
    inputs, _ = rt.mqar(2000, 8, 2, vocab_size=8, seed=2)
    keys, values = inputs[:, 0:4:2].flatten().tolist(), inputs[:, 1:4:2].flatten().tolist()
    assert sorted(set(keys)) == [1, 2, 3] and sorted(set(values)) == [4, 5, 6, 7]
    assert all(abs(keys.count(k) / 4000 - 1 / 3) < 0.04 for k in (1, 2, 3))
    assert all(abs(values.count(v) / 4000 - 1 / 4) < 0.04 for v in (4, 5, 6, 7))


def test_mqar_gap_follows_the_power_law():
    """With one pair the query's gap g (offset 2g) has probability (g + 1)^(power_a − 1) / Z,
    g = 0 .. space − 1: the frequencies match that closed form (the first slot included)."""
    for power_a in (0.01, 0.5):
        inputs, targets = rt.mqar(6000, 12, 1, power_a=power_a, seed=3)
        gap = ((targets[:, 2:] != IGNORE).float().argmax(1) // 2).tolist()
        weights = [(g + 1) ** (power_a - 1) for g in range(5)]
        for g in range(5):
            assert abs(gap.count(g) / 6000 - weights[g] / sum(weights)) < 0.025, (power_a, g)
        assert ((targets[:, 2:] != IGNORE).sum(1) == 1).all()


def test_mqar_at_its_smallest_sizes():
    """length == 4 · n_pairs and vocab_size == 2 · n_pairs + 2 are accepted; power_a may be an
    int (1: uniform); a bool or a non-number is refused."""
    inputs, targets = rt.mqar(30, 8, 2, vocab_size=6, power_a=1, seed=0)
    assert inputs.shape == (30, 8)
    assert sorted(inputs[:, 0:4:2].flatten().unique().tolist()) == [1, 2]
    assert ((targets != IGNORE).sum(1) == 2).all()
    for bad in (True, "1", None, -0.5):
        with pytest.raises(ValueError, match="power_a must be a number > 0"):
            rt.mqar(4, 16, 2, power_a=bad)


def test_induction_heads_marker_position_and_answer_are_uniform():
    """The first marker sits at each of 0 .. length − 3 about equally often, and the answer is
    each symbol 1 .. n_symbols about equally often (the answer is never the marker)."""
    inputs, targets = rt.induction_heads(4000, 6, n_symbols=3, seed=9)
    first = inputs.eq(4).float().argmax(1).tolist()
    answer = targets[:, -1].tolist()
    assert all(abs(first.count(p) / 4000 - 1 / 4) < 0.03 for p in range(4))
    assert all(abs(answer.count(a) / 4000 - 1 / 3) < 0.03 for a in (1, 2, 3))
    body = inputs[:, :-1][inputs[:, :-1] != 4].tolist()
    assert sorted(set(body)) == [1, 2, 3]


def test_induction_heads_at_length_four():
    """The shortest sequence, ``⋄ a x ⋄`` or ``x ⋄ a ⋄``: the target is the symbol after ⋄."""
    inputs, targets = rt.induction_heads(40, 4, n_symbols=2, seed=0)
    for row, target in zip(inputs.tolist(), targets.tolist(), strict=True):
        p = row.index(3)
        assert p in (0, 1) and row[3] == 3 and target == [IGNORE] * 3 + [row[p + 1]]


class _Counter(torch.nn.Module):
    """Predicts token 1 everywhere; records the batch sizes and training flags it was called in."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, inputs):
        self.calls.append((len(inputs), self.training))
        return torch.nn.functional.one_hot(torch.ones_like(inputs), 3).float()


def test_sequence_accuracy_batches_in_eval_mode_and_restores_the_mode():
    """Forward passes run in eval mode, in batches of batch_size (default 256), and the model's
    own mode is given back; targets with an unscored row are refused."""
    x = torch.ones(600, 3, dtype=torch.int64)
    y = torch.full_like(x, IGNORE)
    y[:, 1] = 1
    y[:300, 2] = 2
    for training in (True, False):
        model = _Counter().train(training)
        assert rt.sequence_accuracy(model, x, y) == (pytest.approx(600 / 900), 0.5)
        assert model.calls == [(256, False), (256, False), (88, False)]
        assert model.training is training
    y[5] = IGNORE
    with pytest.raises(ValueError, match="targets must score at least one position in every"):
        rt.sequence_accuracy(_Counter(), x, y)
    with pytest.raises(ValueError, match=r"must be \(n, l\) of one shape, got \(600, 3\) and"):
        rt.sequence_accuracy(_Counter(), x, y.reshape(-1))


@pytest.mark.parametrize("call, message", [
    (lambda: rt.copying(4, 5, min_length=6), "min_length must be <= length = 5, got 6"),
    (lambda: rt.mqar(4, 15, 2), "length must be even (queries sit at even offsets), got 15"),
    (lambda: rt.mqar(4, 16, 2, vocab_size=7),
     "vocab_size must be even (half keys, half values), got 7"),
    (lambda: rt.mqar(4, 16, 2, power_a=0.0), "power_a must be a number > 0, got 0.0"),
    (lambda: rt.mqar(4, 16, 2, power_a="a"), "power_a must be a number > 0, got 'a'"),
    (lambda: rt.sequence_accuracy(_Counter(), torch.ones(2, 3), torch.ones(2, 4)),
     "inputs and targets must be (n, l) of one shape, got (2, 3) and (2, 4)"),
    (lambda: rt.sequence_accuracy(_Counter(), torch.ones(2, 3, dtype=torch.int64),
                                  torch.full((2, 3), IGNORE)),
     "targets must score at least one position in every sequence"),
])
def test_error_messages_in_full(call, message):
    """Each message the learner reads is exactly as written: the argument, the rule, the value."""
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


def test_induction_heads_defaults_to_sixteen_symbols():
    """The paper's alphabet: symbols 1 .. 16, marker 17, when n_symbols is not given."""
    inputs, targets = rt.induction_heads(200, 20, seed=0)
    assert (inputs[:, -1] == 17).all() and (inputs == 17).sum().item() == 400
    assert sorted(inputs[inputs != 17].unique().tolist()) == list(range(1, 17))
    assert set(targets[:, -1].tolist()) <= set(range(1, 17))


@pytest.mark.parametrize("call, message", [
    (lambda: rt.copying(0, 5), "n must be an int >= 1, got 0"),
    (lambda: rt.copying(4, 0), "length must be an int >= 1, got 0"),
    (lambda: rt.copying(4, 5, min_length=0), "min_length must be an int >= 1, got 0"),
    (lambda: rt.copying(4, 5, n_symbols=1), "n_symbols must be an int >= 2, got 1"),
    (lambda: rt.mqar(0, 16, 2), "n must be an int >= 1, got 0"),
    (lambda: rt.mqar(4, 16, 0), "n_pairs must be an int >= 1, got 0"),
    (lambda: rt.mqar(4, 6, 2), "length must be an int >= 8, got 6"),
    (lambda: rt.mqar(4, 16, 2, vocab_size=5), "vocab_size must be an int >= 6, got 5"),
    (lambda: rt.induction_heads(0, 8), "n must be an int >= 1, got 0"),
    (lambda: rt.induction_heads(4, 3), "length must be an int >= 4, got 3"),
    (lambda: rt.induction_heads(4, 8, n_symbols=1), "n_symbols must be an int >= 2, got 1"),
])
def test_size_errors_name_the_argument_in_full(call, message):
    """Every size check names its own argument, its minimum and the value given."""
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


@pytest.mark.parametrize("task, args", [(rt.copying, (30, 6)), (rt.mqar, (30, 16, 2)),
                                        (rt.induction_heads, (30, 10))])
def test_default_seed_is_zero(task, args):
    """Without seed= a task draws what seed=0 draws (the documented default)."""
    assert all(torch.equal(x, y) for x, y in zip(task(*args), task(*args, seed=0), strict=True))


def test_copying_lengths_come_from_the_seed():
    """The string lengths are drawn from the seeded generator too: the same seed, the same
    lengths; a generator seeded alike, the same."""
    a = rt.copying(40, 8, min_length=1, seed=4)
    b = rt.copying(40, 8, min_length=1, seed=torch.Generator().manual_seed(4))
    c = rt.copying(40, 8, min_length=1, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[0], c[0]) and torch.equal(a[1], c[1])
