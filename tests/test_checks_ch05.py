"""The Chapter 5 checkers: a correct answer passes, each kind of wrong one is caught."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from sseq.checks import ch05
from sseq.exercises import Case, case_generator
from tests.learners import recorded


def combine_right(first, second):
    (a1, b1), (a2, b2) = first, second
    return a2 * a1, a2 * b1 + b2


def combine_swapped(first, second):  # applies the second step first
    (a1, b1), (a2, b2) = first, second
    return a1 * a2, a1 * b2 + b1


def combine_sum(first, second):  # forgets that the later step multiplies b1
    (a1, b1), (a2, b2) = first, second
    return a1 * a2, b1 + b2


def test_combine_right_answer_passes(capsys):
    assert ch05.check_combine(combine_right)
    assert "all 5 checks pass" in capsys.readouterr().out


def test_combine_mistakes_are_caught_with_hints():
    report = ch05.check_combine(combine_swapped, verbose=False)
    assert not report and "the later step multiplies b₁" in str(report)
    report = ch05.check_combine(combine_sum, verbose=False)
    assert not report and report.lines[0].startswith("✗ two scalar steps")


def test_combine_unfinished_answer_is_reported():
    def todo(first, second):
        raise NotImplementedError

    assert "not implemented yet" in str(ch05.check_combine(todo, verbose=False))


def test_blelloch_work():
    assert ch05.check_blelloch_work(2 * 1023, verbose=False)
    assert not ch05.check_blelloch_work(2 * 999, verbose=False)  # forgot the padding
    wrong = ch05.check_blelloch_work(1000 * 10, verbose=False)  # Hillis–Steele's order
    assert not wrong and "padded to a power of two" in str(wrong)
    assert ch05.check_blelloch_work(2 * 7, l=8, verbose=False)
    assert "no answer yet" in str(ch05.check_blelloch_work(..., verbose=False))


def test_materialized_bytes():
    assert ch05.check_materialized_bytes(8 * 2048 * 1536 * 16 * 4, verbose=False)
    assert ch05.check_materialized_bytes(1.61e9, verbose=False)  # rounded is fine
    assert not ch05.check_materialized_bytes(8 * 2048 * 1536 * 16, verbose=False)  # numbers
    assert not ch05.check_materialized_bytes(1.5, verbose=False)  # GiB, not bytes


def step_right(h, u_t, dt_t, A, B_t, C_t):
    h = torch.exp(dt_t[..., None] * A) * h + (dt_t * u_t)[..., None] * B_t[:, None, :]
    return (h * C_t[:, None, :]).sum(-1), h


def step_zoh(h, u_t, dt_t, A, B_t, C_t):  # zero-order hold for B too: not Mamba's choice
    A_bar = torch.exp(dt_t[..., None] * A)
    h = A_bar * h + ((A_bar - 1) / A * u_t[..., None]) * B_t[:, None, :]
    return (h * C_t[:, None, :]).sum(-1), h


def step_read_before(h, u_t, dt_t, A, B_t, C_t):  # reads out the old state
    y = (h * C_t[:, None, :]).sum(-1)
    return y, torch.exp(dt_t[..., None] * A) * h + (dt_t * u_t)[..., None] * B_t[:, None, :]


def test_selective_step():
    assert ch05.check_selective_step(step_right, verbose=False)
    report = ch05.check_selective_step(step_zoh, verbose=False)
    assert not report and "Euler" in str(report)
    report = ch05.check_selective_step(step_read_before, verbose=False)
    assert not report and "read out after the update" in str(report)


# --- graded cases: another draw with seed=, an instructor's own with cases= ----------------------
def _same(cases_a, cases_b):
    flat = lambda c: [t for arg in c.args for t in (arg if isinstance(arg, tuple) else (arg,))]  # noqa: E731
    return [all(torch.equal(torch.as_tensor(x), torch.as_tensor(y))
                for x, y in zip(flat(a), flat(b), strict=True))
            for a, b in zip(cases_a, cases_b, strict=True)]


def test_graded_cases_are_another_draw_and_right_answers_still_pass():
    """--seed must change the hidden data (not the book's, which anyone can read) and keep the
    book's cases fixed from run to run; a right answer passes every draw, a wrong one none."""
    for cases in (ch05._combine_cases, ch05._step_cases):
        assert all(_same(cases(), cases()))
        graded = _same(cases(), cases(seed=11))
        assert not all(graded) and graded.count(False) >= 2
    for seed in (1, 2, 3):
        assert ch05.check_combine(combine_right, verbose=False, seed=seed)
        assert not ch05.check_combine(combine_swapped, verbose=False, seed=seed)
        assert ch05.check_selective_step(step_right, verbose=False, seed=seed)
        assert not ch05.check_selective_step(step_zoh, verbose=False, seed=seed)


def test_instructor_cases_replace_the_books():
    mine = [Case("mine", ((0.25, 2.0), (4.0, 1.0)))]
    report = ch05.check_combine(combine_right, verbose=False, cases=mine)
    assert report and report.lines == ["✓ mine"]
    assert not ch05.check_combine(combine_sum, verbose=False, cases=mine)


# --- what the learner reads, in full -------------------------------------------------------------
COMBINE_LINES = [  # (case name, the case's hint) of the book's cases
    ("two scalar steps", "apply (a₁, b₁) first: h ↦ a₂(a₁h + b₁) + b₂."),
    ("tensors of shape (3, 4)", "everything is elementwise: * and +, no matrix products."),
    ("the order matters: (a₁, b₁) first",
     "(a₁, b₁) • (a₂, b₂) ≠ (a₂, b₂) • (a₁, b₁): the later step multiplies b₁."),
    ("with the identity step (1, 0) first", ""),
    ("broadcasting a (3, 1) against (3, 4)", ""),
]
COMBINE_TITLE = "Exercise 5.1 (the associative operator)"
STEP_LINES = [
    ("b=2, d=3, n=4, Δ about 0.1",
     "A_bar = exp(Δ A) has shape (b, d, n): Δ (b, d) times A (d, n)."),
    ("a large step, Δ about 2", "B is discretized by Euler, Δ·B·u — not by zero-order hold."),
    ("from a zero state", "y_t = Σ_n C_t[n] h_t[d, n], read out after the update."),
]
STEP_TITLE = "Exercise 5.4 (one selective step)"


def _hinted(hint):
    return f" Hint: {hint}" if hint else ""


def combine_zero(first, second):  # broadcasts like the answer, every value 0
    (a1, b1), (a2, b2) = first, second
    return 0 * a1 * a2, 0 * b1 * b2


def step_zero(h, u_t, dt_t, A, B_t, C_t):
    return torch.zeros_like(u_t), torch.zeros_like(h)


def test_combine_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 5.1: each book case's name, its hint (none for
    the last two), the tolerance (rtol 1e-12, atol 1e-12), and the verdict under the title."""
    lines = str(ch05.check_combine(combine_zero, verbose=False)).splitlines()
    assert len(lines) == 6
    assert lines[0] == ("✗ two scalar steps: item 0: expected 1, got 0 (relative error 1.0e+00; "
                        "tolerance rtol 1e-12, atol 1e-12). Hint: apply (a₁, b₁) first: "
                        "h ↦ a₂(a₁h + b₁) + b₂.")
    for line, (name, hint) in zip(lines[1:], COMBINE_LINES[1:], strict=False):
        assert line.startswith(f"✗ {name}: item 0: values differ at 12 of 12 entries; ")
        assert line.endswith("(relative error 1.0e+00; tolerance rtol 1e-12, atol 1e-12)."
                             + _hinted(hint)), line
    assert lines[-1] == f"{COMBINE_TITLE}: 0 of 5 checks pass. Keep going."


def test_step_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 5.4: each book case's name, its hint, the
    tolerance (rtol 1e-10, atol 1e-12), and the verdict under the title."""
    lines = str(ch05.check_selective_step(step_zero, verbose=False)).splitlines()
    assert len(lines) == 4
    for line, (name, hint) in zip(lines, STEP_LINES, strict=False):
        assert line.startswith(f"✗ {name}: item 0: values differ at 6 of 6 entries; ")
        assert line.endswith("(relative error 1.0e+00; tolerance rtol 1e-10, atol 1e-12). "
                             f"Hint: {hint}"), line
    assert lines[-1] == f"{STEP_TITLE}: 0 of 3 checks pass. Keep going."


@pytest.mark.parametrize(("learner", "failed"), [
    (combine_swapped, [0, 1, 2, 4]),  # right on the identity step: (1, 0) commutes with all
    (combine_sum, [0, 1, 2, 4]),      # right where a₂ = 1
])
def test_combine_mistakes_get_each_cases_hint(learner, failed):
    """Protects Exercise 5.1's feedback on the usual mistakes (written independently of the
    checker): applying the second step first, or adding the offsets, fails exactly the cases
    that can tell it apart, each with the values shown and that case's own hint."""
    lines = str(ch05.check_combine(learner, verbose=False)).splitlines()
    for i, (name, hint) in enumerate(COMBINE_LINES):
        if i in failed:
            assert lines[i].startswith(f"✗ {name}: item 1: ") and "expected " in lines[i]
            assert lines[i].endswith("tolerance rtol 1e-12, atol 1e-12)." + _hinted(hint))
        else:
            assert lines[i] == f"✓ {name}"
    assert lines[-1] == f"{COMBINE_TITLE}: 1 of 5 checks pass. Keep going."


def step_loop(h, u_t, dt_t, A, B_t, C_t):  # oracle: one number at a time, in float64
    b, d, n = h.shape
    h_new, y = torch.empty_like(h), torch.zeros_like(u_t)
    for i, j, k in itertools.product(range(b), range(d), range(n)):
        dt = float(dt_t[i, j])
        h_new[i, j, k] = (math.exp(dt * float(A[j, k])) * float(h[i, j, k])
                          + dt * float(u_t[i, j]) * float(B_t[i, k]))
        y[i, j] += float(C_t[i, k]) * float(h_new[i, j, k])
    return y, h_new


@pytest.mark.parametrize(("learner", "item"), [(step_zoh, 0), (step_read_before, 0)])
def test_step_mistakes_get_each_cases_hint_on_every_case(learner, item):
    """Protects Exercise 5.4's feedback: zero-order hold for B, or reading y out before the
    update (answers written independently of the checker), fail on every book case, the
    output y named first, with that case's own hint."""
    lines = str(ch05.check_selective_step(learner, verbose=False)).splitlines()
    for line, (name, hint) in zip(lines, STEP_LINES, strict=False):
        assert line.startswith(f"✗ {name}: item {item}: values differ at ")
        assert line.endswith(f"tolerance rtol 1e-10, atol 1e-12). Hint: {hint}"), line
    assert lines[-1] == f"{STEP_TITLE}: 0 of 3 checks pass. Keep going."


def test_tolerances_just_inside_and_just_outside():
    """Protects each exercise's tolerance: 5.1 at rtol 1e-12 (+ atol 1e-12), 5.4 at rtol
    1e-10 (+ atol 1e-12), the count of 5.2 within 0.5 of 2046, the bytes of 5.3 within 1 %."""
    def scaled(right, factor):
        return lambda *args: tuple(factor * x for x in right(*args))

    assert ch05.check_combine(scaled(combine_right, 1 + 5e-13), verbose=False)
    assert not ch05.check_combine(scaled(combine_right, 1 + 1e-11), verbose=False)
    assert ch05.check_selective_step(scaled(step_right, 1 + 5e-11), verbose=False)
    assert not ch05.check_selective_step(scaled(step_right, 1 + 1e-9), verbose=False)
    assert ch05.check_blelloch_work(2046.5, verbose=False)
    assert ch05.check_blelloch_work(2045.5, verbose=False)
    assert not ch05.check_blelloch_work(2046.6, verbose=False)
    assert not ch05.check_blelloch_work(2045.4, verbose=False)
    exact = 8 * 2048 * 1536 * 16 * 4
    assert ch05.check_materialized_bytes(exact * 1.0099, verbose=False)
    assert ch05.check_materialized_bytes(exact * 0.9901, verbose=False)
    assert not ch05.check_materialized_bytes(exact * 1.0101, verbose=False)
    assert not ch05.check_materialized_bytes(exact * 0.9899, verbose=False)


def test_combine_tolerance_has_an_absolute_part():
    """Protects 5.1's atol 1e-12: an offset of 5e-13 where the expected value is 0 passes, one of
    5e-12 does not (the relative part alone would fail both)."""
    zero_b = [Case("b = 0", ((2.0, 0.0), (3.0, 0.0)))]

    def off(eps):
        return lambda first, second: (first[0] * second[0], eps)

    assert ch05.check_combine(off(5e-13), verbose=False, cases=zero_b)
    assert not ch05.check_combine(off(5e-12), verbose=False, cases=zero_b)


PADDED = ("Hint: the length is first padded to a power of two n; the up-sweep and the down-sweep "
          "each combine n − 1 times.")


def test_blelloch_work_report_in_full(capsys):
    """Protects Exercise 5.2: the count for any length l (closed form 2(n − 1), n the next power
    of two), the default l = 1000, the case's name with l, the tolerance, the hint, the title;
    printed unless verbose=False."""
    for l in (1, 2, 3, 5, 8, 9, 100, 1025):
        n = 2 ** math.ceil(math.log2(l))
        assert ch05.check_blelloch_work(2 * (n - 1), l=l, verbose=False)
        assert not ch05.check_blelloch_work(2 * (n - 1) + 1, l=l, verbose=False)
    assert str(ch05.check_blelloch_work(2 * 999, verbose=False)).splitlines() == [
        f"✗ combines for l = 1000: your value is too low (tolerance: atol 0.5). {PADDED}",
        "Exercise 5.2 (predict, then count): 0 of 1 checks pass. Keep going."]
    assert str(ch05.check_blelloch_work(100, l=9, verbose=False)).splitlines()[0] == (
        f"✗ combines for l = 9: your value is too high by a factor of 2 or more (tolerance: "
        f"atol 0.5). {PADDED}")
    assert capsys.readouterr().out == ""
    ch05.check_blelloch_work(2046)
    assert capsys.readouterr().out == ("✓ combines for l = 1000\nExercise 5.2 (predict, then "
                                       "count): correct. Well done!\n")


def test_materialized_bytes_report_in_full(capsys):
    """Protects Exercise 5.3: the bytes of a float32 (8, 2048, 1536, 16) tensor, the case's name,
    the tolerance, the hint, the title; never the expected value; printed unless
    verbose=False."""
    gib = 8 * 2048 * 1536 * 16 * 4 / 2**30  # 1.5 GiB: the unit, not the bytes
    assert str(ch05.check_materialized_bytes(gib, verbose=False)).splitlines() == [
        "✗ bytes of the states (b, l, d, n), float32: your value is too low by a factor of 10 or "
        "more (tolerance: rtol 0.01). Hint: b·l·d·n numbers of 4 bytes each; a GiB is 2³⁰ bytes, "
        "a GB 10⁹.",
        "Exercise 5.3 (predict the bytes): 0 of 1 checks pass. Keep going."]
    assert "no answer yet" in str(ch05.check_materialized_bytes(None, verbose=False))
    assert capsys.readouterr().out == ""
    ch05.check_materialized_bytes(1.61e9)
    assert capsys.readouterr().out == ("✓ bytes of the states (b, l, d, n), float32\nExercise "
                                       "5.3 (predict the bytes): correct. Well done!\n")


def _uniform(seed, grading, shape, low=-1.0, high=1.0):
    g = case_generator(seed, grading)
    return low + (high - low) * torch.rand(shape, generator=g, dtype=torch.float64)


def _equal(got, want):
    if isinstance(want, tuple):
        return len(got) == len(want) and all(map(_equal, got, want))
    return type(got) is type(want) and (got == want if isinstance(want, float)
                                        else got.dtype == want.dtype and torch.equal(got, want))


@pytest.mark.parametrize("seed", [None, 5])
def test_combine_cases_are_drawn_as_the_book_says(seed):
    """Protects Exercise 5.1's cases: a₁, b₁, a₂, b₂ of shape (3, 4) drawn uniformly in [-1, 1)
    in float64 from the exercise's generators 0, 1, 2, 3 (the book's, or mixed with a grading
    seed), arranged as the case names say; each case keeps its hint."""
    a1, b1, a2, b2 = (_uniform(s, seed, (3, 4)) for s in range(4))
    ones, zeros = torch.ones(3, 4, dtype=torch.float64), torch.zeros(3, 4, dtype=torch.float64)
    want = [((0.5, 1.0), (2.0, -3.0)), ((a1, b1), (a2, b2)), ((a2, b2), (a1, b1)),
            ((ones, zeros), (a1, b1)), ((a1[:, :1], b1), (a2, b2[:, :1]))]
    cases = ch05._combine_cases(seed)
    assert [(c.name, c.hint) for c in cases] == COMBINE_LINES
    for case, args in zip(cases, want, strict=True):
        assert _equal(case.args, args) and case.kwargs == {}, case.name
    assert -1 <= float(torch.stack([a1, b1, a2, b2]).min()) < -0.5 < 0.5 < float(
        torch.stack([a1, b1, a2, b2]).max()) < 1


@pytest.mark.parametrize("seed", [None, 5])
def test_step_cases_are_drawn_as_the_book_says(seed):
    """Protects Exercise 5.4's cases: b=2, d=3, n=4, A the S4D-Real -1, -2, -3, -4 in each
    channel; case s (0, 10, 20) draws h, u, Δ, B, C from the generators s, s + 1, s + 2, s + 3,
    s + 4 (the book's, or mixed with a grading seed), uniformly in [-1, 1) except Δ, in
    [0.5, 1) times 0.1, 2 or 0.5; the last case starts from a zero state."""
    A = -torch.tensor([[1.0, 2.0, 3.0, 4.0]] * 3, dtype=torch.float64)
    for (s, dt), case, (name, hint) in zip(((0, 0.1), (10, 2.0), (20, 0.5)),
                                           ch05._step_cases(seed), STEP_LINES, strict=True):
        h, u, B, C = (_uniform(s + k, seed, shape)
                      for k, shape in ((0, (2, 3, 4)), (1, (2, 3)), (3, (2, 4)), (4, (2, 4))))
        if s == 20:
            h = torch.zeros(2, 3, 4, dtype=torch.float64)
        dt_t = dt * _uniform(s + 2, seed, (2, 3), 0.5, 1.0)
        assert _equal(case.args, (h, u, dt_t, A, B, C)), name
        assert (case.name, case.hint, case.kwargs) == (name, hint, {})
        assert dt * 0.5 <= float(dt_t.min()) and float(dt_t.max()) < dt


@pytest.mark.parametrize(("check", "cases", "right", "title", "n"), [
    (ch05.check_combine, ch05._combine_cases, combine_right, COMBINE_TITLE, 5),
    (ch05.check_selective_step, ch05._step_cases, step_loop, STEP_TITLE, 3),
])
def test_checkers_print_by_default_pass_the_seed_on_and_use_instructor_cases(
        capsys, check, cases, right, title, n):
    """Protects the implement checkers' calling conventions: they print their report unless
    verbose=False, run the book's cases by default, the graded cases of their seed, and an
    instructor's cases instead of the book's."""
    learner = recorded(right)
    check(learner)
    assert capsys.readouterr().out == "".join(f"✓ {c.name}\n" for c in cases()) + (
        f"{title}: all {n} checks pass. Well done!\n")
    assert all(map(_equal, learner.calls, [c.args for c in cases()]))
    learner = recorded(right)
    assert check(learner, verbose=False, seed=3) and capsys.readouterr().out == ""
    assert all(map(_equal, learner.calls, [c.args for c in cases(3)]))
    assert not _equal(learner.calls[1], cases()[1].args)
    mine = Case("mine", cases(9)[1].args)
    learner = recorded(right)
    report = check(learner, verbose=False, cases=[mine])
    assert report and report.lines == ["✓ mine"] and _equal(learner.calls[0], mine.args)
