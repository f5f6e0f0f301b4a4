"""sseq.memory_aug: the NTM's addressing, read and write, the NTM model, the copy task and the
DNC's temporal links, each against a loop written from the papers' formulas."""

from __future__ import annotations

import math

import pytest
import torch

from sseq.memory_aug import copy_accuracy, copy_loss, copy_task, dnc, ntm
from sseq.memory_aug.ntm_model import NTM, head_parameters


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def _dist(*shape, seed=0):
    return torch.softmax(_rand(*shape, seed=seed), dim=-1)


def test_content_addressing_is_a_softmax_of_scaled_cosines():
    M, k, beta = _rand(2, 5, 4), _rand(2, 4, seed=1), torch.tensor([0.5, 3.0],
                                                                    dtype=torch.float64)
    got = ntm.content_addressing(M, k, beta)
    for b in range(2):
        cos = [float(M[b, i] @ k[b]) / float(M[b, i].norm() * k[b].norm()) for i in range(5)]
        e = [math.exp(float(beta[b]) * c) for c in cos]
        assert got[b].tolist() == pytest.approx([x / sum(e) for x in e], rel=1e-6)


def test_a_sharp_key_finds_the_slot_it_matches():
    M = torch.eye(6, dtype=torch.float64)[None]                  # slot i = e_i
    w = ntm.content_addressing(M, M[:, 3], torch.tensor([50.0], dtype=torch.float64))
    assert int(w.argmax()) == 3 and float(w[0, 3]) > 0.99


def test_gate_shift_and_sharpen_against_their_formulas():
    w, prev = _dist(2, 7), _dist(2, 7, seed=1)
    g = torch.tensor([0.3, 1.0], dtype=torch.float64)
    gated = ntm.gated_interpolation(w, prev, g)
    assert torch.allclose(gated[0], 0.3 * w[0] + 0.7 * prev[0]) and torch.equal(gated[1], w[1])
    s = _dist(2, 3, seed=2)
    shifted = ntm.circular_shift(gated, s)
    for b in range(2):
        for i in range(7):
            want = sum(float(gated[b, j]) * float(s[b, ntm.SHIFTS.index(((i - j + 1) % 7) - 1)])
                       for j in range(7) if ((i - j + 1) % 7) - 1 in ntm.SHIFTS)
            assert float(shifted[b, i]) == pytest.approx(want, rel=1e-9)
    gamma = torch.tensor([1.0, 3.0], dtype=torch.float64)
    sharp = ntm.sharpen(shifted, gamma)
    want = shifted[1] ** 3 / (shifted[1] ** 3).sum()
    assert torch.allclose(sharp[1], want, atol=1e-7) and torch.allclose(sharp[0], shifted[0],
                                                                         atol=1e-7)


def test_a_one_hot_shift_moves_the_focus_one_slot_forward():
    w = torch.zeros(1, 5, dtype=torch.float64)
    w[0, 4] = 1.0
    moved = ntm.circular_shift(w, torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64))
    assert moved[0].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]        # wraps around


def test_read_and_write_against_the_element_wise_formulas():
    M, w = _rand(2, 4, 3), _dist(2, 4, seed=1)
    erase, add = torch.sigmoid(_rand(2, 3, seed=2)), _rand(2, 3, seed=3)
    r = ntm.read(M, w)
    new = ntm.write(M, w, erase, add)
    for b in range(2):
        for j in range(3):
            assert float(r[b, j]) == pytest.approx(sum(float(w[b, i] * M[b, i, j])
                                                       for i in range(4)), rel=1e-9)
            for i in range(4):
                want = M[b, i, j] * (1 - w[b, i] * erase[b, j]) + w[b, i] * add[b, j]
                assert float(new[b, i, j]) == pytest.approx(float(want), rel=1e-9)


def test_address_gradients_match_finite_differences():
    M, prev, key = _rand(1, 5, 3), _dist(1, 5, seed=1), _rand(1, 3, seed=2).requires_grad_()
    args = (torch.tensor([2.0], dtype=torch.float64), torch.tensor([0.7], dtype=torch.float64),
            _dist(1, 3, seed=3), torch.tensor([1.5], dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda k: ntm.address(M, prev, k, *args), (key,))


@pytest.mark.parametrize("call, match", [
    (lambda: ntm.content_addressing(torch.zeros(2, 4, 5), torch.zeros(2, 3), torch.ones(2)),
     r"key must have shape \(b, m\) = \(2, 5\), got \(2, 3\)"),
    (lambda: ntm.read(torch.zeros(2, 5, 3), torch.zeros(2, 4)),
     r"w must have shape \(b, n\) = \(2, 5\), got \(2, 4\)"),
    (lambda: ntm.write(torch.zeros(1, 5, 3), torch.zeros(1, 5), torch.zeros(1, 2),
                       torch.zeros(1, 3)), r"erase must have shape"),
    (lambda: ntm.circular_shift(torch.zeros(1, 5), torch.zeros(1, 5)), r"s must have shape"),
    (lambda: dnc.link_update(torch.zeros(1, 3, 4), torch.zeros(1, 3), torch.zeros(1, 3)),
     r"L must have shape \(b, n, n\)"),
    (lambda: dnc.temporal_links(torch.zeros(3, 4)), r"write_weights must have shape"),
])
def test_bad_shapes_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_integer_tensors_are_refused():
    with pytest.raises(TypeError, match="memory must be a floating-point tensor"):
        ntm.read(torch.zeros(1, 2, 3, dtype=torch.long), torch.zeros(1, 2))


def test_head_parameters_lie_in_their_ranges():
    p = head_parameters(_rand(4, 3 * 5 + 6).float() * 5, 5, writes=True)
    assert (p["beta"] >= 0).all() and ((p["g"] >= 0) & (p["g"] <= 1)).all()
    assert (p["gamma"] >= 1).all() and torch.allclose(p["s"].sum(-1), torch.ones(4))
    assert ((p["erase"] >= 0) & (p["erase"] <= 1)).all() and (p["add"].abs() <= 1).all()
    with pytest.raises(ValueError, match=r"raw must have shape \(b, 11\) for m = 5"):
        head_parameters(torch.zeros(4, 21), 5, writes=False)


def test_the_ntm_runs_step_by_step_and_its_weightings_are_distributions():
    torch.manual_seed(0)
    model = NTM(3, 2, d_controller=8, n_slots=6, slot_width=4)
    x = torch.randn(2, 5, 3)
    y, w_write, w_read = model(x, return_weights=True)
    assert y.shape == (2, 5, 2) and w_write.shape == w_read.shape == (2, 5, 6)
    assert torch.allclose(w_write.sum(-1), torch.ones(2, 5), atol=1e-5)
    state, ys = model.initial_state(2), []
    for t in range(5):
        out, state = model.step(x[:, t], state)
        ys.append(out)
    assert torch.allclose(torch.stack(ys, 1), y)
    with pytest.raises(ValueError, match=r"x must have shape \(b, l, d_in\) = \(b, l, 3\)"):
        model(torch.zeros(2, 5, 4))


def test_copy_task_layout_and_scores():
    x, y, mask = copy_task(3, 4, 5, seed=0)
    assert x.shape == (3, 9, 6) and y.shape == (3, 9, 5)
    assert mask.tolist() == [False] * 5 + [True] * 4
    assert torch.equal(x[:, :4, :5], y[:, 5:]) and (x[:, 4, 5] == 1).all()
    assert (x[:, 5:] == 0).all()
    perfect = 10 * (2 * y - 1)
    assert copy_accuracy(perfect, y, mask) == {"bits": 1.0, "sequences": 1.0}
    assert float(copy_loss(perfect, y, mask)) < 1e-4
    perfect[0, 6, 0] *= -1
    assert copy_accuracy(perfect, y, mask)["sequences"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="length must be an int >= 1, got 0"):
        copy_task(3, 0)


# --- DNC temporal links ----------------------------------------------------------------------


def test_link_update_matches_the_formula_entry_by_entry():
    L = torch.rand(2, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p, w = _dist(2, 5, seed=1) * 0.5, _dist(2, 5, seed=2)
    assert torch.allclose(dnc.link_update(L, p, w), dnc.link_update_ref(L, p, w), atol=1e-12)
    assert torch.allclose(dnc.precedence_update(p, w), (1 - w.sum(-1, keepdim=True)) * p + w)


def test_links_recover_the_order_of_writes_to_scattered_slots():
    order = [4, 1, 6, 0, 3]                                     # slots written, in this order
    writes = torch.zeros(1, len(order), 8, dtype=torch.float64)
    for t, slot in enumerate(order):
        writes[0, t, slot] = 1.0
    L, p = dnc.temporal_links(writes)
    assert int(p.argmax()) == order[-1]
    focus, replay = torch.zeros(1, 8, dtype=torch.float64), [order[0]]
    focus[0, order[0]] = 1.0
    for _ in order[1:]:
        focus = dnc.forward_weighting(L, focus)
        replay.append(int(focus.argmax()))
    assert replay == order
    back = dnc.backward_weighting(L, focus)
    assert int(back.argmax()) == order[-2]


def test_the_explorers_stages_are_the_four_steps_of_address():
    from sseq.memory_aug import explore

    memory = explore.demo_memory()
    prev = torch.zeros(1, 12, dtype=torch.float64)
    prev[0, 5] = 1.0
    stages = explore.addressing_stages(memory, memory[:, 3], prev, beta=4.0, g=0.0, shift=1.0,
                                       gamma=1.0)
    assert torch.allclose(stages["gated"], prev[0])            # g = 0 keeps the old focus
    assert int(stages["sharpened"].argmax()) == 6               # moved one slot forward
    stages = explore.addressing_stages(memory, memory[:, 3], prev, beta=7.0, g=0.6, shift=0.6,
                                       gamma=2.5)
    scalars = [torch.tensor([v], dtype=torch.float64) for v in (7.0, 0.6)]
    s = torch.tensor([[0.0, 0.4, 0.6]], dtype=torch.float64)   # shift 0.6: 0.6 forward, 0.4 stay
    want = ntm.address(memory, prev, memory[:, 3], *scalars, s,
                       torch.tensor([2.5], dtype=torch.float64))
    assert torch.allclose(stages["sharpened"], want[0])
    assert torch.isclose(stages["content"][3], stages["content"][8])  # equal slots, equal weight


# --- mutation-testing gaps (issue 18): exact messages, each shift, the EPS guards -------------


def _f64(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_each_shift_moves_the_focus_by_its_literal_amount():
    """s = (P(-1), P(0), P(+1)) in that order: each one-hot shift moves a focus on slot 2 of 5
    to slot 1, 2 or 3 (written out, not derived from ntm.SHIFTS), and a mixed s splits it."""
    assert ntm.SHIFTS == (-1, 0, 1)
    w = torch.zeros(1, 5, dtype=torch.float64)
    w[0, 2] = 1.0
    for s, slot in (([1.0, 0.0, 0.0], 1), ([0.0, 1.0, 0.0], 2), ([0.0, 0.0, 1.0], 3)):
        want = [0.0] * 5
        want[slot] = 1.0
        assert ntm.circular_shift(w, _f64(*s)[None]).tolist() == [want]
    mixed = ntm.circular_shift(w, _f64(0.2, 0.3, 0.5)[None])
    assert mixed[0].tolist() == pytest.approx([0.0, 0.2, 0.3, 0.5, 0.0], abs=1e-15)


def test_an_all_zero_slot_or_key_gives_finite_weights():
    """EPS keeps the cosine of an all-zero slot (or key) at 0, not NaN: the zero slot gets the
    weight exp(0) against the others' exp(β cos), and an all-zero key gives a uniform weighting."""
    M = _rand(1, 4, 3)
    M[0, 2] = 0.0
    k = _rand(1, 3, seed=1)
    w = ntm.content_addressing(M, k, _f64(2.0))
    cos = [float(M[0, i] @ k[0]) / float(M[0, i].norm() * k[0].norm()) if i != 2 else 0.0
           for i in range(4)]
    e = [math.exp(2.0 * c) for c in cos]
    assert w[0].tolist() == pytest.approx([x / sum(e) for x in e], rel=1e-7)
    uniform = ntm.content_addressing(M, torch.zeros(1, 3, dtype=torch.float64), _f64(5.0))
    assert uniform[0].tolist() == pytest.approx([0.25] * 4, rel=1e-12)


def test_sharpen_of_a_weighting_with_zeros_is_finite_and_has_a_gamma_gradient():
    """EPS in sharpen: zeros stay (almost) zero, the result is a distribution, and the gradient
    with respect to γ exists (0^γ alone would give NaN) and matches finite differences."""
    w = _f64(0.0, 0.25, 0.75)[None]
    gamma = _f64(2.0).requires_grad_()
    out = ntm.sharpen(w, gamma)
    values = out.detach()[0].tolist()
    want = [x ** 2 / (0.25 ** 2 + 0.75 ** 2) for x in (0.0, 0.25, 0.75)]
    assert values == pytest.approx(want, rel=1e-6, abs=1e-12) and values[0] < 1e-14
    out[0, 1].backward()
    a, b = 0.25, 0.75                      # d/dγ of a^γ / (a^γ + b^γ), zero slot ignored
    d = a ** 2 * b ** 2 * (math.log(a) - math.log(b)) / (a ** 2 + b ** 2) ** 2
    assert float(gamma.grad) == pytest.approx(d, rel=1e-6)


@pytest.mark.parametrize("call, message", [
    (lambda: ntm.content_addressing(torch.zeros(2, 4), torch.zeros(2, 4), torch.ones(2)),
     "memory must have shape (b, n, m) = (?, ?, ?), got (2, 4)"),
    (lambda: ntm.content_addressing(torch.zeros(2, 4, 5), torch.zeros(2, 5), torch.ones(3)),
     "beta must have shape (b,) = (2), got (3,)"),
    (lambda: ntm.gated_interpolation(torch.zeros(2, 4), torch.zeros(2, 5), torch.ones(2)),
     "w_prev must have shape (b, n) = (2, 4), got (2, 5)"),
    (lambda: ntm.gated_interpolation(torch.zeros(2, 4), torch.zeros(2, 4), torch.ones(2, 1)),
     "g must have shape (b,) = (2), got (2, 1)"),
    (lambda: ntm.gated_interpolation(torch.zeros(4), torch.zeros(4), torch.ones(1)),
     "w_content must have shape (b, n) = (?, ?), got (4,)"),
    (lambda: ntm.circular_shift(torch.zeros(3, 5), torch.zeros(2, 3)),
     "s must have shape (b, 3) = (3, 3), got (2, 3)"),
    (lambda: ntm.sharpen(torch.zeros(2, 5), torch.ones(3)),
     "gamma must have shape (b,) = (2), got (3,)"),
    (lambda: ntm.sharpen(torch.zeros(2, 5, 1), torch.ones(2)),
     "w must have shape (b, n) = (?, ?), got (2, 5, 1)"),
    (lambda: ntm.write(torch.zeros(1, 5, 3), torch.zeros(1, 4), torch.zeros(1, 3),
                       torch.zeros(1, 3)), "w must have shape (b, n) = (1, 5), got (1, 4)"),
    (lambda: ntm.write(torch.zeros(1, 5, 3), torch.zeros(1, 5), torch.zeros(1, 3),
                       torch.zeros(1, 2)), "add must have shape (b, m) = (1, 3), got (1, 2)"),
    (lambda: ntm.write(torch.zeros(1, 5, 3), torch.zeros(1, 5), torch.zeros(2, 3),
                       torch.zeros(1, 3)), "erase must have shape (b, m) = (1, 3), got (2, 3)"),
    (lambda: ntm.read(torch.zeros(5, 3), torch.zeros(1, 5)),
     "memory must have shape (b, n, m) = (?, ?, ?), got (5, 3)"),
    (lambda: ntm.write(torch.zeros(5, 3), torch.zeros(1, 5), torch.zeros(1, 3),
                       torch.zeros(1, 3)),
     "memory must have shape (b, n, m) = (?, ?, ?), got (5, 3)"),
    (lambda: ntm.circular_shift(torch.zeros(1, 5, 1), torch.zeros(1, 3)),
     "w must have shape (b, n) = (?, ?), got (1, 5, 1)"),
])
def test_each_argument_shape_error_is_spelled_out_in_full(call, message):
    """The whole message (argument, glossary letters, expected sizes with ? for free ones, given
    shape) for each checked argument of each function."""
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


@pytest.mark.parametrize("call, message", [
    (lambda: ntm.read([[[0.0]]], torch.zeros(1, 1)),
     "memory must be a floating-point tensor (b, n, m), got list "),
    (lambda: ntm.read(torch.zeros(1, 2, 3, dtype=torch.long), torch.zeros(1, 2)),
     "memory must be a floating-point tensor (b, n, m), got Tensor torch.int64"),
    (lambda: ntm.sharpen(torch.zeros(1, 2), 2.0),
     "gamma must be a floating-point tensor (b,), got float "),
    (lambda: ntm.write(torch.zeros(1, 2, 3), torch.zeros(1, 2), torch.zeros(1, 3),
                       torch.zeros(1, 3, dtype=torch.int32)),
     "add must be a floating-point tensor (b, m), got Tensor torch.int32"),
])
def test_each_type_error_names_the_argument_and_what_it_got(call, message):
    """Non-tensors and integer tensors are refused with the argument's name, its glossary shape,
    and the type (and dtype) given."""
    with pytest.raises(TypeError) as info:
        call()
    assert str(info.value) == message


def test_tiny_slots_and_keys_have_their_cosine_damped_by_eps():
    """Where |M(i)| |k| is near EPS = 1e-8 the cosine is dot / (|M(i)| |k| + 1e-8), not the
    plain cosine (and never a division by zero): a float64 loop with the same EPS agrees."""
    M, k = _rand(1, 5, 3) * 1e-4, _rand(1, 3, seed=1) * 1e-4
    beta = 20.0
    got = ntm.content_addressing(M, k, _f64(beta))
    cos = [float(M[0, i] @ k[0]) / (float(M[0, i].norm() * k[0].norm()) + 1e-8)
           for i in range(5)]
    e = [math.exp(beta * c) for c in cos]
    assert got[0].tolist() == pytest.approx([x / sum(e) for x in e], rel=1e-9)
    plain = [float(M[0, i] @ k[0]) / float(M[0, i].norm() * k[0].norm()) for i in range(5)]
    assert max(abs(a - b) for a, b in zip(cos, plain, strict=True)) > 0.1   # EPS matters here
