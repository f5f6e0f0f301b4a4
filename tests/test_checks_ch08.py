"""The Chapter 8 checkers: a correct answer passes, each kind of wrong one is caught, and the
references agree with independent oracles."""

from __future__ import annotations

import math
import os
import random

import pytest
import torch

from sseq import models, recall_tasks
from sseq.checks import ch08


def test_mqar_reference_agrees_with_the_generator():
    for seed in range(3):
        inputs, targets = recall_tasks.mqar(20, 40, 5, vocab_size=32, seed=seed)
        assert torch.equal(ch08.mqar_targets(inputs, 5), targets)


def mqar_loop(inputs, n_pairs):  # a learner's answer, written as a loop
    targets = torch.full_like(inputs, -100)
    for i, row in enumerate(inputs.tolist()):
        pair = dict(zip(row[0:2 * n_pairs:2], row[1:2 * n_pairs:2], strict=True))
        for t in range(2 * n_pairs, len(row)):
            if row[t] in pair:
                targets[i, t] = pair[row[t]]
    return targets


def test_mqar_checker(capsys):
    assert ch08.check_mqar_targets(mqar_loop)
    assert "all 4 checks pass" in capsys.readouterr().out
    assert ch08.check_mqar_targets(mqar_loop, seed=3, verbose=False)

    def late(inputs, n_pairs):
        t = mqar_loop(inputs, n_pairs)
        return torch.cat([torch.full_like(t[:, :1], -100), t[:, :-1]], 1)

    def with_pairs(inputs, n_pairs):
        t = mqar_loop(inputs, n_pairs)
        t[:, 0:2 * n_pairs:2] = inputs[:, 1:2 * n_pairs:2]
        return t

    report = ch08.check_mqar_targets(late, verbose=False)
    assert not report and "one position late" in str(report)
    report = ch08.check_mqar_targets(with_pairs, verbose=False)
    assert not report and "inside the pairs" in str(report)


def test_copy_ceiling_matches_counting_strings():
    from fractions import Fraction

    for bits, length, n in [(16, 2, 26), (16, 4, 26), (10, 3, 4), (7, 2, 3), (3000, 600, 26)]:
        exact = min(Fraction(1), Fraction(2 ** bits, n ** length))  # the oracle: exact integers
        got = ch08.copy_ceiling(bits, length, n)
        assert math.isclose(got, float(exact), rel_tol=1e-9, abs_tol=1e-300)


def ceiling_logs(bits, length, n):  # a learner's answer, in log space
    return math.exp(min(0.0, math.log(2) * bits - length * math.log(n)))


def test_copy_ceiling_checker():
    assert ch08.check_copy_ceiling(ceiling_logs, verbose=False)
    assert ch08.check_copy_ceiling(ceiling_logs, seed=5, verbose=False)
    no_cap = ch08.check_copy_ceiling(lambda b, l, n: 2.0 ** (b - l * math.log2(n)),
                                     verbose=False)
    assert not no_cap and "cap at 1" in str(no_cap)
    naive = ch08.check_copy_ceiling(lambda b, l, n: min(1.0, 2 ** b / n ** l), verbose=False)
    assert not naive  # overflows on the long case


def test_hybrid_layers_checker():
    assert ch08.hybrid_layers(8, 4) == ["mamba"] * 3 + ["attention"] + ["mamba"] * 3 + [
        "attention"]
    def mine(n, every):
        kinds = ["mamba"] * n
        for i in range(every - 1, n, every):
            kinds[i] = "attention"
        return kinds

    assert ch08.check_hybrid_layers(mine, verbose=False)
    assert ch08.check_hybrid_layers(mine, seed=2, verbose=False)
    zero = ch08.check_hybrid_layers(ch08._zero_based, verbose=False)
    assert not zero and "counted from 0" in str(zero)


def test_hybrid_state_checker():
    # by hand: 2 attention layers keep 2 · t · d; 6 Mamba layers keep d_inner · (N + 3)
    right = 2 * 2 * 1000 * 32 + 6 * 64 * (8 + 3)
    assert ch08.check_hybrid_state(right, verbose=False)
    assert models.state_numbers(models.build(ch08.hybrid_layers(8, 4), 30, d_model=32,
                                             d_state=8), 1000) == right
    keys_only = ch08.check_hybrid_state(right - 64_000, verbose=False)
    assert not keys_only and "keys only" in str(keys_only)
    assert not ch08.check_hybrid_state(..., verbose=False)


# --- what the learner reads, in full -------------------------------------------------------------
MQAR_LINES = [  # (case name, the case's hint) of Exercise 8.1's book cases
    ("one sequence, 4 pairs", " Hint: the value goes at the query's own position: the model "
     "says it right after reading the query."),
    ("one pair", ""),
    ("a batch, 8 pairs", " Hint: score only the queries, past the 2 · n_pairs tokens of pairs; "
     "keys and values there are not scored."),
    ("Zoology's sizes: 64 pairs in 256 tokens", " Hint: compare every token past the pairs "
     "with every key at once: (n, l', pairs)."),
]
MQAR_SIZES = [(1, 32, 4, 64), (3, 8, 1, 8), (16, 64, 8, 64), (4, 256, 64, 8192)]  # n, l, pairs, v


def test_mqar_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 8.1: each case's name (with its sizes), its
    hint, the exact comparison, and the verdict under the exercise's title."""
    lines = str(ch08.check_mqar_targets(lambda inputs, n_pairs: torch.zeros_like(inputs),
                                        verbose=False)).splitlines()
    assert len(lines) == 5
    for line, (name, hint), (n, length, _, _) in zip(lines, MQAR_LINES, MQAR_SIZES,
                                                     strict=False):
        assert line == (f"✗ {name}: values differ at {n * length} of {n * length} entries; "
                        "first at index (0, 0): expected -100, got 0 (relative error 1.0e+00; "
                        f"tolerance exact).{hint}")
    assert lines[-1] == "Exercise 8.1 (MQAR targets): 0 of 4 checks pass. Keep going."


@pytest.mark.parametrize(("shift", "said"), [
    (True, "the targets one position late: a next-token target sits at the query itself: after "
     "reading the key, the model says its value."),
    (False, "targets inside the pairs: the pairs are context, not questions: only the queries "
     "after them are scored."),
])
def test_mqar_mistakes_are_explained_in_full_on_every_case(shift, said):
    """Protects Exercise 8.1's recognised mistakes: a learner's target one position late, or
    targets also on the pairs' keys, is caught on every case and explained in full."""
    def learner(inputs, n_pairs):
        t = mqar_loop(inputs, n_pairs)
        if shift:
            return torch.cat([torch.full_like(t[:, :1], -100), t[:, :-1]], 1)
        t[:, 0:2 * n_pairs:2] = inputs[:, 1:2 * n_pairs:2]
        return t

    report = ch08.check_mqar_targets(learner, verbose=False)
    assert report.n_passed == 0
    assert all(line.endswith(f" Hint: this is {said}") for line in report.lines)


def test_mqar_is_compared_exactly_and_may_not_call_the_generator():
    """Protects Exercise 8.1's exact comparison (one answer off by one fails) and the rule
    that the learner may not read the targets from the book's generator."""
    def off_by_one(inputs, n_pairs):
        t = mqar_loop(inputs, n_pairs)
        asked = (t != -100).nonzero()[0]
        t[asked[0], asked[1]] += 1
        return t

    report = ch08.check_mqar_targets(off_by_one, verbose=False)
    assert report.n_passed == 0 and "values differ at 1 of " in report.lines[0]

    def from_generator(inputs, n_pairs):
        recall_tasks.mqar(1, 8, 1, vocab_size=8)
        return mqar_loop(inputs, n_pairs)

    if "MUTANT_UNDER_TEST" in os.environ:  # make mutants: mqar is mutmut's trampoline,
        return  # which calls the code of a copy, not the code the checker forbids
    report = ch08.check_mqar_targets(from_generator, verbose=False)
    assert report.n_passed == 0 and report.lines[0] == (
        "✗ one sequence, 4 pairs: calls sseq.recall_tasks.mqar, the book's own implementation; "
        "write your own.")


@pytest.mark.parametrize("seed", [None, 5])
def test_mqar_cases_are_drawn_as_the_book_says(seed):
    """Protects Exercise 8.1's cases: MQAR batches drawn in turn from the exercise's generator
    (book seed 808, or mixed with a grading seed) at the stated sizes; for a grading seed the
    pairs of the first and third cases drawn from random.Random(seed), each named as drawn."""
    from sseq.exercises_cases import case_generator

    sizes = [list(s) for s in MQAR_SIZES]
    names = [name for name, _ in MQAR_LINES]
    if seed is not None:
        r = random.Random(seed)
        p, q = r.randint(2, 6), r.randint(6, 10)
        sizes[0][1:3], sizes[2][2] = (8 * p, p), q
        names[0], names[2] = f"one sequence, {p} pairs", f"a batch, {q} pairs"
    g = case_generator(808, seed)
    cases = ch08._mqar_cases(seed)
    assert [c.name for c in cases] == names
    for case, (n, length, pairs, vocab) in zip(cases, sizes, strict=True):
        want = recall_tasks.mqar(n, length, pairs, vocab_size=vocab, seed=g)[0]
        assert torch.equal(case.args[0], want) and case.args[1] == pairs, case.name


def test_graded_mqar_and_ceiling_sizes_cover_their_ranges():
    """Protects the graded variants of Exercises 8.1 and 8.2: across seeds each drawn size
    covers its whole range, and every case's name states the sizes it is run with."""
    pairs, ceiling = [set(), set()], [set(), set(), set(), set()]
    for seed in range(1, 50):
        first, _, third, _ = ch08._mqar_cases(seed)
        pairs[0].add(first.args[1])
        pairs[1].add(third.args[1])
        assert first.args[0].shape == (1, 8 * first.args[1])
        assert first.name == f"one sequence, {first.args[1]} pairs"
        assert third.name == f"a batch, {third.args[1]} pairs"
    assert [(min(s), max(s)) for s in pairs] == [(2, 6), (6, 10)]
    for seed in range(1, 1000):  # cheap: draw many
        _, short, by_n, long, longest, _ = ch08._ceiling_cases(seed)
        for seen, value in zip(ceiling, (short.args[1], by_n.args[2], long.args[1],
                                         longest.args[1]), strict=True):
            seen.add(value)
        assert short.name == f"16 bits, {short.args[1]} letters"
        assert by_n.name == f"64 bits, 16 letters from {by_n.args[2]}"
        assert long.name == f"256 bits, {long.args[1]} letters"
        assert longest.name == f"this chapter's Mamba state in bf16, {longest.args[1]} letters"
    assert [(min(s), max(s)) for s in ceiling] == [(4, 6), (5, 12), (80, 120), (300, 900)]


CEILING_LINES = [  # (case name, expected, the case's hint) of Exercise 8.2's book cases
    ("a state of 16 bits, 2 letters", "1", " Hint: there are 26² = 676 strings and 2¹⁶ states: "
     "every string can get its own."),
    ("16 bits, 4 letters", "0.143412", " Hint: 2¹⁶ states can tell apart at most 2¹⁶ of the "
     "26^L strings."),
    ("64 bits, 16 letters from 8", "1", ""),
    ("256 bits, 100 letters", "3.68421e-65", ""),
    ("this chapter's Mamba state in bf16, 500 letters", "1", " Hint: 2^33792 overflows a "
     "float: work with log₂ (bits − L log₂ n), cap it at 0, then take 2^that."),
    ("more bits than strings need", "1", " Hint: a fraction cannot exceed 1."),
]
CEILING_ARGS = [(16, 2, 26), (16, 4, 26), (64, 16, 8), (256, 100, 26), (33792, 500, 26),
                (4096, 100, 26)]


def test_ceiling_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 8.2: each case's name, the expected fraction,
    its hint, the tolerance, and the verdict under the exercise's title."""
    lines = str(ch08.check_copy_ceiling(lambda b, length, n: -1.0, verbose=False)).splitlines()
    assert len(lines) == 7
    for line, (name, expected, hint) in zip(lines, CEILING_LINES, strict=False):
        assert line.startswith(f"✗ {name}: expected {expected}, got -1 (relative error ")
        assert line.endswith(f"; tolerance rtol 1e-06).{hint}"), line
    assert lines[-1] == ("Exercise 8.2 (the copying ceiling of a state): 0 of 6 checks pass. "
                         "Keep going.")


@pytest.mark.parametrize("seed", [None, 5])
def test_ceiling_cases_are_drawn_as_the_book_says(seed):
    """Protects Exercise 8.2's cases: the book's (bits, length, n_symbols), or for a grading
    seed four sizes drawn in turn from random.Random(seed) in 4..6, 5..12, 80..120, 300..900."""
    args = list(CEILING_ARGS)
    if seed is not None:
        r = random.Random(seed)
        short, n, long, longest = (r.randint(lo, hi)
                                   for lo, hi in ((4, 6), (5, 12), (80, 120), (300, 900)))
        args[1:5] = [(16, short, 26), (64, 16, n), (256, long, 26), (33792, longest, 26)]
    cases = ch08._ceiling_cases(seed)
    assert [c.args for c in cases] == args
    assert [c.hint for c in cases] == [hint[len(" Hint: "):] for _, _, hint in CEILING_LINES]


@pytest.mark.parametrize(("learner", "case", "said"), [
    (lambda b, length, n: 2.0 ** (b - length * math.log2(n)), 0, "the ratio 2^bits / n^L "
     "without the cap at 1: a fraction of strings is at most 1."),
    (lambda b, length, n: min(1.0, b / (length * math.log2(n))), 1, "the ratio of bits to the "
     "string's bits: bits needed and bits held do not trade linearly: each missing bit halves "
     "the strings that fit."),
])
def test_ceiling_mistakes_are_explained_in_full(learner, case, said):
    """Protects Exercise 8.2's recognised mistakes: the uncapped ratio and the linear ratio of
    bits are caught on the case that shows them and explained in full."""
    lines = str(ch08.check_copy_ceiling(learner, verbose=False)).splitlines()
    assert lines[case].startswith(f"✗ {CEILING_LINES[case][0]}: ")
    assert lines[case].endswith(f" Hint: this is {said}")


def test_ceiling_tolerance_just_inside_and_just_outside():
    """rtol = 1e-6, atol = 0: a fraction off by a factor 1 + 5e-7 passes, 1 + 5e-6 fails on
    every case, and 1e-70 added to the tiny 256-bit fraction (3.7e-65) is noticed."""
    def off(factor=1.0, shift=0.0):
        return lambda b, length, n: ceiling_logs(b, length, n) * factor + shift

    assert ch08.check_copy_ceiling(off(1 + 5e-7), verbose=False)
    assert ch08.check_copy_ceiling(off(1 + 5e-6), verbose=False).n_passed == 0
    report = ch08.check_copy_ceiling(off(shift=1e-70), verbose=False)
    assert report.n_passed == 5 and report.lines[3].startswith("✗ 256 bits")


HYBRID_LINES = [  # (case name, size, the case's hint) of Exercise 8.3's book cases
    ("8 layers, attention every 4", 8, " Hint: count from 1: with every = 4 the 4th and the 8th "
     "layers attend."),
    ("Jamba's ratio: 8 layers, one attends", 8, ""),
    ("attention only", 3, ""),
    ("no attention (every > n_layers)", 5, " Hint: with every > n_layers no layer index is a "
     "multiple: all Mamba."),
]


def hybrid_oracle(n_layers, every):  # an independent oracle: the set of attending layers
    attending = set(range(every, n_layers + 1, every))
    return ["attention" if i + 1 in attending else "mamba" for i in range(n_layers)]


def test_hybrid_layers_reference_agrees_with_the_oracle():
    """Protects the reference of Exercise 8.3: layer i (from 1) attends when every divides i."""
    for n, every in [(8, 4), (8, 8), (3, 1), (5, 6), (12, 5), (1, 1), (7, 2)]:
        assert ch08.hybrid_layers(n, every) == hybrid_oracle(n, every)


def test_hybrid_report_in_full_with_the_mistake_explained():
    """Protects what a learner reads for Exercise 8.3: each case's name and hint, the title,
    and indices counted from 0 caught (where it matters) and explained in full."""
    lines = str(ch08.check_hybrid_layers(lambda n, every: [], verbose=False)).splitlines()
    assert lines == [f"✗ {name}: expected a list of {size} items, got list of 0 items.{hint}"
                     for name, size, hint in HYBRID_LINES] + [
        "Exercise 8.3 (a hybrid's layers): 0 of 4 checks pass. Keep going."]
    zero = ch08.check_hybrid_layers(
        lambda n, e: ["attention" if i % e == 0 else "mamba" for i in range(n)], verbose=False)
    assert zero.n_passed == 1 and zero.lines[2] == "✓ attention only"
    explained = (" Hint: this is indices counted from 0: count layers from 1: the first "
                 "attention layer is layer `attention_every`, after the Mamba layers that tell "
                 "it where it is.")
    assert all(zero.lines[i].endswith(explained) for i in (0, 1, 3))


@pytest.mark.parametrize("seed", [None, 5])
def test_hybrid_cases_are_drawn_as_the_book_says(seed):
    """Protects Exercise 8.3's cases: the book's (8, 4), or for a grading seed n_layers in
    6..12 and attention_every in 2..5 drawn from random.Random(seed), named as drawn."""
    n, every = (8, 4)
    if seed is not None:
        r = random.Random(seed)
        n, every = r.randint(6, 12), r.randint(2, 5)
    cases = ch08._hybrid_cases(seed)
    assert [c.args for c in cases] == [(n, every), (8, 8), (3, 1), (5, 6)]
    assert [c.name for c in cases] == [f"{n} layers, attention every {every}",
                                       *(name for name, _, _ in HYBRID_LINES[1:])]
    seen = [set(), set()]
    for s in range(1, 100):
        n, every = ch08._hybrid_cases(s)[0].args
        seen[0].add(n)
        seen[1].add(every)
    assert [(min(s), max(s)) for s in seen] == [(6, 12), (2, 5)]


HYBRID_RIGHT = 2 * 2 * 1000 * 32 + 6 * 64 * (8 + 3)  # by hand, as in test_hybrid_state_checker


@pytest.mark.parametrize(("prediction", "said"), [
    (HYBRID_RIGHT - 6 * 64 * 3, "too low (tolerance: rtol 0.001). "
     "Hint: this is the scan state without the convolution's: a Mamba layer also keeps the last "
     "d_conv − 1 inputs of its convolution."),
    (HYBRID_RIGHT - 2 * 1000 * 32, "too low (tolerance: rtol 0.001). "
     "Hint: this is keys only: the cache holds a value per token as well."),
    (6 * 64 * (8 + 3), "too low by a factor of 10 or more (tolerance: rtol 0.001). Hint: this "
     "is the Mamba layers only: the attention layers' caches grow with t."),
    (1, "too low by a factor of 10 or more (tolerance: rtol 0.001). Hint: each attention layer "
     "keeps a key and a value of d numbers per token; each Mamba layer a fixed state (scan and "
     "convolution)."),
])
def test_hybrid_state_reports_in_full(prediction, said):
    """Protects Exercise 8.4's feedback: each recognised miscount named and explained in full,
    the exercise's hint otherwise, the case named with t, and the title."""
    assert str(ch08.check_hybrid_state(prediction, verbose=False)) == (
        f"✗ numbers carried after t = 1000 tokens: your value is {said}\n"
        "Exercise 8.4 (predict, then measure): 0 of 1 checks pass. Keep going.")


def test_hybrid_state_tolerance_and_length():
    """Protects Exercise 8.4's tolerance (rtol = 1e-3) and its t: after t = 10 tokens the
    attention caches hold 2 · 2 · 10 · 32 numbers."""
    assert ch08.check_hybrid_state(HYBRID_RIGHT * 1.0009, verbose=False)
    assert not ch08.check_hybrid_state(HYBRID_RIGHT * 1.0011, verbose=False)
    assert not ch08.check_hybrid_state(HYBRID_RIGHT * 0.9989, verbose=False)
    report = ch08.check_hybrid_state(2 * 2 * 10 * 32 + 6 * 64 * 11, t=10, verbose=False)
    assert report and report.lines == ["✓ numbers carried after t = 10 tokens"]


def test_checkers_print_by_default_and_pass_seed_and_cases_on(capsys):
    """Protects the checkers' calling conventions: each prints its report unless
    verbose=False, seed= selects the graded cases, and cases= replaces the book's."""
    from sseq.exercises import Case

    ch08.check_mqar_targets(mqar_loop)
    ch08.check_copy_ceiling(ceiling_logs)
    ch08.check_hybrid_layers(hybrid_oracle)
    ch08.check_hybrid_state(HYBRID_RIGHT)
    out = capsys.readouterr().out
    for verdict in ("Exercise 8.1 (MQAR targets): all 4 checks pass. Well done!\n",
                    "Exercise 8.2 (the copying ceiling of a state): all 6 checks pass. Well "
                    "done!\n", "Exercise 8.3 (a hybrid's layers): all 4 checks pass. Well done!\n",
                    "Exercise 8.4 (predict, then measure): correct. Well done!\n"):
        assert verdict in out
    ch08.check_mqar_targets(mqar_loop, verbose=False)
    ch08.check_copy_ceiling(ceiling_logs, verbose=False)
    ch08.check_hybrid_layers(hybrid_oracle, verbose=False)
    ch08.check_hybrid_state(1, verbose=False)
    assert capsys.readouterr().out == ""
    for check, cases, wrong in [
        (ch08.check_mqar_targets, ch08._mqar_cases, lambda i, p: torch.zeros_like(i)),
        (ch08.check_copy_ceiling, ch08._ceiling_cases, lambda b, length, n: -1.0),
        (ch08.check_hybrid_layers, ch08._hybrid_cases, lambda n, e: []),
    ]:
        graded = check(wrong, verbose=False, seed=3)
        assert all(line.startswith(f"✗ {c.name}: ")
                   for line, c in zip(graded.lines, cases(3), strict=True))
        assert graded.lines != check(wrong, verbose=False).lines
    mine = [Case("mine", (torch.tensor([[1, 5, 0, 1]]), 1))]
    assert ch08.check_mqar_targets(mqar_loop, verbose=False, cases=mine).lines == ["✓ mine"]
    mine = [Case("mine", (3, 1, 2))]
    assert ch08.check_copy_ceiling(ceiling_logs, verbose=False, cases=mine).lines == ["✓ mine"]
    mine = [Case("mine", (2, 1))]
    assert ch08.check_hybrid_layers(hybrid_oracle, verbose=False, cases=mine).lines == ["✓ mine"]


def test_ceiling_linear_ratio_is_named_only_below_its_cap():
    """Protects the recognised linear-ratio mistake (bits held / bits a string needs, capped
    at 1): a learner's uncapped ratio is named on the case where it is below 1 (16 bits for
    4 letters, 0.85), and gets the case's own hint where it exceeds 1 (16 bits, 2 letters)."""
    lines = str(ch08.check_copy_ceiling(lambda b, length, n: b / (length * math.log2(n)),
                                         verbose=False)).splitlines()
    assert lines[0].endswith(f"{CEILING_LINES[0][2]}")
    assert lines[1].endswith(" Hint: this is the ratio of bits to the string's bits: bits "
                             "needed and bits held do not trade linearly: each missing bit "
                             "halves the strings that fit.")


def test_mqar_reference_scores_only_tokens_that_ask_a_key():
    """Protects the reference's reading of MQAR on an instructor's own sequences: past the
    pairs, a token that is neither BLANK nor one of the keys (a distractor) is not a query and
    gets IGNORE; every key seen again, however often, gets its value."""
    #                       k1  v1  k2  v2  .  noise k1  .  k2  noise k2  .
    inputs = torch.tensor([[3, 40, 5, 41, 0, 9, 3, 0, 5, 12, 5, 0]])
    want = torch.full_like(inputs, -100)
    want[0, 6], want[0, 8], want[0, 10] = 40, 41, 41
    assert torch.equal(ch08.mqar_targets(inputs, 2), want)
    assert torch.equal(ch08.mqar_targets(inputs, 2), mqar_loop(inputs, 2))


@pytest.mark.parametrize(("prediction", "said"), [
    (5504 - 6 * 64 * 3, "the scan state without the convolution's"),
    (5504 - 2 * 10 * 32, "keys only"),
    (6 * 64 * (8 + 3), "the Mamba layers only"),
])
def test_hybrid_state_mistakes_are_recognised_after_few_tokens(prediction, said):
    """Protects Exercise 8.4's recognised miscounts at another t: after t = 10 tokens
    (2 · 2 · 10 · 32 + 6 · 64 · 11 = 5504 numbers) each one is a large share of the total, so
    each mistake's value must be exactly the miscount it names."""
    report = ch08.check_hybrid_state(prediction, t=10, verbose=False)
    assert not report and f"Hint: this is {said}: " in report.lines[0]
