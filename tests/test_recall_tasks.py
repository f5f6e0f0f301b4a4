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
