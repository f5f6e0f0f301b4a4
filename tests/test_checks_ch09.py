"""The Chapter 9 checkers: a correct answer passes (book and graded cases), each named mistake
is caught and recognised."""

from __future__ import annotations

import math

import pytest
import torch

from sseq.checks import ch09


def addressing_right(memory, key, beta):
    cos = torch.nn.functional.cosine_similarity(memory, key[:, None, :], dim=-1, eps=1e-30)
    return torch.softmax(beta[:, None] * cos, dim=-1)


def addressing_dot(memory, key, beta):
    return torch.softmax(beta[:, None] * (memory @ key[:, :, None])[..., 0], dim=-1)


def rag_right(scores, logprobs):
    return torch.logsumexp(torch.log_softmax(scores, -1) + logprobs.sum(-1), dim=-1)


def rag_naive(scores, logprobs):  # probabilities: underflows on the long answer
    prior = torch.softmax(scores, -1)
    return torch.log((prior * logprobs.exp().prod(-1)).sum(-1))


def drops_right(expert, n_experts, capacity_factor):
    cap = math.ceil(capacity_factor * len(expert) / n_experts)
    onehot = torch.nn.functional.one_hot(expert, n_experts)
    return (onehot.cumsum(0) * onehot).sum(-1) > cap


def drops_loop(expert, n_experts, capacity_factor):
    cap, load, out = math.ceil(capacity_factor * len(expert) / n_experts), {}, []
    for e in expert.tolist():
        load[e] = load.get(e, 0) + 1
        out.append(load[e] > cap)
    return torch.tensor(out)


def test_right_answers_pass_book_and_graded_cases(capsys):
    for check, fn in ((ch09.check_content_addressing, addressing_right),
                      (ch09.check_rag_marginal, rag_right),
                      (ch09.check_switch_drops, drops_right),
                      (ch09.check_switch_drops, drops_loop)):
        assert check(fn)
        assert "checks pass" in capsys.readouterr().out
        for seed in (1, 2):
            assert check(fn, verbose=False, seed=seed)


def test_addressing_accepts_any_small_epsilon_in_the_cosine():
    # the statement allows cos = k·M(i) / (‖k‖ ‖M(i)‖ + ε) with a small ε; 1e-6 shifts the
    # answers by ~1e-4 relative on the book's cases, and must still pass
    for eps in (1e-8, 1e-6):
        def answer(memory, key, beta, eps=eps):
            dot = (memory @ key[:, :, None])[..., 0]
            cos = dot / (memory.norm(dim=-1) * key.norm(dim=-1, keepdim=True) + eps)
            return torch.softmax(beta[:, None] * cos, dim=-1)
        for seed in (None, 1, 2):
            assert ch09.check_content_addressing(answer, verbose=False, seed=seed), eps


def test_graded_cases_differ_from_the_book_cases():
    book, graded = ch09._addressing_cases(), ch09._addressing_cases(seed=1)
    assert not torch.equal(book[0].args[0], graded[0].args[0])
    book, graded = ch09._rag_cases(), ch09._rag_cases(seed=3)
    assert not torch.equal(book[0].args[1], graded[0].args[1])
    book, graded = ch09._switch_cases(), ch09._switch_cases(seed=3)
    assert not torch.equal(book[3].args[0], graded[3].args[0])


def test_mistakes_fail_and_are_named(capsys):
    assert not ch09.check_content_addressing(addressing_dot)
    assert "a softmax of dot products" in capsys.readouterr().out
    assert not ch09.check_rag_marginal(rag_naive)
    out = capsys.readouterr().out
    assert "long answer" in out
    for mistake in ch09.RAG_MISTAKES + ch09.SWITCH_MISTAKES + ch09.ADDRESSING_MISTAKES:
        check = (ch09.check_rag_marginal if mistake in ch09.RAG_MISTAKES else
                 ch09.check_switch_drops if mistake in ch09.SWITCH_MISTAKES else
                 ch09.check_content_addressing)
        assert not check(mistake.answer)
        assert mistake.name in capsys.readouterr().out, mistake.name


def test_an_instructor_can_pass_their_own_cases():
    cases = ch09._switch_cases()[:1]
    assert ch09.check_switch_drops(drops_right, verbose=False, cases=cases)


# --- what the learner reads, in full -------------------------------------------------------------
ADDRESSING_LINES = [  # (case name, the case's hint) of the book's cases
    ("2 memories of 6 slots × 4, β = 1 and 5", ""),
    ("β = 0: every slot equally likely", "with β = 0 the weighting is uniform, whatever the key."),
    ("slots of very different lengths", "the similarity is a cosine: divide the dot product by "
     "both lengths, so a long slot is not preferred for its length."),
    ("a key equal to a slot, β = 20",
     "the slot the key equals has cosine 1: the weighting should peak there."),
    ("a batch of 8, 32 slots × 16",
     "no loop over slots: the dot products are one batched matrix product."),
]
RAG_LINES = [
    ("one question, 3 documents, a 4-token answer", ""),
    ("one document: the plain likelihood",
     "with one document p(z | x) = 1 and the answer is Σ_t log p(y_t | x, z)."),
    ("equal scores: the average over documents",
     "the scores are logits: p(z | x) = softmax(scores), here 1/k each."),
    ("a long answer (precision)", "a product of 400 probabilities underflows: stay in log space "
     "and use torch.logsumexp."),
]
SWITCH_LINES = [
    ("the chapter's example: 8 tokens, 2 experts, factor 1",
     "capacity = ⌈1.0 · 8 / 2⌉ = 4: expert 0 takes its first 4 tokens."),
    ("capacity factor 1.5 rounds up", "capacity = ⌈1.5 · 10 / 4⌉ = ⌈3.75⌉ = 4 (math.ceil)."),
    ("a large factor drops nothing", ""),
    ("first come, first served",
     "the tokens an expert keeps are the first ones routed to it, in token order."),
    ("all tokens to one expert", ""),
]
TITLES = {"addressing": "Exercise 9.1 (content-based addressing)",
          "rag": "Exercise 9.2 (the RAG marginal)",
          "switch": "Exercise 9.3 (the tokens a Switch layer drops)"}


def _hinted(hint):
    return f" Hint: {hint}" if hint else ""


def test_addressing_and_rag_reports_name_every_case_its_hint_and_the_tolerance_in_full():
    """Protects what a learner reads for Exercises 9.1 and 9.2: each book case's name, its hint,
    the tolerances (9.1: rtol 1e-4, atol 1e-9; 9.2: rtol 1e-9, atol 1e-9), and the verdict
    under the exercise's title."""
    def zeros(*args):  # a wrong answer that matches no named mistake
        return torch.zeros(args[0].shape[:-1] if args[0].dim() == 3 else args[0].shape[:1],
                           dtype=torch.float64)

    for check, expected, tolerance, title in (
            (ch09.check_content_addressing, ADDRESSING_LINES, "rtol 0.0001, atol 1e-09",
             TITLES["addressing"]),
            (ch09.check_rag_marginal, RAG_LINES, "rtol 1e-09, atol 1e-09", TITLES["rag"])):
        lines = str(check(zeros, verbose=False)).splitlines()
        assert len(lines) == len(expected) + 1
        for line, (name, hint) in zip(lines, expected, strict=False):
            assert line.startswith(f"✗ {name}: values differ at ") and line.endswith(
                f"(relative error 1.0e+00; tolerance {tolerance}).{_hinted(hint)}"), line
        assert lines[-1] == f"{title}: 0 of {len(expected)} checks pass. Keep going."


def test_switch_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 9.3: each book case's name and hint (shown
    for an answer of the wrong length), the exact comparison of the booleans, and the title."""
    def one_too_many(expert, n_experts, capacity_factor):
        return torch.zeros(len(expert) + 1, dtype=torch.bool)

    lines = str(ch09.check_switch_drops(one_too_many, verbose=False)).splitlines()
    sizes = (8, 10, 12, 64, 9)
    assert lines[:-1] == [f"✗ {name}: shape differs: expected ({t},), got ({t + 1},).{_hinted(h)}"
                          for (name, h), t in zip(SWITCH_LINES, sizes, strict=True)]
    assert lines[-1] == f"{TITLES['switch']}: 0 of 5 checks pass. Keep going."
    first = str(ch09.check_switch_drops(lambda e, n, f: torch.ones(len(e), dtype=torch.bool),
                                        verbose=False)).splitlines()[0]
    assert first == (f"✗ {SWITCH_LINES[0][0]}: values differ at 6 of 8 entries; first at index "
                     "(0,): expected False, got True (relative error 1.0e+00; tolerance rtol "
                     f"1e-05, atol 1e-06). Hint: {SWITCH_LINES[0][1]}")


# --- each recognised mistake, from a learner's own wrong answer ----------------------------------
def addressing_no_beta(memory, key, beta):
    cos = (memory @ key[:, :, None])[..., 0] / (memory.norm(dim=-1) * key.norm(dim=-1)[:, None])
    return torch.softmax(cos, dim=1)


def addressing_batch_axis(memory, key, beta):
    cos = torch.nn.functional.cosine_similarity(memory, key[:, None, :], dim=-1, eps=1e-30)
    return torch.softmax(beta[:, None] * cos, dim=0)


def rag_token_learner(scores, logprobs):  # Σ_t log Σ_z p(z | x) p(y_t | x, z)
    prior = torch.log_softmax(scores, -1)
    return sum(torch.logsumexp(prior + logprobs[:, :, t], dim=-1)
               for t in range(logprobs.shape[-1]))


def rag_scores_as_probabilities(scores, logprobs):
    return torch.logsumexp(scores.clamp(min=1e-300).log() + logprobs.sum(-1), dim=-1)


def rag_top_document(scores, logprobs):
    return logprobs.sum(-1)[torch.arange(scores.shape[0]), scores.argmax(-1)]


def drops_floor(expert, n_experts, capacity_factor):
    cap, seen, out = int(capacity_factor * len(expert) // n_experts), {}, []
    for e in expert.tolist():
        seen[e] = seen.get(e, 0) + 1
        out.append(seen[e] > cap)
    return torch.tensor(out)


def drops_keeping_the_last(expert, n_experts, capacity_factor):
    return drops_loop(expert.flip(0), n_experts, capacity_factor).flip(0)


def drops_the_kept(expert, n_experts, capacity_factor):
    return ~drops_loop(expert, n_experts, capacity_factor)


@pytest.mark.parametrize(("check", "learner", "cases", "failing", "said"), [
    (ch09.check_content_addressing, addressing_dot, ADDRESSING_LINES, (0, 2, 3, 4),
     "a softmax of dot products: the NTM compares directions: divide by ‖k‖ ‖M(i)‖."),
    (ch09.check_content_addressing, addressing_no_beta, ADDRESSING_LINES, (0, 1, 2, 3, 4),
     "the cosines without β: β sharpens the weighting: softmax(β · cos)."),
    (ch09.check_content_addressing, addressing_batch_axis, ADDRESSING_LINES, (0, 1, 2, 3, 4),
     "the softmax over the wrong axis: normalise over the slots n (dim=-1 of (b, n))."),
    (ch09.check_rag_marginal, rag_token_learner, RAG_LINES, (0, 2, 3),
     "RAG-token's marginal: the exercise asks for RAG-sequence: one document for the whole "
     "answer — sum over z the product over t, not the other way round."),
    (ch09.check_rag_marginal, rag_scores_as_probabilities, RAG_LINES, (0, 1, 2, 3),
     "the scores used as probabilities: turn the scores into p(z | x) with a softmax."),
    (ch09.check_rag_marginal, rag_top_document, RAG_LINES, (0, 2, 3),
     "the top document only: marginalise: sum over every retrieved document."),
    (ch09.check_switch_drops, drops_floor, SWITCH_LINES, (1,),
     "capacity rounded down: the capacity is ⌈factor · T / E⌉, rounded up."),
    (ch09.check_switch_drops, drops_keeping_the_last, SWITCH_LINES, (0, 1, 3, 4),
     "the last tokens kept instead of the first: an expert fills up in token order."),
    (ch09.check_switch_drops, drops_the_kept, SWITCH_LINES, (0, 1, 2, 3, 4),
     "the kept tokens, not the dropped ones: return True where a token is dropped."),
])
def test_mistakes_are_explained_in_full_on_the_cases_that_show_them(check, learner, cases,
                                                                    failing, said):
    """Protects each recognised mistake of Chapter 9's exercises: a learner's answer with that
    mistake (written independently of the checker's) fails exactly the book cases that can
    show it, each with the mistake named and explained in full, and passes the others (a
    case where the mistake makes no difference is no reason to fail)."""
    lines = str(check(learner, verbose=False)).splitlines()
    assert len(lines) == len(cases) + 1
    for i, (line, (name, _)) in enumerate(zip(lines, cases, strict=False)):
        if i in failing:
            assert line.startswith(f"✗ {name}: ") and line.endswith(f" Hint: this is {said}"), line
        else:
            assert line == f"✓ {name}"


def test_rag_mistakes_are_recognised_on_graded_cases_too():
    """Protects the named mistakes on other draws: the grader's cases recognise them as well."""
    for learner, name in ((rag_token_learner, "RAG-token's marginal"),
                          (rag_top_document, "the top document only")):
        for seed in (1, 2):
            report = ch09.check_rag_marginal(learner, verbose=False, seed=seed)
            assert not report and f"Hint: this is {name}:" in str(report)


# --- tolerances: just inside and just outside -----------------------------------------------------
def test_addressing_tolerance_just_inside_and_just_outside():
    """Protects Exercise 9.1's tolerance (relative 1e-4, absolute 1e-9): a weighting off by
    5e-5 relative, or 5e-10 absolute, passes; 2e-4 relative, or 1e-7 absolute (which matters
    on the tiny weights of the β = 20 case), fails."""
    def off(relative=0.0, absolute=0.0):
        return lambda *a: addressing_right(*a) * (1 + relative) + absolute

    assert ch09.check_content_addressing(off(relative=5e-5), verbose=False)
    assert ch09.check_content_addressing(off(absolute=5e-10), verbose=False)
    assert not ch09.check_content_addressing(off(relative=2e-4), verbose=False)
    report = ch09.check_content_addressing(off(absolute=1e-7), verbose=False)
    assert not report and report.lines[3].startswith(f"✗ {ADDRESSING_LINES[3][0]}: values ")


def test_rag_tolerance_just_inside_and_just_outside():
    """Protects Exercise 9.2's tolerance (relative 1e-9, absolute 1e-9): an answer off by 5e-10
    relative passes; 5e-9 relative, or 5e-8 absolute, fails."""
    def off(relative=0.0, absolute=0.0):
        return lambda *a: rag_right(*a) * (1 + relative) + absolute

    assert ch09.check_rag_marginal(off(relative=5e-10), verbose=False)
    assert ch09.check_rag_marginal(off(absolute=5e-10), verbose=False)
    assert not ch09.check_rag_marginal(off(relative=5e-9), verbose=False)
    assert not ch09.check_rag_marginal(off(absolute=5e-8), verbose=False)


# --- the book's own functions, the loop budget ---------------------------------------------------
def addressing_by_address(memory, key, beta):  # ntm.address with g = 1, no shift, γ = 1
    from sseq.memory_aug import ntm

    b, n = memory.shape[:2]
    shift = torch.zeros(b, 3, dtype=memory.dtype)
    shift[:, 1] = 1
    one = torch.ones(b, dtype=memory.dtype)
    return ntm.address(memory, torch.full((b, n), 1 / n, dtype=memory.dtype), key, beta, one,
                       shift, one)


@pytest.mark.parametrize(("check", "learner", "cases", "called"), [
    (ch09.check_content_addressing, addressing_by_address, ADDRESSING_LINES,
     "sseq.memory_aug.ntm.address"),
    (ch09.check_content_addressing, lambda *a: ch09.ntm.content_addressing(*a),
     ADDRESSING_LINES, "sseq.memory_aug.ntm.content_addressing"),
    (ch09.check_rag_marginal, lambda *a: ch09.rag.rag_sequence_ref(*a), RAG_LINES,
     "sseq.memory_aug.rag.rag_sequence_ref"),
    (ch09.check_rag_marginal, lambda *a: ch09.rag.rag_sequence(*a), RAG_LINES,
     "sseq.memory_aug.rag.rag_sequence"),
    (ch09.check_switch_drops, lambda *a: ch09.switch.dropped_tokens(*a), SWITCH_LINES,
     "sseq.memory_aug.switch.dropped_tokens"),
])
def test_the_books_own_implementations_are_refused(check, learner, cases, called):
    """Protects each exercise's list of forbidden book functions: an answer that calls the
    book's implementation (or, for 9.1, the full NTM addressing it is the first step of)
    fails every case, saying which function it called."""
    lines = str(check(learner, verbose=False)).splitlines()
    assert lines[:-1] == [f"✗ {name}: calls {called}, the book's own implementation; write "
                          "your own." for name, _ in cases]


def _padded(pad, extra):  # addressing_right after a loop of `pad` idle steps (and a line more)
    if extra:
        def answer(memory, key, beta):
            pad_line = 0  # noqa: F841
            for _ in range(pad):
                pass
            return addressing_right(memory, key, beta)
    else:
        def answer(memory, key, beta):
            for _ in range(pad):
                pass
            return addressing_right(memory, key, beta)
    return answer


def test_the_batched_case_allows_30_lines_of_python_and_no_more():
    """Protects Exercise 9.1's loop budget: on the batch of 8 × 32 slots a learner's Python may
    run 30 lines (ample for a whole-tensor answer, too few for a loop over the 32 slots); at 31
    the case fails with the loop explained and its hint; the smaller cases have no budget."""
    from sseq.exercises_guard import run_learner

    def lines_run(answer):
        args = ch09._addressing_cases()[4].args
        return run_learner(answer, args, {}, max_lines=10**6).lines

    base = lines_run(_padded(0, 0))
    step = lines_run(_padded(1, 0)) - base
    pad, extra = divmod(30 - base, step)
    assert extra in (0, 1) and lines_run(_padded(pad, extra)) == 30
    at, over = (_padded(pad, extra), _padded(pad, 1) if extra == 0 else _padded(pad + 1, 0))
    assert lines_run(over) == 31
    assert ch09.check_content_addressing(at, verbose=False)
    lines = str(ch09.check_content_addressing(over, verbose=False)).splitlines()
    assert lines[:4] == [f"✓ {name}" for name, _ in ADDRESSING_LINES[:4]]
    assert lines[4] == (f"✗ {ADDRESSING_LINES[4][0]}: ran more than 30 lines of your Python on "
                        "this case: the exercise asks for whole-tensor operations, without a "
                        f"Python loop. Hint: {ADDRESSING_LINES[4][1]}")
    assert ch09.check_content_addressing(_padded(2000, 0), verbose=False, cases=[
        ch09._addressing_cases()[i] for i in range(4)])


def addressing_loop(memory, key, beta):  # a loop over slots, right otherwise
    out = torch.empty(memory.shape[:2], dtype=memory.dtype)
    for i in range(memory.shape[1]):
        out[:, i] = torch.nn.functional.cosine_similarity(memory[:, i], key, dim=-1, eps=1e-30)
    return torch.softmax(beta[:, None] * out, -1)


def addressing_comprehension(memory, key, beta):  # the same loop, as a one-line comprehension
    return torch.softmax(beta[:, None] * torch.stack([torch.nn.functional.cosine_similarity(
        memory[:, i], key, dim=-1, eps=1e-30) for i in range(memory.shape[1])], -1), -1)


@pytest.mark.parametrize("learner", [addressing_loop, addressing_comprehension])
def test_a_loop_over_slots_fails_the_batched_case(learner):
    """Protects the statement's "without a loop over the slots": a learner's loop over the
    slots, right otherwise (a for statement, or a comprehension of a single line), passes the
    small cases and fails the batched one. Before the budget was lowered from 200 to 30 lines,
    both passed all five cases."""
    report = ch09.check_content_addressing(learner, verbose=False)
    assert report.n_passed == 4 and "ran more than 30 lines" in report.lines[4]


# --- the cases themselves ------------------------------------------------------------------------
def _draw(seed, grading, *shape, scale=1.0):
    from sseq.exercises_cases import case_generator

    return scale * torch.randn(*shape, generator=case_generator(seed, grading),
                               dtype=torch.float64)


def _same(got, want):
    return got.dtype == want.dtype and got.shape == want.shape and torch.equal(got, want)


@pytest.mark.parametrize("seed", [None, 5])
def test_addressing_cases_are_drawn_as_the_book_says(seed):
    """Protects Exercise 9.1's cases: in float64, a memory (2, 6, 4) from seed 0 shared by the
    first four cases (its slots rescaled by 0.01 … 100 in the third), keys from seeds 1, 2, 3
    (the fourth's key a copy of slot 2), β = (1, 5), (0, 0), (3, 3), (20, 20), and a batch of
    8 memories (32 × 16) from seed 4 with keys from 5 and β = 4 |N(0, 1)| from 6; only the
    batched case caps the learner's lines (30); every case keeps its name and hint."""
    cases = ch09._addressing_cases(seed)
    memory = _draw(0, seed, 2, 6, 4)
    lengths = torch.tensor([0.01, 1, 100, 1, 1, 10], dtype=torch.float64)[None, :, None]
    betas = ([1.0, 5.0], [0.0, 0.0], [3.0, 3.0], [20.0, 20.0])
    wants = [(memory, _draw(1, seed, 2, 4)), (memory, _draw(2, seed, 2, 4)),
             (memory * lengths, _draw(3, seed, 2, 4)), (memory, memory[:, 2])]
    for case, (m, k), beta in zip(cases, wants, betas, strict=False):
        want = (m, k, torch.tensor(beta, dtype=torch.float64))
        assert all(_same(a, b) for a, b in zip(case.args, want, strict=True)), case.name
        assert case.max_lines is None
    big = (_draw(4, seed, 8, 32, 16), _draw(5, seed, 8, 16), _draw(6, seed, 8).abs() * 4)
    assert all(_same(a, b) for a, b in zip(cases[4].args, big, strict=True))
    assert cases[4].max_lines == 30
    assert [(c.name, c.hint) for c in cases] == ADDRESSING_LINES
    assert cases[3].args[1] is not cases[3].args[0]  # the key is a copy, not a view of memory
    assert cases[3].args[1].data_ptr() != cases[3].args[0].data_ptr()


@pytest.mark.parametrize("seed", [None, 5])
def test_rag_cases_are_drawn_as_the_book_says(seed):
    """Protects Exercise 9.2's cases: float64 scores from seeds 10, 12, 15 (zeros in the third),
    and token log-probabilities from seeds 11, 13, 14, 16, each the log-softmax over 5
    candidates of 2 N(0, 1), of which the first is the answer's token; shapes (1, 3, 4),
    (2, 1, 3), (2, 4, 2) and (3, 5, 400); every case keeps its name and hint."""
    def logprobs(s, *shape):
        return torch.log_softmax(_draw(s, seed, *shape, 5, scale=2.0), -1)[..., 0]

    wants = [(_draw(10, seed, 1, 3), logprobs(11, 1, 3, 4)),
             (_draw(12, seed, 2, 1), logprobs(13, 2, 1, 3)),
             (torch.zeros(2, 4, dtype=torch.float64), logprobs(14, 2, 4, 2)),
             (_draw(15, seed, 3, 5), logprobs(16, 3, 5, 400))]
    cases = ch09._rag_cases(seed)
    for case, want in zip(cases, wants, strict=True):
        assert all(_same(a, b) for a, b in zip(case.args, want, strict=True)), case.name
        assert case.max_lines is None
    assert [(c.name, c.hint) for c in cases] == RAG_LINES


@pytest.mark.parametrize("seed", [None, 5, 3622])
def test_switch_cases_are_drawn_as_the_book_says(seed):
    """Protects Exercise 9.3's cases: the chapter's 8 tokens; then experts drawn with
    replacement from softmax(skew · (0, 1, …)) in float64 with the exercise's generator — 10
    tokens over 4 experts (seed 20, skew 1, factor 1.5), 12 over 3 (seed 21, uniform, factor
    3), 64 over 8 (seed 22, skew 0.5, factor 0.5) — and 9 tokens all to expert 0 of 3; names
    and hints kept. (Grading seed 3622 is one where weights in float32 draw another expert.)"""
    from sseq.exercises_cases import case_generator

    def experts(t, e, s, skew):
        weights = torch.softmax(skew * torch.arange(e, dtype=torch.float64), 0)
        return torch.multinomial(weights, t, replacement=True,
                                 generator=case_generator(s, seed))

    wants = [(torch.tensor([0, 0, 1, 0, 0, 1, 0, 0]), 2, 1.0),
             (experts(10, 4, 20, 1.0), 4, 1.5), (experts(12, 3, 21, 0.0), 3, 3.0),
             (experts(64, 8, 22, 0.5), 8, 0.5), (torch.zeros(9, dtype=torch.long), 3, 1.0)]
    cases = ch09._switch_cases(seed)
    for case, want in zip(cases, wants, strict=True):
        assert _same(case.args[0], want[0]) and case.args[1:] == want[1:], case.name
        assert type(case.args[2]) is float
    assert [(c.name, c.hint) for c in cases] == SWITCH_LINES


def test_switch_cases_show_what_their_names_say():
    """Protects the meaning of Exercise 9.3's cases (an oracle loop, on the book's draw and
    graded ones): the 1.5 case drops a token only with the capacity rounded up to 4 (not 3);
    the large factor drops nothing; first come, first served drops some tokens and keeps
    others of a same expert; all tokens to one expert drops all but the first 3."""
    for seed in (None, 1, 2, 3):
        cases = ch09._switch_cases(seed)
        rounded = cases[1].args
        assert math.ceil(rounded[2] * 10 / 4) == 4
        assert not drops_loop(*cases[2].args).any()
        assert drops_loop(*cases[3].args).sum() > 0
    assert drops_loop(*ch09._switch_cases()[4].args).tolist() == [False] * 3 + [True] * 6
    assert drops_loop(*ch09._switch_cases()[0].args).tolist() == [
        False, False, False, False, False, False, True, True]


# --- calling conventions -------------------------------------------------------------------------
@pytest.mark.parametrize(("check", "right", "wrong", "cases", "title"), [
    (ch09.check_content_addressing, addressing_right, addressing_batch_axis, ADDRESSING_LINES,
     TITLES["addressing"]),
    (ch09.check_rag_marginal, rag_right, rag_top_document, RAG_LINES, TITLES["rag"]),
    (ch09.check_switch_drops, drops_right, drops_the_kept, SWITCH_LINES, TITLES["switch"]),
])
def test_checkers_print_by_default_pass_the_seed_on_and_take_instructor_cases(
        capsys, check, right, wrong, cases, title):
    """Protects each Chapter 9 checker's calling conventions: it prints its report unless
    verbose=False, the right answer's report lists every book case and the title's verdict,
    its seed selects the graded cases, and an instructor's cases replace the book's."""
    check(right)
    assert capsys.readouterr().out == "".join(f"✓ {name}\n" for name, _ in cases) + (
        f"{title}: all {len(cases)} checks pass. Well done!\n")
    assert not check(wrong, verbose=False)
    assert capsys.readouterr().out == ""
    draw = {ch09.check_content_addressing: ch09._addressing_cases,
            ch09.check_rag_marginal: ch09._rag_cases,
            ch09.check_switch_drops: ch09._switch_cases}[check]
    calls = []

    def spy(*args):
        calls.append(args)
        return right(*args)

    graded = check(spy, verbose=False, seed=3)
    assert graded and graded.n_cases == len(cases)
    assert all(_same_args(got, case.args) for got, case in zip(calls, draw(3), strict=True))
    assert not all(_same_args(got, case.args) for got, case in zip(calls, draw(), strict=True))
    mine = [ch09.Case("mine", draw(9)[1].args)]
    report = check(right, verbose=False, cases=mine)
    assert report and report.lines == ["✓ mine"] and report.n_cases == 1
    assert check(wrong, verbose=False, cases=[ch09.Case("mine", draw(9)[0].args)]).lines[0] \
        .startswith("✗ mine: ")


def _same_args(got, want):
    return all(_same(a, b) if isinstance(a, torch.Tensor) else a == b
               for a, b in zip(got, want, strict=True))
