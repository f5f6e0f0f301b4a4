"""The Chapter 7 checkers: a correct answer passes, each kind of wrong one is caught."""

from __future__ import annotations

import math
import random

import pytest
import torch

from sseq.checks import ch07


# --- 7.1 bits per character and perplexity ---------------------------------------------------
def test_bits_and_perplexity_right_answer_passes(capsys):
    assert ch07.check_bits_and_perplexity(lambda nats: (nats / math.log(2), math.exp(nats)))
    assert "all 5 checks pass" in capsys.readouterr().out


def test_bits_and_perplexity_common_mistakes_are_caught():
    base_two = ch07.check_bits_and_perplexity(lambda n: (n / math.log(2), 2 ** (n / math.log(2))),
                                              verbose=False)
    assert base_two  # 2^bits is e^nats: the same perplexity, rightly accepted
    times = ch07.check_bits_and_perplexity(lambda n: (n * math.log(2), math.exp(n)),
                                           verbose=False)
    assert not times and times.n_passed == 1 and "bits = nats / ln 2" in str(times)
    wrong_base = ch07.check_bits_and_perplexity(lambda n: (n / math.log(2), 2**n), verbose=False)
    assert not wrong_base and "not 2^loss" in str(wrong_base)


def test_bits_and_perplexity_stub_is_reported():
    def todo(nats):
        raise NotImplementedError

    assert "not implemented yet" in str(ch07.check_bits_and_perplexity(todo, verbose=False))


# --- 7.2 top-k ------------------------------------------------------------------------------------
def top_k_right(logits, k, temperature):
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return torch.softmax(logits.masked_fill(logits < kth, -math.inf) / temperature, dim=-1)


def top_k_renormalized_after(logits, k, temperature):  # zero then renormalize: also right
    p = torch.softmax(logits / temperature, dim=-1)
    kth = p.topk(k, dim=-1).values[..., -1:]
    p = p.masked_fill(p < kth, 0.0)
    return p / p.sum(-1, keepdim=True)


def test_top_k_right_answers_pass():
    assert ch07.check_top_k_probs(top_k_right, verbose=False)
    assert ch07.check_top_k_probs(top_k_renormalized_after, verbose=False)


def test_top_k_mistakes_are_caught():
    def not_renormalized(logits, k, temperature):
        p = torch.softmax(logits / temperature, dim=-1)
        return p.masked_fill(p < p.topk(k, dim=-1).values[..., -1:], 0.0)

    report = ch07.check_top_k_probs(not_renormalized, verbose=False)
    assert not report and report.n_passed == 1  # only k = v, where nothing is removed

    def temperature_after(logits, k, temperature):
        return top_k_right(logits, k, 1.0) ** (1 / temperature)

    report = ch07.check_top_k_probs(temperature_after, verbose=False)
    assert not report and "before the softmax" in str(report)

    def whole_batch(logits, k, temperature):  # one top k over all rows together
        kth = logits.flatten().topk(k).values[-1]
        return torch.softmax(logits.masked_fill(logits < kth, -math.inf) / temperature, -1)

    report = ch07.check_top_k_probs(whole_batch, verbose=False)
    assert not report and "row by row" in str(report)


# --- 7.3 the KV cache --------------------------------------------------------------------------
def test_kv_cache_bytes_is_measured_from_the_caches():
    assert ch07.kv_cache_bytes(10) == 2 * 4 * 128 * 4 * 10
    assert ch07.kv_cache_bytes(7, n_layers=2, n_heads=2, d_model=16) == 2 * 2 * 16 * 4 * 7


def test_kv_cache_prediction():
    assert ch07.check_kv_cache_bytes(2 * 4 * 128 * 4 * 1000, verbose=False)
    per_head = ch07.check_kv_cache_bytes(2 * 4 * 32 * 4 * 1000, verbose=False)
    assert not per_head and "all heads together" in str(per_head)
    assert not ch07.check_kv_cache_bytes(4 * 128 * 4 * 1000, verbose=False)  # keys only
    assert "no answer yet" in str(ch07.check_kv_cache_bytes(..., verbose=False))


# --- graded cases: another draw with seed=, an instructor's own with cases= ----------------------
def test_graded_cases_are_another_draw_and_right_answers_still_pass():
    """--seed must change the hidden losses and logits; the book's cases stay the book's."""
    assert [c.args for c in ch07._bits_cases()] == [c.args for c in ch07._bits_cases()]
    book, graded = ch07._bits_cases(), ch07._bits_cases(seed=4)
    assert sum(a.args != b.args for a, b in zip(book, graded, strict=True)) == 3
    assert not any(torch.equal(a.args[0], b.args[0])
                   for a, b in zip(ch07._top_k_cases(), ch07._top_k_cases(seed=4), strict=True))
    for seed in (1, 2, 3):
        assert ch07.check_bits_and_perplexity(lambda n: (n / math.log(2), math.exp(n)),
                                              verbose=False, seed=seed)
        assert not ch07.check_bits_and_perplexity(lambda n: (n / math.log(2), 2**n),
                                                  verbose=False, seed=seed)
        assert ch07.check_top_k_probs(top_k_right, verbose=False, seed=seed)


def test_instructor_cases_replace_the_books():
    from sseq.exercises import Case

    report = ch07.check_bits_and_perplexity(lambda n: (n / math.log(2), math.exp(n)),
                                            verbose=False, cases=[Case("mine", (1.0,))])
    assert report and report.lines == ["✓ mine"]


# --- what the learner reads, in full -------------------------------------------------------------
BITS_LINES = [  # (case name, the case's hint) of Exercise 7.1's book cases
    ("the GPT's validation loss, 1.81 nats",
     " Hint: a bit is log₂, a nat is ln: bits = nats / ln 2."),
    ("the uniform model over 65 characters, ln 65 nats", " Hint: perplexity = e^loss with the "
     "loss in nats (not 2^loss): here it is 65, the number of equally likely characters."),
    ("a perfect model, 0 nats", " Hint: a loss of 0 means certainty: 0 bits, perplexity 1 "
     "(one choice)."),
    ("the bigram model, 2.48 nats", ""),
    ("a poor model, 3.5 nats", ""),
]
BOOK_NATS = [1.81, math.log(65), 0.0, 2.48, 3.5]


def bits_right(nats):  # an independent oracle: log₂ of e^nats, and e^nats
    return math.log2(math.exp(nats)), math.exp(nats)


def test_bits_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 7.1: each book case's name (with its loss),
    the expected bits, its hint, the tolerance, and the verdict under the exercise's title."""
    lines = str(ch07.check_bits_and_perplexity(lambda nats: (-1.0, -1.0),
                                               verbose=False)).splitlines()
    assert len(lines) == 6
    for line, (name, hint), nats in zip(lines, BITS_LINES, BOOK_NATS, strict=False):
        assert line.startswith(f"✗ {name}: item 0: expected {bits_right(nats)[0]:g}, got -1 ")
        assert line.endswith(f"tolerance rtol 1e-09, atol 1e-12).{hint}"), line
    assert lines[-1] == ("Exercise 7.1 (bits per character and perplexity): 0 of 5 checks pass. "
                         "Keep going.")


def test_bits_tolerance_just_inside_and_just_outside():
    """rtol = 1e-9 and atol = 1e-12: bits off by a factor 1 + 5e-10 (or by 5e-13 at the
    perfect model's 0 bits) pass; 1 + 5e-9 fails every nonzero case, 5e-12 the zero one."""
    def off(factor=1.0, shift=0.0):
        return lambda n: (bits_right(n)[0] * factor + shift, math.exp(n))

    assert ch07.check_bits_and_perplexity(off(1 + 5e-10), verbose=False)
    report = ch07.check_bits_and_perplexity(off(1 + 5e-9), verbose=False)
    assert not report and report.n_passed == 1 and report.lines[2].startswith("✓ a perfect")
    assert ch07.check_bits_and_perplexity(off(shift=5e-13), verbose=False)
    report = ch07.check_bits_and_perplexity(off(shift=5e-12), verbose=False)
    assert not report and report.n_passed == 4 and report.lines[2].startswith("✗ a perfect")


@pytest.mark.parametrize("seed", [None, 5])
def test_bits_cases_are_drawn_as_the_book_says(seed):
    """Protects Exercise 7.1's cases: the book's losses (1.81, ln 65, 0, 2.48, 3.5 nats), or
    for a grading seed three losses drawn in turn from random.Random(seed), uniform in
    [1.2, 2.2], [2.2, 3.0] and [3.0, 4.2] nats, rounded to 3 decimals, named as drawn."""
    cases = ch07._bits_cases(seed)
    if seed is None:
        assert [c.name for c in cases] == [name for name, _ in BITS_LINES]
        assert [c.args for c in cases] == [(n,) for n in BOOK_NATS]
        return
    draw = random.Random(seed)
    gpt, bigram, poor = (round(draw.uniform(lo, hi), 3)
                         for lo, hi in ((1.2, 2.2), (2.2, 3.0), (3.0, 4.2)))
    assert [c.args for c in cases] == [(gpt,), (math.log(65),), (0.0,), (bigram,), (poor,)]
    assert [c.name for c in cases] == [
        f"a model's validation loss, {gpt} nats", BITS_LINES[1][0], BITS_LINES[2][0],
        f"a bigram model, {bigram} nats", f"a poor model, {poor} nats"]
    assert [c.hint for c in cases] == [c.hint for c in ch07._bits_cases()]


def test_graded_bits_cases_cover_their_ranges():
    """Protects the graded variants of Exercise 7.1: over many seeds each drawn loss covers
    its whole range at 3 decimals, and the grader's seed (grading_seed) is used too."""
    from sseq.exercises import grading_seed

    drawn = [[], [], []]
    for seed in range(1, 300):
        cases = ch07._bits_cases(seed)
        for values, i in zip(drawn, (0, 3, 4), strict=True):
            values.append(cases[i].args[0])
    for values, (lo, hi) in zip(drawn, ((1.2, 2.2), (2.2, 3.0), (3.0, 4.2)), strict=True):
        assert lo <= min(values) < lo + 0.02 and hi - 0.02 < max(values) <= hi
        assert all(round(v, 3) == v for v in values) and len(set(values)) > 250
    with grading_seed(7):
        assert [c.args for c in ch07._bits_cases()] == [c.args for c in ch07._bits_cases(7)]
        assert ch07._bits_cases()[0].name.startswith("a model's")


TOP_K_LINES = [  # (case name, the case's hint) of Exercise 7.2's book cases
    ("one row, k = 3, τ = 1", " Hint: keep the 3 largest logits of the row; every other token "
     "gets probability 0, and the kept ones sum to 1."),
    ("k = v keeps everything: the plain softmax", ""),
    ("k = 1 is greedy: all mass on the arg-max", " Hint: with k = 1 the answer is one-hot at "
     "each row's largest logit."),
    ("a low temperature, τ = 0.5", " Hint: divide the logits by τ before the softmax: τ < 1 "
     "sharpens the distribution."),
    ("a high temperature, τ = 2, many rows", " Hint: work row by row (dim=-1): each row keeps "
     "its own top k."),
]
TOP_K_SIZES = [(1, 8, 3, 1.0), (2, 8, 8, 1.0), (3, 8, 1, 1.0), (2, 10, 4, 0.5),
               (16, 65, 10, 2.0)]  # (b, v, k, τ) of each case


def test_top_k_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 7.2: each case's name, hint, the tolerance,
    and the verdict under the exercise's title."""
    lines = str(ch07.check_top_k_probs(lambda logits, k, t: -torch.ones_like(logits),
                                       verbose=False)).splitlines()
    assert len(lines) == 6
    for line, (name, hint), (b, v, _, _) in zip(lines, TOP_K_LINES, TOP_K_SIZES, strict=False):
        assert line.startswith(f"✗ {name}: values differ at {b * v} of {b * v} entries;")
        assert line.endswith(f"tolerance rtol 1e-09, atol 1e-12).{hint}"), line
    assert lines[-1] == ("Exercise 7.2 (top-k sampling's distribution): 0 of 5 checks pass. "
                         "Keep going.")


@pytest.mark.parametrize("seed", [None, 5])
def test_top_k_cases_are_drawn_as_the_book_says(seed):
    """Protects Exercise 7.2's cases: case i's logits are 2·randn(b, v) in float64 from the
    exercise's generator for book seed i (mixed with a grading seed), with its k and τ."""
    from sseq.exercises_cases import case_generator

    cases = ch07._top_k_cases(seed)
    assert [c.name for c in cases] == [name for name, _ in TOP_K_LINES]
    for i, (case, (b, v, k, tau)) in enumerate(zip(cases, TOP_K_SIZES, strict=True)):
        want = 2.0 * torch.randn(b, v, generator=case_generator(i, seed), dtype=torch.float64)
        logits, *rest = case.args
        assert torch.equal(logits, want) and logits.dtype == torch.float64, case.name
        assert rest == [k, tau] and type(rest[0]) is int, case.name


def test_top_k_tolerance_just_inside_and_just_outside():
    """rtol = 1e-9 and atol = 1e-12: probabilities off by a factor 1 + 5e-10 (or 5e-13 added
    to the zero ones) pass; 1 + 5e-9 fails, and 5e-12 fails every case that zeroes a token."""
    def off(factor=1.0, shift=0.0):
        def answer(logits, k, temperature):
            p = top_k_right(logits, k, temperature)
            return p * factor + shift * (p == 0)
        return answer

    assert ch07.check_top_k_probs(off(1 + 5e-10), verbose=False)
    assert ch07.check_top_k_probs(off(1 + 5e-9), verbose=False).n_passed == 0
    assert ch07.check_top_k_probs(off(shift=5e-13), verbose=False)
    report = ch07.check_top_k_probs(off(shift=5e-12), verbose=False)
    assert report.n_passed == 1 and report.lines[1].startswith("✓ k = v")


def test_kv_cache_report_in_full_and_its_tolerance():
    """Protects Exercise 7.3's feedback (the case named with t, too high or too low, the hint
    in full, the title) and its tolerance rtol = 1e-3 around 2·4·128·4·t bytes."""
    right = 2 * 4 * 128 * 4 * 1000
    assert str(ch07.check_kv_cache_bytes(right // 4, verbose=False)) == (
        "✗ KV-cache bytes after t = 1000 tokens: your value is too low by a factor of 2 or more "
        "(tolerance: rtol 0.001). Hint: per token and per layer the cache holds one key and one "
        "value, each d_model = n_heads · d_head numbers (all heads together), 4 bytes each in "
        "float32.\nExercise 7.3 (predict, then measure): 0 of 1 checks pass. Keep going.")
    at_12 = 2 * 4 * 128 * 4 * 12  # t = 12 builds a small model: fast
    assert ch07.check_kv_cache_bytes(at_12 * 1.0009, t=12, verbose=False)
    assert not ch07.check_kv_cache_bytes(at_12 * 1.0011, t=12, verbose=False)
    assert not ch07.check_kv_cache_bytes(at_12 * 0.9989, t=12, verbose=False)
    assert "after t = 12 tokens" in str(ch07.check_kv_cache_bytes(1, t=12, verbose=False))


def test_checkers_print_by_default_and_pass_seed_and_cases_on(capsys):
    """Protects the checkers' calling conventions: each prints its report unless
    verbose=False, seed= selects the graded cases, and cases= replaces the book's."""
    from sseq.exercises import Case

    ch07.check_bits_and_perplexity(bits_right)
    assert capsys.readouterr().out.endswith(
        "Exercise 7.1 (bits per character and perplexity): all 5 checks pass. Well done!\n")
    ch07.check_top_k_probs(top_k_right)
    assert capsys.readouterr().out.endswith(
        "Exercise 7.2 (top-k sampling's distribution): all 5 checks pass. Well done!\n")
    ch07.check_kv_cache_bytes(2 * 4 * 128 * 4 * 1000)
    assert capsys.readouterr().out == (
        "✓ KV-cache bytes after t = 1000 tokens\n"
        "Exercise 7.3 (predict, then measure): correct. Well done!\n")
    ch07.check_bits_and_perplexity(bits_right, verbose=False)
    ch07.check_top_k_probs(top_k_right, verbose=False)
    ch07.check_kv_cache_bytes(1, t=3, verbose=False)
    assert capsys.readouterr().out == ""
    graded = ch07.check_bits_and_perplexity(lambda n: (-1.0, -1.0), verbose=False, seed=3)
    assert [line.split(":")[0] for line in graded.lines] == [
        f"✗ {case.name}" for case in ch07._bits_cases(3)]
    seen = []

    def recorder(logits, k, temperature):
        seen.append(logits)
        return top_k_right(logits, k, temperature)

    assert ch07.check_top_k_probs(recorder, verbose=False, seed=3)
    assert all(torch.equal(a, c.args[0])
               for a, c in zip(seen, ch07._top_k_cases(3), strict=True))
    mine = torch.tensor([[0.0, 1.0, 2.0]], dtype=torch.float64)
    report = ch07.check_top_k_probs(top_k_right, verbose=False,
                                    cases=[Case("mine", (mine, 2, 1.0))])
    assert report and report.lines == ["✓ mine"]
