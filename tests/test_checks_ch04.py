"""The Chapter 4 checkers: a correct answer passes, each kind of wrong one is caught and named,
the tolerances sit where they should, and graded cases are drawn as the book says."""

from __future__ import annotations

import math
import sys

import pytest
import sympy as sp
import torch

from sseq.checks import ch04


def zoh_right(A, B, dt):
    dtA = dt * A
    phi = torch.where(A == 0, dt * torch.ones_like(A), torch.expm1(dtA) / torch.where(A == 0, 1, A))
    return torch.exp(dtA), phi * B


def zoh_naive(A, B, dt):  # exp(x) - 1 and no A = 0 limit
    return torch.exp(dt * A), (torch.exp(dt * A) - 1) / A * B


def zoh_euler(A, B, dt):  # the wrong rule
    return 1 + dt * A, dt * B


def kernel_right(A_bar, B_bar, C, L):
    k = torch.arange(1, L, dtype=torch.float64)
    V = A_bar.unsqueeze(-1) ** k  # (..., n, L - 1)
    V = torch.cat([torch.ones_like(A_bar).unsqueeze(-1), V], dim=-1)  # λ^0 = 1, also for λ = 0
    return torch.einsum("...n,...nl->...l", C * B_bar, V)


def kernel_log(A_bar, B_bar, C, L):  # exp(k log λ) without the k = 0 care
    k = torch.arange(L, dtype=torch.float64)
    V = torch.exp(torch.log(A_bar).unsqueeze(-1) * k)
    return torch.einsum("...n,...nl->...l", C * B_bar, V)


def kernel_1d(A_bar, B_bar, C, L):  # sums over everything: no channels
    k = torch.arange(L, dtype=torch.float64)
    return ((C * B_bar).reshape(-1, 1) * A_bar.reshape(-1, 1) ** k).sum(0)


def test_zoh_right_answer_passes(capsys):
    assert ch04.check_zoh_diagonal(zoh_right)
    assert "all 5 checks pass" in capsys.readouterr().out


def test_zoh_right_answer_passes_graded_cases_too():
    for seed in (1, 2):
        assert ch04.check_zoh_diagonal(zoh_right, verbose=False, seed=seed)
    book, graded = ch04._zoh_cases(), ch04._zoh_cases(seed=1)
    assert not torch.equal(book[0].args[0], graded[0].args[0])
    assert not torch.equal(book[2].args[2], graded[2].args[2])


def test_zoh_tolerance_just_inside_and_just_outside():
    def scaled(factor):
        return lambda A, B, dt: tuple(m * factor for m in zoh_right(A, B, dt))

    assert ch04.check_zoh_diagonal(scaled(1 + 3e-10), verbose=False)
    assert not ch04.check_zoh_diagonal(scaled(1 + 3e-9), verbose=False)


def test_zoh_naive_answer_fails_on_the_edge_cases(capsys):
    report = ch04.check_zoh_diagonal(zoh_naive)
    out = capsys.readouterr().out
    assert not report and report.n_passed == 3
    assert "✗ A with a zero entry (an integrator): item 1: 1 of 2 entries are NaN" in out
    assert "Hint: this is (e^{ΔA} − 1)/A computed as written" in out
    assert "✗ tiny A (precision): item 1: values differ" in out and "torch.expm1" in out


def test_zoh_simplified_B_and_the_reference_are_named():
    report = ch04.check_zoh_diagonal(lambda A, B, dt: (torch.exp(dt * A), dt * B),
                                     verbose=False)
    assert "the simplified B_bar = ΔB" in str(report)
    from sseq import discretize

    report = ch04.check_zoh_diagonal(lambda A, B, dt: discretize.zoh(A, B, dt), verbose=False)
    assert not report and "calls sseq.discretize.zoh" in str(report)


def test_zoh_wrong_rule_is_caught():
    report = ch04.check_zoh_diagonal(zoh_euler, verbose=False)
    assert not report and all(line.startswith("✗") for line in report.lines[:4])
    assert "item 0: values differ" in report.lines[0] and "Euler's rule" in report.lines[0]


def test_zoh_unfinished_answer_is_reported(capsys):
    def todo(A, B, dt):
        raise NotImplementedError

    assert not ch04.check_zoh_diagonal(todo)
    assert "not implemented yet" in capsys.readouterr().out


def kernel_loop(A_bar, B_bar, C, L):  # right, but a Python loop over k
    columns, power = [], torch.ones_like(A_bar)
    for _ in range(L):
        columns.append((C * B_bar * power).sum(-1))
        power = power * A_bar
    return torch.stack(columns, -1)


def test_kernel_right_answer_passes():
    assert ch04.check_kernel(kernel_right, verbose=False)
    for seed in (1, 2):
        assert ch04.check_kernel(kernel_right, verbose=False, seed=seed)


def test_kernel_no_loop_over_k():
    report = ch04.check_kernel(kernel_loop, verbose=False)
    assert report.n_passed == 4
    assert report.lines[-1].startswith("✗ a long memory, |λ| = 0.999 and L = 2000: ran more "
                                       "than 200 lines of your Python")


def test_kernel_tolerance_just_inside_and_just_outside():
    assert ch04.check_kernel(lambda *a: kernel_right(*a) * (1 + 3e-8), verbose=False)
    assert not ch04.check_kernel(lambda *a: kernel_right(*a) * (1 + 3e-7), verbose=False)


def test_kernel_mistakes_are_caught_with_hints():
    report = ch04.check_kernel(kernel_log, verbose=False)
    assert not report and "✗ an eigenvalue equal to 0" in str(report)
    assert "Hint: this is λ^k as exp(k log λ)" in str(report)
    no_c = ch04.check_kernel(lambda A_bar, B_bar, C, L: kernel_right(A_bar, B_bar,
                                                                    torch.ones_like(C), L),
                             verbose=False)
    assert "the kernel without C" in str(no_c)
    report = ch04.check_kernel(kernel_1d, verbose=False)
    line = next(ln for ln in report.lines if "one SSM per channel" in ln)
    assert line.startswith("✗") and "shape differs: expected (3, 20), got (20,)" in line


def test_bilinear_derivation():
    a, dt = ch04.symbols()
    assert ch04.check_bilinear_scalar((2 + a * dt) / (2 - a * dt), verbose=False)
    wrong = ch04.check_bilinear_scalar(1 + a * dt, verbose=False)  # Euler's
    assert not wrong and "differs from the expected result" in str(wrong)
    assert "Hint: this is Euler's (forward) rule" in str(wrong)
    assert "upside down" in str(ch04.check_bilinear_scalar((2 - a * dt) / (2 + a * dt),
                                                           verbose=False))
    mine_a, mine_dt = sp.Symbol("a", real=True), sp.Symbol("Delta", positive=True)
    assert ch04.check_bilinear_scalar((1.0 + 0.5 * mine_dt * mine_a) / (1 - mine_dt * mine_a / 2),
                                      verbose=False)
    x_prev, x_next = sp.symbols("x_prev x_next")
    leftover = ch04.check_bilinear_scalar(x_next / x_prev, verbose=False)
    assert "contains x_next, x_prev" in str(leftover)
    assert "no answer yet" in str(ch04.check_bilinear_scalar(..., verbose=False))


def test_decay_length_is_measured_and_checked():
    assert ch04.decay_length(-0.5 + 3j * math.pi, 0.05) == pytest.approx(40.0, rel=1e-9)
    assert ch04.decay_length(-2.0, 0.01) == pytest.approx(50.0, rel=1e-9)
    assert ch04.check_decay_length(40, verbose=False)
    wrong = ch04.check_decay_length(1 / (0.05 * math.hypot(0.5, 3 * math.pi)), verbose=False)
    assert not wrong and "Re A" in str(wrong) and "Hint: this is 1/(Δ|A|)" in str(wrong)
    assert "40" not in str(wrong)
    assert ch04.check_decay_length(40 * 1.019, verbose=False)
    assert not ch04.check_decay_length(40 * 1.021, verbose=False)
    assert "no answer yet" in str(ch04.check_decay_length(..., verbose=False))


# --- what the learner reads, in full -------------------------------------------------------------
ZOH_NAMES = ["a stable complex A (n=5), Δ = 0.1", "random A and B, Δ = 0.5",
             "one Δ per channel: A (3, 4), Δ (3, 1)", "A with a zero entry (an integrator)",
             "tiny A (precision)"]
ZOH_HINTS = ["", "", "write it with elementwise operations, so Δ broadcasts against A.",
             "(e^{Δa} − 1)/a is 0/0 at a = 0; its limit is Δ. Use torch.where.",
             "exp(x) − 1 loses all digits for tiny x; torch.expm1(x) keeps them."]
ZOH_TOLERANCE = "tolerance rtol 1e-09, atol 1e-12"


def zoh_zero(A, B, dt):
    shape = torch.broadcast_shapes(A.shape, torch.as_tensor(dt).shape)
    return (torch.zeros(shape, dtype=torch.complex128),) * 2


def test_zoh_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 4.1: each book case's name, A_bar compared
    first (item 0) over all its entries (5, 6, 3×4, 2, 2), the tolerance (rtol 1e-9, atol
    1e-12), each case's hint in full (none on the first two), and the title."""
    lines = str(ch04.check_zoh_diagonal(zoh_zero, verbose=False)).splitlines()
    assert len(lines) == 6
    for line, name, m, hint in zip(lines, ZOH_NAMES, (5, 6, 12, 2, 2), ZOH_HINTS, strict=False):
        end = f"got 0+0j (relative error 1.0e+00; {ZOH_TOLERANCE})." + (
            f" Hint: {hint}" if hint else "")
        assert line.startswith(f"✗ {name}: item 0: values differ at {m} of {m} entries; "
                               "first at index (0") and line.endswith(end), line
    assert lines[0].startswith("✗ a stable complex A (n=5), Δ = 0.1: item 0: values differ at 5 "
                               "of 5 entries; first at index (0,): expected 0.99005+0j, got ")
    assert lines[-1] == "Exercise 4.1 (zero-order hold): 0 of 5 checks pass. Keep going."


def zoh_no_division(A, B, dt):  # B_bar = (e^{ΔA} − 1) B: the 1/A forgotten
    return torch.exp(A * dt), (torch.exp(A * dt) - 1) * B


@pytest.mark.parametrize(("learner", "failing", "item", "said"), [
    (zoh_euler, range(4), 0, "Euler's rule: zero-order hold is exact: A_bar = e^{ΔA}, not "
     "1 + ΔA."),
    (lambda A, B, dt: (torch.exp(A * dt), B * dt), range(4), 1, "the simplified B_bar = ΔB: Mamba "
     "uses it, but the exact zero-order hold is (e^{ΔA} − 1)/A · B."),
    (zoh_naive, range(3, 5), 1, "(e^{ΔA} − 1)/A computed as written: at A = 0 it is 0/0 (its "
     "limit is Δ), and for tiny A, exp(x) − 1 loses every digit: use torch.expm1 and "
     "torch.where."),
    (zoh_no_division, range(5), 1, "B_bar without the division by A: B_bar = (e^{ΔA} − 1)/A · "
     "B."),
])
def test_zoh_mistakes_are_explained_in_full_on_every_case(learner, failing, item, said):
    """Protects each recognised mistake of Exercise 4.1: a learner's answer with that mistake
    (written independently of the checker's) is caught, named and explained in full on each
    book case where the checker can tell it (Euler's rule and B_bar = ΔB in float64 are
    indistinguishable from float32 on the tiny A; the naive formula is right away from 0)."""
    lines = str(ch04.check_zoh_diagonal(learner, verbose=False)).splitlines()
    for i, (line, name) in enumerate(zip(lines, ZOH_NAMES, strict=False)):
        if i in failing:
            assert line.startswith(f"✗ {name}: item {item}: ") and line.endswith(
                f" Hint: this is {said}"), line
        elif learner is zoh_naive:
            assert line == f"✓ {name}"


def test_zoh_absolute_tolerance_just_inside_and_just_outside():
    """Protects Exercise 4.1's atol of 1e-12: where B = 0 (so B_bar = 0), an answer off by
    5e-13 passes and one off by 3e-12 does not."""
    from sseq.exercises import Case

    A = torch.tensor([-1.0 + 1j, -0.5], dtype=torch.complex128)
    case = Case("B = 0", (A, torch.zeros(2, dtype=torch.complex128), 0.1))
    for offset, ok in ((5e-13, True), (3e-12, False)):
        def answer(A, B, dt, o=offset):
            A_bar, B_bar = zoh_right(A, B, dt)
            return A_bar, B_bar + o
        assert bool(ch04.check_zoh_diagonal(answer, verbose=False, cases=[case])) is ok


def draw_complex(shape, book_seed, seed, scale=1.0):  # the exercise's complex draw, written out
    from sseq.exercises_cases import case_generator

    g = case_generator(book_seed, seed)
    real = torch.randn(shape, generator=g, dtype=torch.float64)
    return scale * (real + 1j * torch.randn(shape, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("seed", [None, 4])
def test_zoh_cases_are_drawn_as_the_book_says(seed):
    """Protects Exercise 4.1's cases: the book's stable A (real parts -0.1..-2, imaginary 0..9)
    with B = 1 and Δ = 0.1, or for a grading seed a stable A drawn (real part minus the modulus
    of one complex draw, imaginary part 3 times that of another) and Δ = 10^(-2u) per channel;
    random complex A and B (seeds 1, 2) at Δ = 0.5; (3, 4) ones (seeds 3, 4) with the per-channel
    Δ; the integrator and tiny-A cases fixed; all complex128, each with its hint."""
    from sseq.exercises_cases import case_generator

    cases = ch04._zoh_cases(seed)
    assert [c.name for c in cases] == ZOH_NAMES and [c.hint for c in cases] == ZOH_HINTS
    if seed is None:
        stable = torch.tensor([-0.1, -0.575 + 2.25j, -1.05 + 4.5j, -1.525 + 6.75j, -2 + 9j],
                              dtype=torch.complex128)
        dts = torch.tensor([[0.01], [0.1], [1.0]], dtype=torch.float64)
    else:
        stable = (-draw_complex(5, 10, seed).abs() + 3j * draw_complex(5, 11, seed).imag)
        u = torch.rand(3, 1, generator=case_generator(12, seed), dtype=torch.float64)
        dts = torch.pow(10.0, -2 * u)
    ones = torch.ones(5, dtype=torch.complex128)
    want = [(stable, ones, 0.1), (draw_complex(6, 1, seed), draw_complex(6, 2, seed), 0.5),
            (draw_complex((3, 4), 3, seed), draw_complex((3, 4), 4, seed), dts),
            (torch.tensor([0, -1 + 2j], dtype=torch.complex128), ones[:2], 0.3),
            (torch.tensor([1e-12, -3e-10 + 1e-11j], dtype=torch.complex128), ones[:2], 0.5)]
    for case, args in zip(cases, want, strict=True):
        for got, expected in zip(case.args, args, strict=True):
            if isinstance(expected, float):
                assert got == expected, case.name
            else:
                assert got.dtype == expected.dtype and got.shape == expected.shape, case.name
                assert torch.allclose(got, expected, rtol=1e-15, atol=1e-15), case.name


def test_graded_zoh_cases_are_stable_with_steps_between_001_and_1():
    """Protects the graded variants of Exercise 4.1: over many seeds the drawn A is always
    stable (real part < 0), its imaginary parts spread both ways, and the per-channel steps
    stay in [0.01, 1], reaching near both ends; the grader's grading_seed draws them too."""
    from sseq.exercises import grading_seed

    dts, imag = [], []
    for seed in range(1, 100):
        cases = ch04._zoh_cases(seed)
        assert (cases[0].args[0].real < 0).all()
        imag.append(cases[0].args[0].imag)
        dts.append(cases[2].args[2])
    dts, imag = torch.cat(dts), torch.cat(imag)
    assert 0.01 <= dts.min() < 0.012 and 0.9 < dts.max() <= 1
    assert imag.min() < -6 and imag.max() > 6
    with grading_seed(6):
        assert torch.equal(ch04._zoh_cases()[0].args[0], ch04._zoh_cases(6)[0].args[0])


def test_zoh_checker_prints_by_default_passes_the_seed_on_and_uses_instructor_cases(capsys):
    """Protects check_zoh_diagonal's calling conventions: it prints its report unless
    verbose=False, its seed selects the graded cases, and an instructor's cases replace the
    book's."""
    from sseq.exercises import Case

    ch04.check_zoh_diagonal(zoh_right)
    assert capsys.readouterr().out == "".join(f"✓ {name}\n" for name in ZOH_NAMES) + (
        "Exercise 4.1 (zero-order hold): all 5 checks pass. Well done!\n")
    graded = ch04.check_zoh_diagonal(zoh_zero, verbose=False, seed=3)
    assert capsys.readouterr().out == ""
    assert graded.lines[0].split(": item 0")[0] == f"✗ {ZOH_NAMES[0]}"
    assert "expected 0.99005+0j" not in graded.lines[0]
    mine = Case("mine", (torch.tensor([-2.0 + 0j]), torch.tensor([1.0 + 0j]), 0.2))
    report = ch04.check_zoh_diagonal(zoh_right, verbose=False, cases=[mine])
    assert report and report.lines == ["✓ mine"]
    assert not ch04.check_zoh_diagonal(zoh_euler, verbose=False, cases=[mine])
    square = Case("two channels of two modes", (torch.tensor(
        [[-1 + 2j, -0.5], [-2j, -3 + 1j]], dtype=torch.complex128), torch.ones(2, 2,
        dtype=torch.complex128), 0.1))  # (2, 2) is a batch of diagonals here, not a matrix
    assert ch04.check_zoh_diagonal(zoh_right, verbose=False, cases=[square])


# Exercise 4.2
KERNEL_NAMES = ["n = 4 modes, L = 10", "L = 1 (only K_0 = C·B_bar)",
                "one SSM per channel: (3, 4) → (3, 20)", "an eigenvalue equal to 0",
                "a long memory, |λ| = 0.999 and L = 2000"]
KERNEL_HINTS = ["", "", "sum over the last axis (the modes) only: einsum('...n,...nl->...l').",
                "λ⁰ = 1 even when λ = 0, but torch gives NaN for a complex 0**0 and for "
                "exp(0·log 0): set the k = 0 column to 1 yourself.",
                "build all the powers λ^k at once, without a loop over k."]
KERNEL_TOLERANCE = "tolerance rtol 1e-07, atol 1e-10"


def kernel_zero(A_bar, B_bar, C, L):
    return torch.zeros(*A_bar.shape[:-1], L, dtype=torch.complex128)


def test_kernel_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 4.2: each book case's name, all L entries
    compared (10, 1, 3×20, 5, 2000), the tolerance (rtol 1e-7, atol 1e-10), each case's hint
    in full (none on the first two), and the title."""
    lines = str(ch04.check_kernel(kernel_zero, verbose=False)).splitlines()
    assert len(lines) == 6
    for line, name, m, hint in zip(lines, KERNEL_NAMES, (10, 1, 60, 5, 2000), KERNEL_HINTS,
                                   strict=False):
        end = f"got 0+0j (relative error 1.0e+00; {KERNEL_TOLERANCE})." + (
            f" Hint: {hint}" if hint else "")
        assert line.startswith(f"✗ {name}: values differ at {m} of {m} entries; first at index "
                               "(0") and line.endswith(end), line
    assert lines[3].startswith("✗ an eigenvalue equal to 0: values differ at 5 of 5 entries; "
                               "first at index (0,): expected 2+0j, got ")
    assert lines[-1] == "Exercise 4.2 (the kernel): 0 of 5 checks pass. Keep going."


def kernel_without_c(A_bar, B_bar, C, L):
    return kernel_right(A_bar, B_bar, torch.ones_like(C), L)


def kernel_from_one(A_bar, B_bar, C, L):  # λ^1 ... λ^L
    return kernel_right(A_bar, A_bar * B_bar, C, L)


@pytest.mark.parametrize(("learner", "failing", "said"), [
    (kernel_without_c, (0, 1, 2, 4), "the kernel without C: K_k = Σ_n C_n B_bar_n λ_n^k: C "
     "weighs each mode."),
    (kernel_from_one, range(5), "powers starting at λ¹: the kernel starts at K_0 = C·B_bar "
     "(λ⁰ = 1)."),
    (kernel_log, (3,), "λ^k as exp(k log λ): at λ = 0 it gives NaN for k = 0: set that column "
     "to 1."),
])
def test_kernel_mistakes_are_explained_in_full_on_every_case(learner, failing, said):
    """Protects each recognised mistake of Exercise 4.2: a learner's answer with that mistake
    (written independently of the checker's) is caught, named and explained in full on every
    book case where it differs (C = 1 on the λ = 0 case; exp(k log λ) is right for λ ≠ 0), and
    passes the others."""
    lines = str(ch04.check_kernel(learner, verbose=False)).splitlines()
    for i, (line, name) in enumerate(zip(lines, KERNEL_NAMES, strict=False)):
        if i in failing:
            assert line.startswith(f"✗ {name}: ") and line.endswith(
                f" Hint: this is {said}"), line
        else:
            assert line == f"✓ {name}"


def test_kernel_absolute_tolerance_and_both_forbidden_functions():
    """Protects Exercise 4.2's atol of 1e-10 (where the kernel is zero, an answer off by 5e-11
    passes, by 3e-10 does not) and its guard: ssm.kernel and ssm.kernel_ref are both refused
    on every case."""
    from sseq import ssm
    from sseq.exercises import Case

    c128 = {"dtype": torch.complex128}
    zero = Case("C = 0", (torch.tensor([0.5], **c128), torch.ones(1, **c128),
                          torch.zeros(1, **c128), 4))
    for offset, ok in ((5e-11, True), (3e-10, False)):
        report = ch04.check_kernel(lambda *a, o=offset: kernel_right(*a) + o, verbose=False,
                                   cases=[zero])
        assert bool(report) is ok
    def calling(book):
        return lambda *a: getattr(ssm, book)(*a, diagonal=True)

    for book in ("kernel", "kernel_ref"):
        lines = str(ch04.check_kernel(calling(book), verbose=False)).splitlines()
        assert lines[:5] == [f"✗ {name}: calls sseq.ssm.{book}, the book's own implementation; "
                             "write your own." for name in KERNEL_NAMES]


def count_lines(fn, *args):  # line events of this file's Python while fn runs
    seen = [0]

    def local(frame, event, arg):
        seen[0] += event == "line"
        return local

    sys.settrace(lambda frame, event, arg: local if frame.f_code.co_filename == __file__
                 else None)
    try:
        fn(*args)
    finally:
        sys.settrace(None)
    return seen[0]


def test_kernel_line_limit_is_exactly_200_lines_on_the_long_case():
    """Protects the "no loop over k" rule of Exercise 4.2: on the L = 2000 case the learner's
    Python may run 200 lines (counted here independently, as line events of this file), not
    201; the message says so."""
    def padded(n, extra):
        def answer(A_bar, B_bar, C, L):
            if extra:
                extra_line = True  # noqa: F841
            for _ in range(n):
                pass
            return kernel_right(A_bar, B_bar, C, L)
        return answer

    case = ch04._kernel_cases()[4]
    answers = {count_lines(padded(n, extra), *case.args): padded(n, extra)
               for n in range(80, 110) for extra in (False, True)}
    assert ch04.check_kernel(answers[200], verbose=False)
    last = ch04.check_kernel(answers[201], verbose=False).lines[-1]
    assert last.startswith("✗ a long memory, |λ| = 0.999 and L = 2000: ran more than 200 lines "
                           "of your Python on this case")


@pytest.mark.parametrize("seed", [None, 8])
def test_kernel_cases_are_drawn_as_the_book_says(seed):
    """Protects Exercise 4.2's cases: four modes of modulus 0.95 (angles 0..3 in the book,
    π·u for a grading seed), B and C drawn complex (seeds 5, 6) for L = 10, 1 and, with
    |λ| = 0.999, 2000 (at most 200 lines of Python); per-channel modes 0.9·exp(0.1·z) (seed 7)
    with B, C (seeds 8, 9) for L = 20; the λ = 0 case fixed; each with its hint."""
    from sseq.exercises_cases import case_generator

    cases = ch04._kernel_cases(seed)
    assert [c.name for c in cases] == KERNEL_NAMES and [c.hint for c in cases] == KERNEL_HINTS
    assert [c.max_lines for c in cases] == [None] * 4 + [200]
    angles = (torch.linspace(0, 3, 4, dtype=torch.float64) if seed is None else math.pi
              * torch.rand(4, generator=case_generator(13, seed), dtype=torch.float64))
    lam = 0.95 * (torch.cos(angles) + 1j * torch.sin(angles))
    B, C = draw_complex(4, 5, seed), draw_complex(4, 6, seed)
    ones = torch.ones(2, dtype=torch.complex128)
    want = [(lam, B, C, 10), (lam, B, C, 1),
            (0.9 * torch.exp(draw_complex((3, 4), 7, seed, scale=0.1)),
             draw_complex((3, 4), 8, seed), draw_complex((3, 4), 9, seed), 20),
            (torch.tensor([0, 0.5j], dtype=torch.complex128), ones, ones, 5),
            (lam * 0.999 / 0.95, B, C, 2000)]
    for case, args in zip(cases, want, strict=True):
        assert case.args[3] == args[3], case.name
        for got, expected in zip(case.args[:3], args[:3], strict=True):
            assert got.dtype == torch.complex128 and got.shape == expected.shape, case.name
            assert torch.allclose(got, expected, rtol=1e-14, atol=1e-15), case.name


def test_kernel_checker_prints_by_default_passes_the_seed_on_and_uses_instructor_cases(capsys):
    """Protects check_kernel's calling conventions: it prints its report unless verbose=False,
    its seed (or the grader's grading_seed) selects the graded cases, and an instructor's cases
    replace the book's."""
    from sseq.exercises import Case, grading_seed

    ch04.check_kernel(kernel_right)
    assert capsys.readouterr().out == "".join(f"✓ {name}\n" for name in KERNEL_NAMES) + (
        "Exercise 4.2 (the kernel): all 5 checks pass. Well done!\n")
    graded = ch04.check_kernel(kernel_zero, verbose=False, seed=3)
    assert capsys.readouterr().out == ""
    assert "expected 2.53816-1.81086j" not in graded.lines[0]
    with grading_seed(3):
        assert ch04.check_kernel(kernel_zero, verbose=False).lines == graded.lines
    c128 = {"dtype": torch.complex128}
    mine = Case("mine", (torch.tensor([0.5 + 0.5j], **c128), torch.tensor([2], **c128),
                         torch.tensor([1 - 1j], **c128), 6))
    report = ch04.check_kernel(kernel_right, verbose=False, cases=[mine])
    assert report and report.lines == ["✓ mine"]
    assert not ch04.check_kernel(kernel_from_one, verbose=False, cases=[mine])
    square = Case("two channels of two modes", (torch.tensor(
        [[0.5 + 0.5j, -0.9], [0.1j, 0.7]], dtype=torch.complex128), torch.ones(2, 2,
        dtype=torch.complex128), torch.tensor([[1, 2j], [-1, 0.5]], dtype=torch.complex128), 7))
    assert ch04.check_kernel(kernel_right, verbose=False, cases=[square])  # diagonals, not A


# Exercise 4.3
BILINEAR_AT = ("✗ A_bar (bilinear): differs from the expected result (at Delta = 0.424, "
               "a = 1.548 yours is ")
AVERAGES = "the trapezoid averages x_k and x_{k−1}."


@pytest.mark.parametrize(("answer", "said"), [
    (lambda a, d: 1 + a * d, f"this is Euler's (forward) rule: {AVERAGES}"),
    (lambda a, d: 1 / (1 - a * d), f"this is the backward Euler rule: {AVERAGES}"),
    (lambda a, d: (2 - a * d) / (2 + a * d), "this is the bilinear rule upside down: solve for "
     "x_k, then divide by x_{k−1}."),
    (lambda a, d: sp.exp(a * d), "this is zero-order hold's e^{Δa}: the trapezoid rule gives a "
     "rational function of Δa that approximates it."),
    (lambda a, d: (1 + a * d) / (1 - a * d), "x_k − x_{k−1} = (Δ/2)·a·(x_k + x_{k−1}); solve "
     "for x_k and divide by x_{k−1}."),
])
def test_bilinear_feedback_in_full(answer, said):
    """Protects Exercise 4.3's feedback: each recognised rule (forward and backward Euler, the
    bilinear rule upside down, ZOH's exponential) named and explained in full, the exercise's
    hint otherwise, at the first point of the domain (a in (-3, 3), Δ in (0.01, 0.5)) that the
    checker draws; and the title."""
    a, d = sp.symbols("a Delta")  # the learner's own symbols
    lines = str(ch04.check_bilinear_scalar(answer(a, d), verbose=False)).splitlines()
    assert lines[0].startswith(BILINEAR_AT) and lines[0].endswith(f"). Hint: {said}"), lines[0]
    assert lines[1:] == ["Exercise 4.3 (derive): 0 of 1 checks pass. Keep going."]


def test_bilinear_symbols_and_printing(capsys):
    """Protects Exercise 4.3's symbols (a and Delta, plain sympy symbols) and its calling
    convention: one report, printed unless verbose=False."""
    a, dt = ch04.symbols()
    assert (a, dt) == sp.symbols("a Delta") and (a.name, dt.name) == ("a", "Delta")
    ch04.check_bilinear_scalar((1 + dt * a / 2) / (1 - dt * a / 2))
    assert capsys.readouterr().out == ("✓ A_bar (bilinear)\n"
                                       "Exercise 4.3 (derive): correct. Well done!\n")
    ch04.check_bilinear_scalar(a, verbose=False)
    assert capsys.readouterr().out == ""


# Exercise 4.4
DECAY = "✗ decay length (steps): your value is too "


def test_decay_length_matches_the_closed_form():
    """Protects decay_length: one ZOH mode's kernel is C·B_bar·e^{kΔA}, whose envelope shrinks
    by e every 1/(Δ|Re A|) steps, whatever the imaginary part, the step or the length L."""
    for A, dt, L in ((-0.5 + 3j * math.pi, 0.05, 4000), (-2.0, 0.01, 50), (-0.1 + 1j, 0.3, 7),
                     (-1.5 - 2j, 0.002, 300)):
        assert ch04.decay_length(A, dt, L) == pytest.approx(1 / (dt * abs(A.real)), rel=1e-9)
    assert ch04.decay_length(-0.25, 0.5) == pytest.approx(8.0, rel=1e-9)


def test_decay_length_report_in_full(capsys):
    """Protects what a learner reads for Exercise 4.4: too high or too low with the tolerance
    (rtol 0.02, around the closed form 40 steps, either way), never the answer, each recognised
    mistake (1/(Δ|A|), and 1/|Re A| = 2, a time) explained in full, the hint otherwise, the
    title; printed unless verbose=False."""
    def lines(prediction):
        return str(ch04.check_decay_length(prediction, verbose=False)).splitlines()

    hint = "Hint: |e^{kΔA}| = e^{kΔ·Re A}: only the real part of A sets the memory."
    assert lines(40 * 1.021) == [f"{DECAY}high (tolerance: rtol 0.02). {hint}",
                                 "Exercise 4.4 (predict, then measure): 0 of 1 checks pass. "
                                 "Keep going."]
    assert lines(40 * 0.979)[0] == f"{DECAY}low (tolerance: rtol 0.02). {hint}"
    assert ch04.check_decay_length(40 * 0.981, verbose=False)
    assert lines(1 / (0.05 * math.hypot(0.5, 3 * math.pi)))[0] == (
        f"{DECAY}low by a factor of 10 or more (tolerance: rtol 0.02). Hint: this is 1/(Δ|A|): "
        "|e^{kΔA}| = e^{kΔ·Re A}: the imaginary part only rotates.")
    assert lines(2.0)[0] == (
        f"{DECAY}low by a factor of 10 or more (tolerance: rtol 0.02). Hint: this is a length in "
        "time, not in steps: 1/|Re A| is a time; divide it by Δ to count steps.")
    assert capsys.readouterr().out == ""
    ch04.check_decay_length(40)
    assert capsys.readouterr().out == ("✓ decay length (steps)\n"
                                       "Exercise 4.4 (predict, then measure): correct. "
                                       "Well done!\n")
