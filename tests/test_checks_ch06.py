"""The Chapter 6 checkers: a correct answer passes, each kind of wrong one is caught."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F

from sseq.attention import softmax_kernel_estimate
from sseq.checks import ch06
from sseq.exercises import Case, case_generator, grading_seed
from tests.learners import recorded


# --- 6.1 the causal mask ---------------------------------------------------------------------
def mask_right(l_q, l_k):
    i = torch.arange(l_q)[:, None] + (l_k - l_q)  # query i is token l_k − l_q + i
    return torch.arange(l_k)[None, :] <= i


def mask_top_left(l_q, l_k):  # PyTorch's is_causal alignment: wrong for a cache
    return torch.ones(l_q, l_k, dtype=torch.bool).tril()


def mask_strict(l_q, l_k):  # forgets that a token sees itself
    return torch.ones(l_q, l_k, dtype=torch.bool).tril(l_k - l_q - 1)


def test_causal_mask_right_answer_passes(capsys):
    assert ch06.check_causal_mask(mask_right)
    assert "all 5 checks pass" in capsys.readouterr().out


def test_causal_mask_top_left_alignment_is_caught_with_the_hint():
    report = ch06.check_causal_mask(mask_top_left, verbose=False)
    assert not report and report.n_passed == 2  # right only when l_q = l_k
    assert "✗ one new token after 7 cached ones" in str(report)
    assert "it sees every key" in str(report)


def test_causal_mask_without_the_diagonal_and_wrong_types_are_caught():
    report = ch06.check_causal_mask(mask_strict, verbose=False)
    assert report.n_passed == 0 and "diagonal included" in str(report)
    report = ch06.check_causal_mask(lambda l_q, l_k: mask_right(l_q, l_k).float(),
                                    verbose=False)
    assert not report and "dtype differs: expected torch.bool" in str(report)


def test_causal_mask_stub_is_reported():
    def todo(l_q, l_k):
        raise NotImplementedError

    assert "not implemented yet" in str(ch06.check_causal_mask(todo, verbose=False))


# --- 6.2 the KV-cache formula ----------------------------------------------------------------
def test_kv_cache_formula():
    n_layers, n_kv_heads, d_head, p, tokens = ch06.symbols()
    assert ch06.check_kv_cache_formula(2 * n_layers * n_kv_heads * d_head * p * tokens,
                                       verbose=False)
    forgot_values = ch06.check_kv_cache_formula(n_layers * n_kv_heads * d_head * p * tokens,
                                                verbose=False)
    assert not forgot_values and "differs from the expected result" in str(forgot_values)
    n_heads = ch06.sp.Symbol("n_heads", positive=True)
    query_heads = ch06.check_kv_cache_formula(2 * n_layers * n_heads * d_head * p * tokens,
                                              verbose=False)
    assert not query_heads and "not every query head" in str(query_heads)
    assert "no answer yet" in str(ch06.check_kv_cache_formula(..., verbose=False))


# --- 6.3 linear attention's recurrence ---------------------------------------------------------
def recurrence_right(q, k, v):
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
    S = torch.zeros(*q.shape[:2], q.shape[-1], v.shape[-1], dtype=q.dtype)
    z = torch.zeros(*q.shape[:2], q.shape[-1], dtype=q.dtype)
    ys = []
    for t in range(q.shape[2]):
        S = S + phi_k[:, :, t, :, None] * v[:, :, t, None, :]
        z = z + phi_k[:, :, t]
        num = torch.einsum("bhd,bhde->bhe", phi_q[:, :, t], S)
        ys.append(num / (phi_q[:, :, t] * z).sum(-1, keepdim=True))
    return torch.stack(ys, dim=2)


def recurrence_state_too_late(q, k, v):  # reads the state before adding token t
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
    S = torch.zeros(*q.shape[:2], q.shape[-1], v.shape[-1], dtype=q.dtype)
    z = torch.full((*q.shape[:2], q.shape[-1]), 1e-9, dtype=q.dtype)
    ys = []
    for t in range(q.shape[2]):
        num = torch.einsum("bhd,bhde->bhe", phi_q[:, :, t], S)
        ys.append(num / (phi_q[:, :, t] * z).sum(-1, keepdim=True))
        S = S + phi_k[:, :, t, :, None] * v[:, :, t, None, :]
        z = z + phi_k[:, :, t]
    return torch.stack(ys, dim=2)


def recurrence_softmax(q, k, v):  # ordinary causal softmax attention: not linear attention
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def test_linear_recurrence_right_answer_passes():
    assert ch06.check_linear_recurrence(recurrence_right, verbose=False)


def test_linear_recurrence_mistakes_are_caught():
    late = ch06.check_linear_recurrence(recurrence_state_too_late, verbose=False)
    assert not late and "after token t is added" in str(late)
    softmax = ch06.check_linear_recurrence(recurrence_softmax, verbose=False)
    assert softmax.n_passed == 1  # only the single token, where every attention returns v_0
    assert "✓ a single token" in str(softmax)


# --- 6.4 the Performer's error ---------------------------------------------------------------
def test_kernel_error_is_measured_and_falls_like_one_over_sqrt_m():
    ratio = ch06.kernel_error(256) / ch06.kernel_error(64)
    assert ratio == pytest.approx(0.5, rel=0.05)
    assert ch06.kernel_error(64) == pytest.approx(ch06.kernel_error(64))  # seeded
    assert ch06.check_performer_ratio(1 / math.sqrt(4), verbose=False)
    wrong = ch06.check_performer_ratio(0.25, verbose=False)  # 1/m, not 1/√m
    assert not wrong and "like 1/√m" in str(wrong)
    assert "no answer yet" in str(ch06.check_performer_ratio(..., verbose=False))


# --- graded cases: another draw with seed=, an instructor's own with cases= ----------------------
def test_graded_cases_are_another_draw_and_right_answers_still_pass():
    """--seed must change the hidden sizes and data; the book's cases stay the book's."""
    book, again = ch06._causal_mask_cases(), ch06._causal_mask_cases()
    assert [c.args for c in book] == [c.args for c in again]
    assert [c.args for c in book] != [c.args for c in ch06._causal_mask_cases(seed=4)]
    drawn = [c.args for s in range(1, 6) for c in ch06._causal_mask_cases(seed=s)]
    assert all(1 <= l_q <= l_k for l_q, l_k in drawn)  # a cache never has fewer keys than queries
    book_qkv = ch06._recurrence_cases()
    graded = ch06._recurrence_cases(seed=4)
    assert not any(torch.equal(a.args[2], b.args[2]) for a, b in zip(book_qkv, graded, strict=True))
    for seed in (1, 2, 3):
        assert ch06.check_causal_mask(mask_right, verbose=False, seed=seed)
        assert not ch06.check_causal_mask(mask_strict, verbose=False, seed=seed)
        assert ch06.check_linear_recurrence(recurrence_right, verbose=False, seed=seed)
        assert not ch06.check_linear_recurrence(recurrence_state_too_late, verbose=False,
                                                seed=seed)


def test_instructor_cases_replace_the_books():
    report = ch06.check_causal_mask(mask_right, verbose=False, cases=[Case("mine", (2, 9))])
    assert report and report.lines == ["✓ mine"]
    assert not ch06.check_causal_mask(mask_top_left, verbose=False, cases=[Case("mine", (2, 9))])


# --- what the learner reads, in full -------------------------------------------------------------
MASK_HINTS = ["with as many queries as keys it is the lower triangle, diagonal included.",
              "the newest token is the last one: it sees every key, itself included.",
              "query i is token l_k − l_q + i of the sequence: shift the diagonal by l_k − l_q "
              "(torch.tril's diagonal argument).", "", ""]
MASK_TITLE = "Exercise 6.1 (the causal mask of a cache)"


def mask_names(sizes):
    (a, _), (_, b), (q, k), _, (dq, dk) = sizes
    return [f"a whole sequence: l_q = l_k = {a}", f"one new token after {b - 1} cached ones: "
            f"l_q = 1, l_k = {b}", f"{q} new tokens after {k - q} cached: l_q = {q}, l_k = {k}",
            "a single token: l_q = l_k = 1", f"a longer prompt: l_q = {dq}, l_k = {dk}"]


BOOK_MASKS = [(5, 5), (1, 8), (3, 7), (1, 1), (16, 40)]


def _hinted(hint):
    return f" Hint: {hint}" if hint else ""


def mask_none(l_q, l_k):
    return torch.zeros(l_q, l_k, dtype=torch.bool)


def test_causal_mask_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 6.1: each book case's name (with its sizes),
    its hint (none for the last two), the default tolerance shown, the title."""
    lines = str(ch06.check_causal_mask(mask_none, verbose=False)).splitlines()
    assert len(lines) == 6
    wrong = [15, 8, 18, 1, 520]  # entries a right mask has True: l_q l_k − l_q(l_q − 1)/2
    for line, name, hint, n_true, (l_q, l_k) in zip(lines, mask_names(BOOK_MASKS), MASK_HINTS,
                                                     wrong, BOOK_MASKS, strict=False):
        assert line == (f"✗ {name}: values differ at {n_true} of {l_q * l_k} entries; first at "
                        "index (0, 0): expected True, got False (relative error 1.0e+00; "
                        f"tolerance rtol 1e-05, atol 1e-06).{_hinted(hint)}")
    assert lines[-1] == f"{MASK_TITLE}: 0 of 5 checks pass. Keep going."


@pytest.mark.parametrize(("learner", "failed"), [
    (mask_top_left, [1, 2, 4]),  # right only where l_q = l_k
    (mask_strict, [0, 1, 2, 3, 4]),
])
def test_causal_mask_mistakes_get_each_cases_hint(learner, failed):
    """Protects Exercise 6.1's feedback on the usual mistakes (written independently of the
    checker): PyTorch's top-left alignment fails exactly the cases with cached tokens, a mask
    without its diagonal every case, each with that case's own hint."""
    lines = str(ch06.check_causal_mask(learner, verbose=False)).splitlines()
    for i, (name, hint) in enumerate(zip(mask_names(BOOK_MASKS), MASK_HINTS, strict=True)):
        if i in failed:
            assert lines[i].startswith(f"✗ {name}: values differ at ")
            assert lines[i].endswith(f"tolerance rtol 1e-05, atol 1e-06).{_hinted(hint)}")
        else:
            assert lines[i] == f"✓ {name}"
    assert lines[-1] == f"{MASK_TITLE}: {5 - len(failed)} of 5 checks pass. Keep going."


def drawn_mask_sizes(seed):
    """The book's sizes redrawn as Exercise 6.1 says: l_q in 1..2 l_q, then as many cached
    tokens as the book's case has, up to twice as many plus one, in the order of the cases."""
    r = random.Random(seed)

    def sizes(l_q, l_k):
        new_q = r.randint(1, 2 * l_q)
        return new_q, new_q + r.randint(0, 2 * (l_k - l_q) + 1)

    a, b, c, d = sizes(5, 5)[0], sizes(1, 8)[1], sizes(3, 7), sizes(16, 40)
    return [(a, a), (1, b), c, (1, 1), d]


def test_graded_mask_cases_draw_every_size_in_their_ranges():
    """Protects the graded variants of Exercise 6.1: the book's sizes (5, 5), (1, 8), (3, 7),
    (1, 1), (16, 40) without a seed; with one (given, or the grader's), l_q redrawn in
    1..2 l_q and the cached tokens in 0..2(l_k − l_q) + 1, over their full ranges; the names
    give the sizes drawn, the hints stay."""
    book = ch06._causal_mask_cases()
    assert [c.args for c in book] == BOOK_MASKS
    assert [(c.name, c.hint) for c in book] == list(zip(mask_names(BOOK_MASKS), MASK_HINTS,
                                                        strict=True))
    seen = [set() for _ in range(6)]
    for seed in range(1, 400):
        cases = ch06._causal_mask_cases(seed)
        want = drawn_mask_sizes(seed)
        assert [c.args for c in cases] == want
        assert [(c.name, c.hint) for c in cases] == list(zip(mask_names(want), MASK_HINTS,
                                                             strict=True))
        (a, _), (_, b), (q, k), _, (dq, dk) = want
        for i, size in enumerate((a, b, q, k - q, dq, dk - dq)):
            seen[i].add(size)
    assert [(min(s), max(s)) for s in seen] == [(1, 10), (1, 17), (1, 6), (0, 9), (1, 32),
                                                (0, 49)]
    with grading_seed(4):
        assert [c.args for c in ch06._causal_mask_cases()] == drawn_mask_sizes(4)
        assert [c.args for c in ch06._causal_mask_cases(5)] == drawn_mask_sizes(5)


RECURRENCE = [  # (case name, hint, (b, h, l, d, d_v), scale of q and k)
    ("one head, l = 6, d = d_v = 4", "", (1, 1, 6, 4, 4), 1.0),
    ("batches and heads: (2, 3, 10, 4)",
     "keep the batch and head axes in front: S has shape (b, h, d, d_v).", (2, 3, 10, 4, 4), 1.0),
    ("values of another width: d = 3, d_v = 5", "the state is φ(k) v^T, a d × d_v matrix.",
     (1, 2, 8, 3, 5), 1.0),
    ("a single token", "after one token the output is v_0 itself: the state holds only it.",
     (1, 1, 1, 4, 4), 1.0),
    ("a long sequence, l = 200", "y_t must use the state after token t is added, not before.",
     (1, 1, 200, 4, 4), 0.5),
]
RECURRENCE_TITLE = "Exercise 6.3 (linear attention as a recurrence)"


def test_linear_recurrence_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 6.3: each book case's name, its hint (none for
    the first), the tolerance (rtol 1e-6, atol 1e-9), the title."""
    lines = str(ch06.check_linear_recurrence(lambda q, k, v: torch.zeros_like(v),
                                             verbose=False)).splitlines()
    assert len(lines) == 6
    for line, (name, hint, (b, h, l, _, d_v), _) in zip(lines, RECURRENCE, strict=False):
        n = b * h * l * d_v
        assert line.startswith(f"✗ {name}: values differ at {n} of {n} entries; first at index "
                               "(0, 0, 0, 0): expected ")
        assert line.endswith(f"(relative error 1.0e+00; tolerance rtol 1e-06, atol 1e-09)."
                             f"{_hinted(hint)}"), line
    assert lines[-1] == f"{RECURRENCE_TITLE}: 0 of 5 checks pass. Keep going."


def test_linear_recurrence_mistakes_get_each_cases_hint():
    """Protects Exercise 6.3's feedback: reading the state before token t is added (written
    independently of the checker) fails every case with that case's own hint; softmax attention
    passes only the single token."""
    lines = str(ch06.check_linear_recurrence(recurrence_state_too_late,
                                             verbose=False)).splitlines()
    for line, (name, hint, _, _) in zip(lines, RECURRENCE, strict=False):
        assert line.startswith(f"✗ {name}: values differ at ")
        assert line.endswith(f"tolerance rtol 1e-06, atol 1e-09).{_hinted(hint)}"), line
    assert lines[-1] == f"{RECURRENCE_TITLE}: 0 of 5 checks pass. Keep going."


def test_linear_recurrence_tolerance_just_inside_and_just_outside():
    """Protects Exercise 6.3's tolerance: rtol 1e-6, plus atol 1e-9 where the output is 0."""
    def scaled(factor):
        return lambda q, k, v: factor * recurrence_right(q, k, v)

    assert ch06.check_linear_recurrence(scaled(1 + 5e-7), verbose=False)
    assert not ch06.check_linear_recurrence(scaled(1 + 2e-6), verbose=False)
    zero = [Case("v = 0", tuple(torch.zeros(1, 1, 3, 2, dtype=torch.float64) for _ in "qkv"))]
    assert ch06.check_linear_recurrence(lambda q, k, v: v + 5e-10, verbose=False, cases=zero)
    assert not ch06.check_linear_recurrence(lambda q, k, v: v + 5e-9, verbose=False, cases=zero)


@pytest.mark.parametrize("seed", [None, 5])
def test_recurrence_cases_are_drawn_as_the_book_says(seed):
    """Protects Exercise 6.3's cases: case i draws q, k (times its scale), then v, in float64
    from the exercise's generator i (the book's, or mixed with a grading seed), of the sizes
    its name gives; each keeps its hint."""
    for i, (case, (name, hint, (b, h, l, d, d_v), scale)) in enumerate(
            zip(ch06._recurrence_cases(seed), RECURRENCE, strict=True)):
        g = case_generator(i, seed)
        want = [scale * torch.randn(b, h, l, d, generator=g, dtype=torch.float64),
                scale * torch.randn(b, h, l, d, generator=g, dtype=torch.float64),
                torch.randn(b, h, l, d_v, generator=g, dtype=torch.float64)]
        assert all(x.dtype == torch.float64 and torch.equal(x, y)
                   for x, y in zip(case.args, want, strict=True)), name
        assert (case.name, case.hint, case.kwargs) == (name, hint, {})


def _same_args(calls, cases):
    return len(calls) == len(cases) and all(
        torch.equal(torch.as_tensor(x), torch.as_tensor(y))
        for call, case in zip(calls, cases, strict=True)
        for x, y in zip(call, case.args, strict=True))


@pytest.mark.parametrize(("check", "cases", "right", "title"), [
    (ch06.check_causal_mask, ch06._causal_mask_cases, mask_right, MASK_TITLE),
    (ch06.check_linear_recurrence, ch06._recurrence_cases, recurrence_right, RECURRENCE_TITLE),
])
def test_checkers_print_by_default_pass_the_seed_on_and_use_instructor_cases(
        capsys, check, cases, right, title):
    """Protects the implement checkers' calling conventions: they print their report unless
    verbose=False, run the book's cases by default, the graded cases of their seed, and an
    instructor's cases instead of the book's."""
    learner = recorded(right)
    check(learner)
    assert capsys.readouterr().out == "".join(f"✓ {c.name}\n" for c in cases()) + (
        f"{title}: all 5 checks pass. Well done!\n")
    assert _same_args(learner.calls, cases())
    learner = recorded(right)
    assert check(learner, verbose=False, seed=3) and capsys.readouterr().out == ""
    assert _same_args(learner.calls, cases(3)) and not _same_args(learner.calls, cases())
    mine = Case("mine", cases(9)[2].args)
    learner = recorded(right)
    report = check(learner, verbose=False, cases=[mine])
    assert report and report.lines == ["✓ mine"] and _same_args(learner.calls, [mine])


KV_HINT = ("Hint: per token and per layer the cache keeps one key and one value for every K/V "
           "head (not every query head), each d_head numbers.")


def test_kv_cache_symbols_and_report_in_full(capsys):
    """Protects Exercise 6.2: the symbols a learner derives with (names in order, positive
    integers, so that e.g. sqrt(tokens²) is tokens), the case's name, where a wrong formula
    differs, the hint, the title; a formula in the learner's own symbols of the same names is
    read; printed unless verbose=False."""
    syms = ch06.symbols()
    assert [s.name for s in syms] == ["n_layers", "n_kv_heads", "d_head", "bytes_per_value",
                                      "tokens"]
    assert all(s.is_positive and s.is_integer for s in syms)
    n_layers, n_kv_heads, d_head, p, tokens = syms
    assert ch06.sp.sqrt(tokens**2) == tokens and (-1) ** (2 * n_layers) == 1
    mine = ch06.sp.symbols("n_layers n_kv_heads d_head bytes_per_value tokens")
    assert ch06.check_kv_cache_formula(2 * math.prod(mine), verbose=False)
    assert str(ch06.check_kv_cache_formula(n_layers * n_kv_heads * d_head * p * tokens,
                                           verbose=False)).splitlines() == [
        "✗ KV-cache bytes: differs from the expected result (at bytes_per_value = 4, d_head = 4, "
        f"n_kv_heads = 1, n_layers = 3, tokens = 5 yours is 240). {KV_HINT}",
        "Exercise 6.2 (derive): 0 of 1 checks pass. Keep going."]
    assert capsys.readouterr().out == ""
    ch06.check_kv_cache_formula(2 * n_layers * n_kv_heads * d_head * p * tokens)
    assert capsys.readouterr().out == ("✓ KV-cache bytes\nExercise 6.2 (derive): correct. "
                                       "Well done!\n")


def kernel_error_loop(n_features, n_seeds=128, d=16, seed=0):
    """Oracle: the RMS relative error of the estimate of exp(q·k), pair by pair and draw by
    draw, for 32 pairs of queries and keys of entries 0.1 N(0, 1) and the features of seeds
    1000, 1001, ..."""
    g = torch.Generator().manual_seed(seed)
    q = 0.1 * torch.randn(32, d, generator=g, dtype=torch.float64)
    k = 0.1 * torch.randn(32, d, generator=g, dtype=torch.float64)
    total = 0.0
    for s in range(n_seeds):
        estimate = softmax_kernel_estimate(q[:, None], k[:, None], n_features, 1000 + s,
                                           orthogonal=False)
        for i in range(32):
            exact = math.exp(float(q[i] @ k[i]))
            total += ((float(estimate[i, 0, 0]) - exact) / exact) ** 2
    return math.sqrt(total / (32 * n_seeds))


def test_kernel_error_is_the_rms_relative_error_of_the_books_draw():
    """Protects kernel_error: 32 pairs of small queries and keys (d = 16, seed 0 by default),
    independent features of seeds 1000 + s for n_seeds = 128 draws; it agrees with a loop over
    pairs and draws, and with the closed form of the positive features' variance,
    E[(estimate/exact − 1)²] = (exp(|q + k|²) − 1)/m, within the Monte Carlo error."""
    assert ch06.kernel_error(16, n_seeds=3, d=5, seed=2) == pytest.approx(
        kernel_error_loop(16, 3, 5, 2), rel=1e-12)
    assert ch06.kernel_error(64) == pytest.approx(kernel_error_loop(64), rel=1e-12)
    g = torch.Generator().manual_seed(0)
    q, k = (0.1 * torch.randn(32, 16, generator=g, dtype=torch.float64) for _ in "qk")
    theory = math.sqrt(float((torch.exp((q + k).square().sum(-1)) - 1).mean()) / 64)
    assert ch06.kernel_error(64) == pytest.approx(theory, rel=0.1)


RATIO = "error(4m) / error(m)"
PERFORMER_HINT = ("Hint: the estimate is an average of m independent terms: its variance falls "
                  "like 1/m, so its standard deviation like 1/√m.")


def test_performer_ratio_report_in_full(capsys, monkeypatch):
    """Protects Exercise 6.4: the measured ratio error(256)/error(64) (m = 64) with a tolerance
    of 10 % (just inside passes, just outside fails), too high or too low said without the
    value, the hint, the title; printed unless verbose=False."""
    ch06.check_performer_ratio(0.5)  # the real measurement: about 0.49
    assert capsys.readouterr().out == (f"✓ {RATIO}\nExercise 6.4 (predict, then measure): "
                                       "correct. Well done!\n")
    measured = {256: 0.03, 64: 0.08}  # a stand-in measurement: the ratio 0.375
    monkeypatch.setattr(ch06, "kernel_error", measured.__getitem__)
    assert ch06.check_performer_ratio(0.375 * 1.099, verbose=False)
    assert str(ch06.check_performer_ratio(0.375 * 1.101, verbose=False)).splitlines() == [
        f"✗ {RATIO}: your value is too high (tolerance: rtol 0.1). {PERFORMER_HINT}",
        "Exercise 6.4 (predict, then measure): 0 of 1 checks pass. Keep going."]
    assert ch06.check_performer_ratio(0.375 * 0.901, verbose=False)
    assert str(ch06.check_performer_ratio(0.375 * 0.899, verbose=False)).splitlines()[0] == (
        f"✗ {RATIO}: your value is too low (tolerance: rtol 0.1). {PERFORMER_HINT}")
    assert capsys.readouterr().out == ""
