"""sseq.memory_aug's models, each against an oracle written here from the papers' equations:
the DNC's precedence and temporal links (Graves et al. 2016), the NTM model (Graves et al.
2014), the copy task, RAG's marginals (Lewis et al. 2020) and the Compressive Transformer's
memory (Rae et al. 2020). The oracles are float64 loops over plain Python numbers, closed forms
and tiny cases worked by hand; error messages are checked in full."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from sseq.memory_aug import compressive, dnc, rag
from sseq.memory_aug.copy_task import copy_accuracy, copy_loss, copy_task
from sseq.memory_aug.ntm_model import MEMORY_INIT, NTM, NTMConfig, head_parameters


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def _dist(*shape, seed=0):
    return torch.softmax(_rand(*shape, seed=seed), dim=-1)


def _full(message: str) -> str:
    """A regular expression matching exactly this message."""
    return "^" + re.escape(message) + "$"


# --- DNC: precedence and temporal links, from the paper's Methods as loops ----------------------


def _precedence_loop(p, w):
    """p_t(i) = (1 − Σ_j w_t(j)) p_{t−1}(i) + w_t(i), one batch row at a time."""
    out = []
    for p_row, w_row in zip(p.tolist(), w.tolist(), strict=True):
        total = sum(w_row)
        out.append([(1 - total) * pi + wi for pi, wi in zip(p_row, w_row, strict=True)])
    return torch.tensor(out, dtype=torch.float64)


def _link_loop(L, p_prev, w):
    """L_t[i][j] = (1 − w(i) − w(j)) L[i][j] + w(i) p_prev(j) off the diagonal, 0 on it."""
    out = []
    for Lk, pk, wk in zip(L.tolist(), p_prev.tolist(), w.tolist(), strict=True):
        n = len(wk)
        out.append([[0.0 if i == j else (1 - wk[i] - wk[j]) * Lk[i][j] + wk[i] * pk[j]
                     for j in range(n)] for i in range(n)])
    return torch.tensor(out, dtype=torch.float64)


def _matvec_loop(L, v, transpose):
    out = []
    for Lk, vk in zip(L.tolist(), v.tolist(), strict=True):
        n = len(vk)
        out.append([sum((Lk[j][i] if transpose else Lk[i][j]) * vk[j] for j in range(n))
                    for i in range(n)])
    return torch.tensor(out, dtype=torch.float64)


def test_precedence_update_against_the_loop_and_a_hand_case():
    """p_t = (1 − Σ w) p_{t−1} + w, per batch row: the write's total decays the old precedence."""
    p, w = _dist(3, 5, seed=1) * 0.7, _dist(3, 5, seed=2) * torch.tensor([[0.2], [0.5], [1.0]])
    assert torch.allclose(dnc.precedence_update(p, w), _precedence_loop(p, w), atol=1e-14)
    # by hand: a write of total 0.5 halves the old precedence, then adds itself
    got = dnc.precedence_update(torch.tensor([[0.6, 0.4, 0.0]]), torch.tensor([[0.0, 0.0, 0.5]]))
    assert torch.allclose(got, torch.tensor([[0.3, 0.2, 0.5]]), atol=1e-7)


def test_link_update_against_the_loop_with_a_nonzero_diagonal_and_asymmetric_inputs():
    """The link update reads L[i, j], w(i), w(j) and p_prev(j) in the right places and zeroes
    the diagonal even when the old L has one."""
    L = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p, w = _dist(2, 4, seed=3) * 0.6, _dist(2, 4, seed=4) * 0.9
    got = dnc.link_update(L, p, w)
    assert torch.allclose(got, _link_loop(L, p, w), atol=1e-14)
    assert torch.allclose(dnc.link_update_ref(L, p, w), _link_loop(L, p, w), atol=1e-14)
    # by hand: write all of slot 1 after slot 0 was the last written
    one = dnc.link_update(torch.zeros(1, 3, 3), torch.tensor([[1.0, 0.0, 0.0]]),
                          torch.tensor([[0.0, 1.0, 0.0]]))
    assert one.tolist() == [[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]


def test_link_update_keeps_a_low_precision_dtype():
    """The diagonal mask is made in L's dtype: bfloat16 links stay bfloat16, float32 float32."""
    for dtype in (torch.bfloat16, torch.float32):
        L = torch.rand(1, 3, 3).to(dtype)
        p, w = torch.full((1, 3), 0.25, dtype=dtype), torch.full((1, 3), 0.25, dtype=dtype)
        assert dnc.link_update(L, p, w).dtype == dtype


def test_temporal_links_against_the_loop_over_a_soft_trace():
    """temporal_links runs link_update with the precedence *before* each write, then updates
    the precedence, from p_0 = 0 and L_0 = 0."""
    writes = _dist(2, 6, 5, seed=5) * 0.8                              # (b, l, n), soft writes
    L = torch.zeros(2, 5, 5, dtype=torch.float64)
    p = torch.zeros(2, 5, dtype=torch.float64)
    for t in range(6):
        L = _link_loop(L, p, writes[:, t])
        p = _precedence_loop(p, writes[:, t])
    got_L, got_p = dnc.temporal_links(writes)
    assert torch.allclose(got_L, L, atol=1e-14) and torch.allclose(got_p, p, atol=1e-14)
    # one write only: no link yet (p_0 = 0), and the precedence is that write
    L1, p1 = dnc.temporal_links(writes[:, :1])
    assert L1.abs().max() == 0 and torch.allclose(p1, writes[:, 0], atol=0)


def test_forward_and_backward_weightings_against_the_loop():
    """f = L w and b = Lᵀ w on a non-symmetric L, per batch row."""
    L, v = _rand(3, 4, 4, seed=6), _dist(3, 4, seed=7)
    assert torch.allclose(dnc.forward_weighting(L, v), _matvec_loop(L, v, False), atol=1e-14)
    assert torch.allclose(dnc.backward_weighting(L, v), _matvec_loop(L, v, True), atol=1e-14)
    # one batch row, by hand: L[1, 0] = 1 means slot 1 was written after slot 0
    L = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])
    assert dnc.forward_weighting(L, torch.tensor([[1.0, 0.0]])).tolist() == [[0.0, 1.0]]
    assert dnc.backward_weighting(L, torch.tensor([[0.0, 1.0]])).tolist() == [[1.0, 0.0]]


_Z = torch.zeros


@pytest.mark.parametrize("call, message", [
    (lambda: dnc.precedence_update(_Z(2), _Z(2)),
     "p must have shape (b, n) = (?, ?), got (2,)"),
    (lambda: dnc.precedence_update(_Z(2, 3), _Z(2, 4)),
     "w must have shape (b, n) = (2, 3), got (2, 4)"),
    (lambda: dnc.link_update(_Z(2, 3), _Z(2, 3), _Z(2, 3)),
     "L must have shape (b, n, n) = (?, ?, ?), got (2, 3)"),
    (lambda: dnc.link_update(_Z(2, 3, 4), _Z(2, 3), _Z(2, 3)),
     "L must have shape (b, n, n) = (2, 3, 3), got (2, 3, 4)"),
    (lambda: dnc.link_update(_Z(2, 3, 3), _Z(2, 4), _Z(2, 3)),
     "p_prev must have shape (b, n) = (2, 3), got (2, 4)"),
    (lambda: dnc.link_update(_Z(2, 3, 3), _Z(2, 3), _Z(1, 3)),
     "w must have shape (b, n) = (2, 3), got (1, 3)"),
    (lambda: dnc.temporal_links(_Z(2, 3)),
     "write_weights must have shape (b, l, n) = (?, ?, ?), got (2, 3)"),
    (lambda: dnc.forward_weighting(_Z(2, 3), _Z(2, 3)),
     "L must have shape (b, n, n) = (?, ?, ?), got (2, 3)"),
    (lambda: dnc.forward_weighting(_Z(2, 3, 3), _Z(3, 3)),
     "w_read must have shape (b, n) = (2, 3), got (3, 3)"),
    (lambda: dnc.forward_weighting(_Z(2, 3, 3), _Z(2, 4)),
     "w_read must have shape (b, n) = (2, 3), got (2, 4)"),
    (lambda: dnc.backward_weighting(_Z(2, 3), _Z(2, 3)),
     "L must have shape (b, n, n) = (?, ?, ?), got (2, 3)"),
    (lambda: dnc.backward_weighting(_Z(2, 3, 3), _Z(3, 3)),
     "w_read must have shape (b, n) = (2, 3), got (3, 3)"),
    (lambda: dnc.backward_weighting(_Z(2, 3, 3), _Z(2, 4)),
     "w_read must have shape (b, n) = (2, 3), got (2, 4)"),
])
def test_dnc_shape_errors_are_spelled_out_in_full(call, message):
    """Each DNC function names the argument, its shape letters, the expected and given shape."""
    with pytest.raises(ValueError, match=_full(message)):
        call()


_I = torch.zeros(2, 3, dtype=torch.long)


@pytest.mark.parametrize("call, message", [
    (lambda: dnc.precedence_update(_I, _Z(2, 3)), "p must be a floating-point tensor (b, n)"),
    (lambda: dnc.precedence_update(_Z(2, 3), _I), "w must be a floating-point tensor (b, n)"),
    (lambda: dnc.link_update(_I[None], _Z(2, 3), _Z(2, 3)),
     "L must be a floating-point tensor (b, n, n)"),
    (lambda: dnc.link_update(_Z(2, 3, 3), _I, _Z(2, 3)),
     "p_prev must be a floating-point tensor (b, n)"),
    (lambda: dnc.link_update(_Z(2, 3, 3), _Z(2, 3), _I),
     "w must be a floating-point tensor (b, n)"),
    (lambda: dnc.temporal_links(_I[None]),
     "write_weights must be a floating-point tensor (b, l, n)"),
    (lambda: dnc.forward_weighting(_I[None], _Z(1, 2)),
     "L must be a floating-point tensor (b, n, n)"),
    (lambda: dnc.forward_weighting(_Z(2, 3, 3), _I),
     "w_read must be a floating-point tensor (b, n)"),
    (lambda: dnc.backward_weighting(_I[None], _Z(1, 2)),
     "L must be a floating-point tensor (b, n, n)"),
    (lambda: dnc.backward_weighting(_Z(2, 3, 3), _I),
     "w_read must be a floating-point tensor (b, n)"),
])
def test_dnc_type_errors_name_the_argument(call, message):
    """An integer tensor is refused with the argument's name and its shape letters."""
    with pytest.raises(TypeError, match=_full(message + ", got Tensor torch.int64")):
        call()


# --- The copy task --------------------------------------------------------------------------------


def test_copy_task_against_a_layout_built_by_hand_from_the_same_bits():
    """Inputs: the T vectors, then the delimiter channel at step T, then blanks; targets: zeros,
    then the same T vectors from step T + 1; the mask marks exactly those T steps."""
    n, T, bits = 3, 4, 5
    x, y, mask = copy_task(n, T, bits, seed=7)
    assert x.dtype == y.dtype == torch.float32 and mask.dtype == torch.bool
    drawn = torch.randint(0, 2, (n, T, bits), generator=torch.Generator().manual_seed(7))
    for k in range(n):
        for t in range(2 * T + 1):
            want_x = [0.0] * (bits + 1)
            want_y = [0.0] * bits
            if t < T:
                want_x[:bits] = drawn[k, t].tolist()
            if t == T:
                want_x[bits] = 1.0
            if t > T:
                want_y = drawn[k, t - T - 1].tolist()
            assert x[k, t].tolist() == want_x and y[k, t].tolist() == want_y
    assert mask.tolist() == [t > T for t in range(2 * T + 1)]


def test_copy_task_bits_are_fair_coins_and_the_seed_matters():
    """The bits are 0 or 1 with frequency about 1/2; another seed draws other bits; a
    Generator is used as given (two calls on one generator continue its stream)."""
    x, _, _ = copy_task(200, 10, 8, seed=0)
    bits = x[:, :10, :8]
    assert set(bits.unique().tolist()) == {0.0, 1.0}
    assert abs(float(bits.mean()) - 0.5) < 0.02                          # 16 000 coins: sd 0.004
    assert not torch.equal(x, copy_task(200, 10, 8, seed=1)[0])
    assert torch.equal(x, copy_task(200, 10, 8, seed=0)[0])
    g = torch.Generator().manual_seed(3)
    first, second = copy_task(2, 3, 4, seed=g)[0], copy_task(2, 3, 4, seed=g)[0]
    assert torch.equal(first, copy_task(2, 3, 4, seed=3)[0])
    assert not torch.equal(first, second)
    assert copy_task(1, 2)[0].shape == (1, 5, 9)                # n_bits = 8 by default
    assert torch.equal(copy_task(2, 3)[0], copy_task(2, 3, seed=0)[0])


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0, "length": 2}, "n must be an int >= 1, got 0"),
    ({"n": True, "length": 2}, "n must be an int >= 1, got True"),
    ({"n": 2.0, "length": 2}, "n must be an int >= 1, got 2.0"),
    ({"n": 2, "length": 0}, "length must be an int >= 1, got 0"),
    ({"n": 2, "length": False}, "length must be an int >= 1, got False"),
    ({"n": 2, "length": 2, "n_bits": 0}, "n_bits must be an int >= 1, got 0"),
    ({"n": 2, "length": 2, "n_bits": "8"}, "n_bits must be an int >= 1, got '8'"),
    ({"n": 2, "length": 2, "seed": -1},
     "seed must be an int >= 0 or a torch.Generator, got -1"),
    ({"n": 2, "length": 2, "seed": True},
     "seed must be an int >= 0 or a torch.Generator, got True"),
    ({"n": 2, "length": 2, "seed": 1.5},
     "seed must be an int >= 0 or a torch.Generator, got 1.5"),
])
def test_copy_task_refuses_bad_arguments_in_full(kwargs, message):
    """Each size must be an int >= 1 (not a bool), the seed an int >= 0 or a Generator."""
    with pytest.raises(ValueError, match=_full(message)):
        copy_task(**kwargs)


def test_copy_task_accepts_the_smallest_sizes_and_seed_zero():
    """n = length = n_bits = 1 and seed = 0 are valid (the bounds are inclusive)."""
    x, y, mask = copy_task(1, 1, 1, seed=0)
    assert x.shape == (1, 3, 2) and y.shape == (1, 3, 1) and mask.tolist() == [False, False, True]


def _bce_loop(logits, targets, mask):
    total, count = 0.0, 0
    for k in range(logits.shape[0]):
        for t in range(logits.shape[1]):
            if not mask[t]:
                continue
            for j in range(logits.shape[2]):
                z, y = float(logits[k, t, j]), float(targets[k, t, j])
                p = 1 / (1 + math.exp(-z))
                total -= y * math.log(p) + (1 - y) * math.log(1 - p)
                count += 1
    return total / count


def test_copy_loss_is_the_mean_bit_cross_entropy_on_the_scored_steps_only():
    """Nats per bit, averaged over the masked steps; what is predicted before them is ignored."""
    _, y, mask = copy_task(2, 3, 4, seed=1)
    logits = _rand(2, 7, 4, seed=8)
    got = copy_loss(logits, y.double(), mask)
    assert float(got) == pytest.approx(_bce_loop(logits, y, mask), rel=1e-12)
    logits[:, ~mask] = 100.0                                       # unscored steps: no effect
    assert float(copy_loss(logits, y.double(), mask)) == pytest.approx(float(got),
                                                                                  rel=1e-12)
    with pytest.raises(ValueError, match=_full("logits must have the targets' shape (2, 7, 4), "
                                               "got (2, 7, 5)")):
        copy_loss(torch.zeros(2, 7, 5), y, mask)


def test_copy_accuracy_counts_bits_and_whole_sequences_by_hand():
    """bits: the fraction of scored bits whose sign matches; sequences: the fraction with no
    wrong bit. A logit of exactly 0 predicts 0 (p = 1/2 is not above 1/2)."""
    _, y, mask = copy_task(4, 3, 2, seed=2)
    logits = 5 * (2 * y - 1)
    logits[:, ~mask] = -5 * (2 * torch.rand(4, 4, 2) - 1).sign()  # wrong unscored bits: ignored
    assert copy_accuracy(logits, y, mask) == {"bits": 1.0, "sequences": 1.0}
    logits[0, 4, 0] *= -1                                           # sequence 0: one wrong bit
    logits[1, 5, 1] *= -1                                           # sequence 1: two wrong bits
    logits[1, 6, 0] *= -1
    acc = copy_accuracy(logits, y, mask)
    assert acc == {"bits": pytest.approx(1 - 3 / 24, abs=1e-7), "sequences": 0.5}
    zeros = torch.zeros(1, 3, 1)                                    # logit 0 -> predicts bit 0
    one_step = torch.tensor([False, False, True])
    assert copy_accuracy(zeros, zeros, one_step)["bits"] == 1.0
    assert copy_accuracy(zeros, torch.ones(1, 3, 1), one_step)["bits"] == 0.0
    half = torch.full((1, 3, 1), 0.5)                               # target 0.5 is not bit 1
    assert copy_accuracy(zeros, half, one_step)["bits"] == 1.0
    assert copy_accuracy(torch.ones(1, 3, 1), half, one_step)["bits"] == 0.0


# --- The NTM model: a float64 loop from Graves et al. (2014), §3 ----------------------------------


def _softplus(v):
    return math.log1p(math.exp(v))


def _sigmoid(v):
    return 1 / (1 + math.exp(-v))


def _softmax(v):
    top = max(v)
    e = [math.exp(x - top) for x in v]
    return [x / sum(e) for x in e]


def _affine(lin, v):
    W, b = lin.weight.tolist(), lin.bias.tolist()
    return [sum(wij * vj for wij, vj in zip(row, v, strict=True)) + bi
            for row, bi in zip(W, b, strict=True)]


def _head(raw, m, writes):
    """The head's parameters, squashed as §3.1–3.3 and the module's docstring say."""
    key, rest = raw[:m], raw[m:]
    p = {"key": key, "beta": _softplus(rest[0]), "g": _sigmoid(rest[1]),
         "s": _softmax(rest[2:5]), "gamma": 1 + _softplus(rest[5])}
    if writes:
        p["erase"] = [_sigmoid(v) for v in rest[6:6 + m]]
        p["add"] = [math.tanh(v) for v in rest[6 + m:6 + 2 * m]]
    return p


def _address(M, w_prev, p):
    """Content (cosine, +1e-8 in the denominator), gate, shift by −1/0/+1, sharpen (+1e-8)."""
    n, k = len(M), p["key"]
    k_norm = math.sqrt(sum(v * v for v in k))
    cos = [sum(a * b for a, b in zip(row, k, strict=True))
           / (math.sqrt(sum(a * a for a in row)) * k_norm + 1e-8) for row in M]
    wc = _softmax([p["beta"] * c for c in cos])
    wg = [p["g"] * a + (1 - p["g"]) * b for a, b in zip(wc, w_prev, strict=True)]
    shifted = [sum(wg[(i - shift) % n] * p["s"][idx] for idx, shift in enumerate((-1, 0, 1)))
               for i in range(n)]
    powered = [(v + 1e-8) ** p["gamma"] for v in shifted]
    return [v / sum(powered) for v in powered]


def _lstm_cell(cell, inp, h, c):
    """PyTorch's LSTMCell gate order: input, forget, cell, output."""
    z = [a + b for a, b in zip(_affine_parts(cell.weight_ih, cell.bias_ih, inp),
                               _affine_parts(cell.weight_hh, cell.bias_hh, h), strict=True)]
    d = len(h)
    i, f, g, o = (z[q * d:(q + 1) * d] for q in range(4))
    c = [_sigmoid(fq) * cq + _sigmoid(iq) * math.tanh(gq)
         for iq, fq, gq, cq in zip(i, f, g, c, strict=True)]
    h = [_sigmoid(oq) * math.tanh(cq) for oq, cq in zip(o, c, strict=True)]
    return h, c


def _affine_parts(W, b, v):
    return [sum(wij * vj for wij, vj in zip(row, v, strict=True)) + bi
            for row, bi in zip(W.tolist(), b.tolist(), strict=True)]


def _ntm_loop(model, x):
    """The NTM of the module's docstring, one sequence at a time, in Python floats."""
    cfg = model.config
    n, m, d = cfg.n_slots, cfg.slot_width, cfg.d_controller
    ys, writes, reads = [], [], []
    for seq in x.tolist():
        M = [[1e-6] * m for _ in range(n)]
        w_w, w_r = [1.0] + [0.0] * (n - 1), [1.0] + [0.0] * (n - 1)
        r, h, c = [0.0] * m, [0.0] * d, [0.0] * d
        out = ([], [], [])
        for x_t in seq:
            h, c = _lstm_cell(model.controller, x_t + r, h, c)
            p = _head(_affine(model.write_head, h), m, True)
            w_w = _address(M, w_w, p)
            M = [[Mi[j] * (1 - w_w[i] * p["erase"][j]) + w_w[i] * p["add"][j] for j in range(m)]
                 for i, Mi in enumerate(M)]
            p = _head(_affine(model.read_head, h), m, False)
            w_r = _address(M, w_r, p)
            r = [sum(w_r[i] * M[i][j] for i in range(n)) for j in range(m)]
            for lst, v in zip(out, (_affine(model.output, h + r), w_w, w_r), strict=True):
                lst.append(v)
        for lst, v in zip((ys, writes, reads), out, strict=True):
            lst.append(v)
    return tuple(torch.tensor(v, dtype=torch.float64) for v in (ys, writes, reads))


def test_the_ntm_matches_a_float64_loop_of_the_papers_equations():
    """Controller, write head (address, erase, add), read head (address on the *new* memory,
    read), output from [h, r]; initial memory 1e-6, both weightings on slot 0, read vector 0."""
    torch.manual_seed(1)
    model = NTM(3, 2, d_controller=5, n_slots=6, slot_width=4).double()
    with torch.no_grad():                   # larger weights: sharper, more varied addressing
        for prm in model.parameters():
            prm.mul_(3)
    x = _rand(2, 4, 3, seed=9)
    with torch.no_grad():
        y, w_write, w_read = model(x, return_weights=True)
        plain = model(x)
    want_y, want_w, want_r = _ntm_loop(model, x)
    assert torch.allclose(w_write, want_w, atol=1e-10, rtol=0)
    assert torch.allclose(w_read, want_r, atol=1e-10, rtol=0)
    assert torch.allclose(y, want_y, atol=1e-10, rtol=0) and torch.equal(plain, y)
    assert float((want_w[:, 1:] - want_w[:, :-1]).abs().max()) > 0.05   # the heads do move


def test_ntm_step_state_is_the_memory_weightings_read_vector_and_controller():
    """One step from the initial state: the returned state holds the written memory, both new
    weightings, the read vector r = Σ w^r(i) M(i) and the controller's (h, c)."""
    torch.manual_seed(2)
    model = NTM(2, 3, d_controller=4, n_slots=5, slot_width=3).double()
    x = _rand(1, 2, seed=10)
    with torch.no_grad():
        y, state = model.step(x, model.initial_state(1))
    h, c = _lstm_cell(model.controller, x[0].tolist() + [0.0] * 3, [0.0] * 4, [0.0] * 4)
    assert torch.allclose(state["controller"][0], torch.tensor([h], dtype=torch.float64))
    assert torch.allclose(state["controller"][1], torch.tensor([c], dtype=torch.float64))
    r = (state["w_read"][0, :, None] * state["memory"][0]).sum(0)
    assert torch.allclose(state["read"][0], r, atol=1e-14)
    assert torch.allclose(y, model.output(torch.cat([state["controller"][0], state["read"]], -1)))
    assert set(state) == {"memory", "w_write", "w_read", "read", "controller"}


def test_initial_state_is_a_tiny_constant_memory_and_weightings_on_slot_zero():
    """Collier & Beel's initialisation: M = 1e-6, w^w = w^r = one-hot on slot 0 (separate
    tensors), r = 0, h = c = 0 (separate tensors), all on the device asked for."""
    assert MEMORY_INIT == 1e-6
    model = NTM(2, 3, d_controller=4, n_slots=5, slot_width=3)
    s = model.initial_state(2)
    assert s["memory"].shape == (2, 5, 3) and (s["memory"] == 1e-6).all()
    one_hot = torch.tensor([[1.0, 0, 0, 0, 0]] * 2)
    assert torch.equal(s["w_write"], one_hot) and torch.equal(s["w_read"], one_hot)
    assert s["w_write"] is not s["w_read"]
    assert torch.equal(s["read"], torch.zeros(2, 3))
    h, c = s["controller"]
    assert torch.equal(h, torch.zeros(2, 4)) and torch.equal(c, torch.zeros(2, 4)) and h is not c
    meta = model.initial_state(1, device="meta")
    tensors = [meta["memory"], meta["w_write"], meta["w_read"], meta["read"], *meta["controller"]]
    assert all(t.device.type == "meta" for t in tensors)
    double = model.double().initial_state(1)             # the parameters' dtype, not float32
    assert all(t.dtype == torch.float64 for t in [double["memory"], double["w_write"],
                                                  double["read"], *double["controller"]])


def test_the_ntm_runs_on_the_device_of_its_input():
    """forward builds its initial state on x's device (here the meta device, shapes only)."""
    model = NTM(3, 2, d_controller=4, n_slots=5, slot_width=3).to("meta")
    y, w_write, w_read = model(torch.zeros(2, 4, 3, device="meta"), return_weights=True)
    assert y.device.type == "meta" and y.shape == (2, 4, 2)
    assert w_write.shape == w_read.shape == (2, 4, 5)


def test_head_parameters_by_hand():
    """raw = [key (m), β, g, s (3), γ, erase (m), add (m)], squashed by softplus, sigmoid,
    softmax, 1 + softplus, sigmoid and tanh."""
    m = 2
    raw = torch.tensor([[0.5, -1.5, 0.3, -0.7, 1.0, 2.0, -1.0, 0.4, 3.0, -2.0, 0.9, -0.6]],
                       dtype=torch.float64)
    p = head_parameters(raw, m, writes=True)
    want = _head(raw[0].tolist(), m, True)
    assert set(p) == {"key", "beta", "g", "s", "gamma", "erase", "add"}
    for name, value in want.items():
        shape = (1,) if name in ("beta", "g", "gamma") else (1, len(value))
        value = torch.tensor(value if len(shape) == 2 else [value], dtype=torch.float64)
        assert p[name].shape == shape and torch.allclose(p[name], value.view(shape),
                                                         atol=1e-14), name
    read = head_parameters(raw[:, :m + 6], m, writes=False)
    assert set(read) == {"key", "beta", "g", "s", "gamma"}
    for name in read:
        assert torch.equal(read[name], p[name]), name


@pytest.mark.parametrize("raw, m, writes, message", [
    (torch.zeros(12), 2, True, "raw must have shape (b, 12) for m = 2, got (12,)"),
    (torch.zeros(1, 11), 2, True, "raw must have shape (b, 12) for m = 2, got (1, 11)"),
    (torch.zeros(1, 12), 2, False, "raw must have shape (b, 8) for m = 2, got (1, 12)"),
    (torch.zeros(1, 2, 8), 2, False, "raw must have shape (b, 8) for m = 2, got (1, 2, 8)"),
])
def test_head_parameters_refuse_a_wrong_width_in_full(raw, m, writes, message):
    """A read head needs m + 6 raw outputs, a write head 3m + 6, as a 2-D (b, width) tensor."""
    with pytest.raises(ValueError, match=_full(message)):
        head_parameters(raw, m, writes=writes)


def test_ntm_config_defaults_and_the_model_layers_shapes():
    """Defaults d = 64, n = 64, m = 16; the controller reads [x, r], the write head emits
    3m + 6 numbers, the read head m + 6, the output reads [h, r]."""
    assert NTMConfig(3, 2) == NTMConfig(3, 2, 64, 64, 16)
    model = NTM(3, 2)
    assert model.config == NTMConfig(3, 2, 64, 64, 16)
    assert model.initial_state(1)["memory"].shape == (1, 64, 16)
    model = NTM(3, 2, d_controller=5, n_slots=6, slot_width=4)
    assert model.config == NTMConfig(3, 2, 5, 6, 4)
    assert tuple(model.controller.weight_ih.shape) == (20, 7)
    assert tuple(model.write_head.weight.shape) == (18, 5)
    assert tuple(model.read_head.weight.shape) == (10, 5)
    assert tuple(model.output.weight.shape) == (2, 9)


@pytest.mark.parametrize("name", ["d_in", "d_out", "d_controller", "n_slots", "slot_width"])
@pytest.mark.parametrize("bad", [0, True, 2.0])
def test_ntm_config_refuses_each_bad_size_in_full(name, bad):
    """Each size must be a positive int (a bool or a float is refused), named in the error."""
    kwargs = {"d_in": 3, "d_out": 2, "d_controller": 4, "n_slots": 5, "slot_width": 3,
              name: bad}
    with pytest.raises(ValueError, match=_full(f"{name} must be a positive int, got {bad!r}")):
        NTMConfig(**kwargs)
    with pytest.raises(ValueError, match=_full(f"{name} must be a positive int, got {bad!r}")):
        NTM(**kwargs)
    assert NTMConfig(1, 1, 1, 1, 1).n_slots == 1                       # 1 is positive


@pytest.mark.parametrize("x, got", [
    (torch.zeros(2, 5, 4), "(2, 5, 4)"), (torch.zeros(5, 3), "(5, 3)"),
    ([[[0.0, 0.0, 0.0]]], "()"),
])
def test_ntm_forward_refuses_a_bad_input_in_full(x, got):
    """x must be a (b, l, d_in) tensor; the message shows d_in and what was given."""
    model = NTM(3, 2, d_controller=4, n_slots=5, slot_width=3)
    with pytest.raises(ValueError, match=_full(f"x must have shape (b, l, d_in) = (b, l, 3), "
                                               f"got {got}")):
        model(x)


# --- RAG: the marginals of Lewis et al. (2020) as loops over documents and tokens -----------------


def _rag_data(b=2, k=3, l=4, seed=11):
    scores = _rand(b, k, seed=seed)
    logp = torch.log_softmax(_rand(b, k, l, 5, seed=seed + 1), -1)[..., 0]
    return scores, logp


def _rag_loops(scores, logp):
    """log p(y|x) for RAG-sequence and RAG-token, and p(z|x, y) − p(z|x), in Python floats."""
    seq, tok, grad = [], [], []
    for s_row, lp in zip(scores.tolist(), logp.tolist(), strict=True):
        prior = _softmax(s_row)
        answer = [math.exp(sum(lp_z)) for lp_z in lp]                   # Π_t p(y_t | x, z)
        total = sum(pz * az for pz, az in zip(prior, answer, strict=True))
        seq.append(math.log(total))
        tok.append(sum(math.log(sum(prior[z] * math.exp(lp[z][t]) for z in range(len(lp))))
                       for t in range(len(lp[0]))))
        grad.append([pz * az / total - pz for pz, az in zip(prior, answer, strict=True)])
    return (torch.tensor(seq, dtype=torch.float64), torch.tensor(tok, dtype=torch.float64),
            torch.tensor(grad, dtype=torch.float64))


def test_rag_marginals_and_the_realm_gradient_against_the_loops():
    """RAG-sequence sums the documents out of the whole answer's probability, RAG-token out of
    each token's; REALM's gradient is posterior minus prior; rag_sequence_ref agrees in
    float64."""
    scores, logp = _rag_data()
    seq, tok, grad = _rag_loops(scores, logp)
    assert torch.allclose(rag.rag_sequence(scores, logp), seq, atol=1e-12, rtol=0)
    ref = rag.rag_sequence_ref(scores, logp)
    assert ref.dtype == torch.float64 and torch.allclose(ref, seq, atol=1e-12, rtol=0)
    assert torch.allclose(rag.rag_token(scores, logp), tok, atol=1e-12, rtol=0)
    assert torch.allclose(rag.realm_score_gradient(scores, logp), grad, atol=1e-12, rtol=0)
    assert not torch.allclose(seq, tok, atol=1e-3)                  # the two marginals differ


def test_rag_reference_loop_handles_float32_inputs_and_a_tiny_case_by_hand():
    """Two documents with prior (1/4, 3/4) (scores 0 and log 3); answers of one token with
    probabilities 1/2 and 1/6: p(y|x) = 1/8 + 1/8 = 1/4 for every formula."""
    scores = torch.tensor([[0.0, math.log(3)]])
    logp = torch.log(torch.tensor([[[0.5], [1 / 6]]]))
    for fn in (rag.rag_sequence, rag.rag_sequence_ref, rag.rag_token):
        assert float(fn(scores, logp)[0]) == pytest.approx(math.log(0.25), rel=1e-6)
    post_minus_prior = rag.realm_score_gradient(scores, logp)[0].tolist()
    assert post_minus_prior == pytest.approx([0.5 - 0.25, 0.5 - 0.75], abs=1e-6)


def test_rag_sequence_stays_finite_where_probabilities_underflow():
    """All in log space: answers of probability e^−2000 under every document give exactly the
    plain likelihood, −2000, for any prior (the documents agree), and a gradient of 0."""
    scores = _rand(2, 3, seed=12)
    logp = torch.full((2, 3, 4), -500.0, dtype=torch.float64)
    assert torch.allclose(rag.rag_sequence(scores, logp), torch.full((2,), -2000.0,
                                                                     dtype=torch.float64))
    assert torch.allclose(rag.rag_token(scores, logp), torch.full((2,), -2000.0,
                                                                  dtype=torch.float64))
    assert rag.realm_score_gradient(scores, logp).abs().max() < 1e-12


def test_a_log_probability_of_exactly_zero_is_accepted():
    """p = 1 is a probability: only a positive log-probability is refused."""
    scores, logp = _rag_data(b=1, k=2, l=2)
    logp[0, 0, 0] = 0.0
    for fn in (rag.rag_sequence, rag.rag_token, rag.realm_score_gradient):
        assert torch.isfinite(fn(scores, logp)).all()
    logp[0, 1, 1] = 1e-9
    for fn in (rag.rag_sequence, rag.rag_token, rag.realm_score_gradient):
        with pytest.raises(ValueError, match=_full("token_logprobs must be log-probabilities "
                                                   "(≤ 0), got a positive entry")):
            fn(scores, logp)


@pytest.mark.parametrize("fn", [rag.rag_sequence, rag.rag_token, rag.realm_score_gradient])
def test_rag_shape_and_type_errors_in_full(fn):
    """Each marginal names doc_scores (b, k) and token_logprobs (b, k, l) with the expected
    and given shapes, and refuses integer tensors by name."""
    with pytest.raises(ValueError, match=_full("doc_scores must have shape (b, k) = (?, ?), "
                                               "got (2, 3, 1)")):
        fn(torch.zeros(2, 3, 1), -torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match=_full("token_logprobs must have shape (b, k, l) = "
                                               "(2, 3, ?), got (2, 4, 4)")):
        fn(torch.zeros(2, 3), -torch.ones(2, 4, 4))
    with pytest.raises(ValueError, match=_full("token_logprobs must have shape (b, k, l) = "
                                               "(2, 3, ?), got (2, 3)")):
        fn(torch.zeros(2, 3), -torch.ones(2, 3))
    with pytest.raises(TypeError, match=_full("doc_scores must be a floating-point tensor "
                                              "(b, k), got Tensor torch.int64")):
        fn(torch.zeros(2, 3, dtype=torch.long), -torch.ones(2, 3, 4))
    with pytest.raises(TypeError, match=_full("token_logprobs must be a floating-point tensor "
                                              "(b, k, l), got Tensor torch.int64")):
        fn(torch.zeros(2, 3), -torch.ones(2, 3, 4, dtype=torch.long))


def test_fid_encodes_each_question_passage_pair_alone_with_a_cumulative_encoder():
    """With a cumulative sum along the length as the encoder, a pair's encoding depends on its
    own tokens only: the output is [cumsum(q, p_1), …, cumsum(q, p_k)], the encoder is
    called once on a (b · k, l_q + l_p, d) batch, and the batch rows stay apart."""
    calls = []

    def encoder(z):
        calls.append(tuple(z.shape))
        return z.cumsum(1)

    q, passages = _rand(2, 3, 4, seed=13), _rand(2, 5, 2, 4, seed=14)
    got = rag.fid_encode(encoder, q, passages)
    assert calls == [(10, 5, 4)] and got.shape == (2, 25, 4)
    for i in range(2):
        want = torch.cat([torch.cat([q[i], passages[i, j]]).cumsum(0) for j in range(5)])
        assert torch.allclose(got[i], want, atol=1e-14)


@pytest.mark.parametrize("q, passages, error, message", [
    (_Z(2, 3), _Z(2, 5, 2, 4), ValueError,
     "question must have shape (b, l_q, d) = (?, ?, ?), got (2, 3)"),
    (_Z(2, 3, 4), _Z(3, 5, 2, 4), ValueError,
     "passages must have shape (b, k, l_p, d) = (2, ?, ?, 4), got (3, 5, 2, 4)"),
    (_Z(2, 3, 4), _Z(2, 5, 2, 3), ValueError,
     "passages must have shape (b, k, l_p, d) = (2, ?, ?, 4), got (2, 5, 2, 3)"),
    (_Z(2, 3, 4), _Z(2, 5, 4), ValueError,
     "passages must have shape (b, k, l_p, d) = (2, ?, ?, 4), got (2, 5, 4)"),
    (_I[None], _Z(2, 5, 2, 3), TypeError,
     "question must be a floating-point tensor (b, l_q, d), got Tensor torch.int64"),
    (_Z(1, 2, 3), _I[None, None], TypeError,
     "passages must be a floating-point tensor (b, k, l_p, d), got Tensor torch.int64"),
])
def test_fid_refuses_bad_shapes_in_full(q, passages, error, message):
    """The question and the passages must share b and d; each is named in the error."""
    with pytest.raises(error, match=_full(message)):
        rag.fid_encode(lambda z: z, q, passages)


# --- The Compressive Transformer's memory (Rae et al. 2020), by loops over token indices ---------


def _compress_loop(x, rate, method, weight=None, bias=None):
    """f_c per block of c tokens and per channel: mean, max, or Σ_i W[:, :, i] x_i + b."""
    b, l, d = x.shape
    X = x.tolist()
    out = []
    for k in range(b):
        rows = []
        for s in range(l // rate):
            block = X[k][s * rate:(s + 1) * rate]
            if method == "mean":
                rows.append([sum(tok[j] for tok in block) / rate for j in range(d)])
            elif method == "max":
                rows.append([max(tok[j] for tok in block) for j in range(d)])
            else:
                W = weight.tolist()
                rows.append([sum(W[o][j][i] * block[i][j] for i in range(rate) for j in range(d))
                             + (0.0 if bias is None else float(bias[o])) for o in range(d)])
        out.append(rows)
    return torch.tensor(out, dtype=torch.float64).view(b, l // rate, d)


@pytest.mark.parametrize("method", ["mean", "max", "conv", "conv-no-bias"])
def test_compress_and_its_reference_against_the_loop(method):
    """Each compression function on blocks of c = 3 consecutive tokens (an asymmetric kernel:
    W_i multiplies the i-th token of the block); the reference loop agrees, also without
    a bias."""
    x = _rand(2, 9, 3, seed=15)
    weight, bias = _rand(3, 3, 3, seed=16), _rand(3, seed=17)
    if method == "conv-no-bias":
        method, bias = "conv", None
    elif method != "conv":
        weight = bias = None
    want = _compress_loop(x, 3, method, weight, bias)
    got = compressive.compress(x, 3, method, weight, bias)
    assert got.shape == (2, 3, 3) and torch.allclose(got, want, atol=1e-12, rtol=0)
    ref = compressive.compress_ref(x, 3, method, weight, bias)
    assert ref.dtype == torch.float64 and torch.allclose(ref, want, atol=1e-12, rtol=0)


def test_compress_by_hand_and_by_default_the_mean():
    """Blocks (1, 5), (2, 2), (−3, 7) of one channel: means 3, 2, 2; maxima 5, 2, 7; rate 1
    leaves the tokens as they are; the default method is the mean."""
    x = torch.tensor([[[1.0], [5.0], [2.0], [2.0], [-3.0], [7.0]]])
    assert compressive.compress(x, 2).flatten().tolist() == [3.0, 2.0, 2.0]
    assert compressive.compress(x, 2, "max").flatten().tolist() == [5.0, 2.0, 7.0]
    assert compressive.compress_ref(x, 2).flatten().tolist() == [3.0, 2.0, 2.0]
    for method in ("mean", "max"):
        assert torch.equal(compressive.compress(x, 1, method), x)
    assert compressive.compress(x, 6).flatten().tolist() == [pytest.approx(14 / 6, rel=1e-7)]
    assert compressive.METHODS == ("mean", "max", "conv")


@pytest.mark.parametrize("args, error, message", [
    ((_Z(1, 8, 2), 0), ValueError, "rate must be an int >= 1, got 0"),
    ((_Z(1, 8, 2), True), ValueError, "rate must be an int >= 1, got True"),
    ((_Z(1, 8, 2), 2.0), ValueError, "rate must be an int >= 1, got 2.0"),
    ((_Z(1, 10, 2), 4), ValueError, "the length must be a multiple of rate = 4, got 10"),
    ((_Z(1, 8, 2), 4, "median"), ValueError,
     "method must be one of ('mean', 'max', 'conv'), got 'median'"),
    ((_Z(1, 8, 2), 4, "conv", _Z(2, 2, 3)), ValueError,
     "weight must have shape (d, d, c) = (2, 2, 4), got (2, 2, 3)"),
    ((_Z(1, 8, 2), 4, "conv", _Z(3, 2, 4)), ValueError,
     "weight must have shape (d, d, c) = (2, 2, 4), got (3, 2, 4)"),
    ((_Z(1, 8, 2), 4, "conv"), TypeError,
     "weight must be a floating-point tensor (d, d, c), got NoneType "),
    ((_Z(8, 2), 4), ValueError, "x must have shape (b, l, d) = (?, ?, ?), got (8, 2)"),
    ((_I[None], 1), TypeError,
     "x must be a floating-point tensor (b, l, d), got Tensor torch.int64"),
])
def test_compress_refuses_bad_arguments_in_full(args, error, message):
    """The rate, the length, the method and the kernel are each checked and named."""
    with pytest.raises(error, match=_full(message)):
        compressive.compress(*args)


def _tiers_loop(stream, n_memory, n_cmemory, rate, segment, method="mean"):
    """The two tiers after the whole stream, by token index: memory is the last n_m tokens,
    cmemory the last n_cm blocks of c among the tokens before them (blocks counted from 0)."""
    l = stream.shape[1]
    n_mem = min(n_memory, l)
    n_old = l - n_mem
    blocks = [stream[:, s * rate:(s + 1) * rate] for s in range(n_old // rate)][-n_cmemory:]
    pool = (lambda blk: blk.mean(1)) if method == "mean" else (lambda blk: blk.amax(1))
    cmem = (torch.stack([pool(blk) for blk in blocks], 1) if blocks
            else stream.new_zeros(stream.shape[0], 0, stream.shape[2]))
    return stream[:, l - n_mem:], cmem


@pytest.mark.parametrize("n_memory, n_cmemory, rate, segment, method", [
    (8, 3, 2, 4, "mean"), (8, 3, 2, 4, "max"), (6, 10, 2, 2, "mean"), (40, 3, 2, 4, "mean"),
    (4, 1, 4, 4, "max"), (5, 2, 1, 3, "mean"),
])
def test_update_memory_over_a_stream_against_the_index_loop(n_memory, n_cmemory, rate, segment,
                                                             method):
    """Segment by segment, memory keeps the last n_m tokens exactly and cmemory the last n_cm
    compressed blocks of what fell out (fewer when fewer have fallen out)."""
    stream = _rand(2, 24, 3, seed=18)
    memory, cmemory = stream[:, :0], stream[:, :0]
    for chunk in stream.split(segment, dim=1):
        memory, cmemory = compressive.update_memory(memory, cmemory, chunk, n_memory=n_memory,
                                                    n_cmemory=n_cmemory, rate=rate,
                                                    method=method)
    want_m, want_c = _tiers_loop(stream, n_memory, n_cmemory, rate, segment, method)
    assert torch.equal(memory, want_m)
    assert cmemory.shape == want_c.shape and torch.allclose(cmemory, want_c, atol=1e-14)


def test_update_memory_passes_the_kernel_to_a_conv_compression():
    """method="conv" compresses what falls out with the given weight and bias."""
    memory, new = _rand(1, 4, 2, seed=19), _rand(1, 4, 2, seed=20)
    weight, bias = _rand(2, 2, 2, seed=21), _rand(2, seed=22)
    kept, cmem = compressive.update_memory(memory, memory[:, :0], new, n_memory=4, n_cmemory=5,
                                           rate=2, method="conv", weight=weight, bias=bias)
    assert torch.equal(kept, new)
    assert torch.allclose(cmem, _compress_loop(memory, 2, "conv", weight, bias), atol=1e-14)
    # nothing falls out: the convolution is not run on an empty block (it would fail)
    kept, cmem = compressive.update_memory(memory, memory[:, :0], new, n_memory=8, n_cmemory=5,
                                           rate=2, method="conv", weight=weight, bias=bias)
    assert torch.equal(kept, torch.cat([memory, new], 1)) and cmem.shape == (1, 0, 2)


@pytest.mark.parametrize("args, error, message", [
    ((_Z(2, 3), _Z(2, 0, 3), _Z(2, 1, 3)), ValueError,
     "memory must have shape (b, n_m, d) = (?, ?, ?), got (2, 3)"),
    ((_Z(2, 1, 3), _Z(1, 0, 3), _Z(2, 1, 3)), ValueError,
     "cmemory must have shape (b, n_cm, d) = (2, ?, 3), got (1, 0, 3)"),
    ((_Z(2, 1, 3), _Z(2, 0, 4), _Z(2, 1, 3)), ValueError,
     "cmemory must have shape (b, n_cm, d) = (2, ?, 3), got (2, 0, 4)"),
    ((_Z(2, 1, 3), _Z(2, 0, 3), _Z(3, 1, 3)), ValueError,
     "new must have shape (b, s, d) = (2, ?, 3), got (3, 1, 3)"),
    ((_Z(2, 1, 3), _Z(2, 0, 3), _Z(2, 1, 2)), ValueError,
     "new must have shape (b, s, d) = (2, ?, 3), got (2, 1, 2)"),
    ((_I[None], _Z(2, 0, 3), _Z(2, 1, 3)), TypeError,
     "memory must be a floating-point tensor (b, n_m, d), got Tensor torch.int64"),
    ((_Z(1, 2, 3), _I[None], _Z(1, 1, 3)), TypeError,
     "cmemory must be a floating-point tensor (b, n_cm, d), got Tensor torch.int64"),
    ((_Z(1, 2, 3), _Z(1, 0, 3), _I[None]), TypeError,
     "new must be a floating-point tensor (b, s, d), got Tensor torch.int64"),
])
def test_update_memory_refuses_bad_shapes_in_full(args, error, message):
    """memory, cmemory and new must share b and d; each is named with its letters."""
    with pytest.raises(error, match=_full(message)):
        compressive.update_memory(*args, n_memory=2, n_cmemory=2, rate=1)


def _recall_loop(*, rate, n_memory, n_cmemory, method, length, d, vocab, segment, trials, seed):
    """distant_recall from its definition: the same seeded table and stream, then for every
    distance the tier that holds the token and whether the token is read back from it."""
    g = torch.Generator().manual_seed(seed)
    table = F.normalize(torch.randn(vocab, d, generator=g), dim=-1)
    ids = torch.randint(vocab, (trials, length), generator=g)
    memory, cmemory = _tiers_loop(table[ids], n_memory, n_cmemory, rate, segment, method)
    n_mem, n_old = memory.shape[1], cmemory.shape[1] * rate
    out = [0.0] * length
    for k in range(trials):
        for back in range(length):
            pos = length - 1 - back
            token = int(ids[k, pos])
            if back < n_mem:                                       # exact: nearest embedding
                hit = int((table @ memory[k, n_mem - 1 - back]).argmax()) == token
            elif back < n_mem + n_old:                             # compressed: among the top c
                slot = (pos - (length - n_mem - n_old)) // rate
                hit = token in (table @ cmemory[k, slot]).topk(rate).indices.tolist()
            else:
                hit = False
            out[back] += hit / trials
    return torch.tensor(out)


@pytest.mark.parametrize("method, rate, n_memory, n_cmemory", [
    ("mean", 4, 16, 8), ("max", 4, 16, 8), ("mean", 2, 8, 4), ("mean", 1, 8, 8),
])
def test_distant_recall_against_the_definition(method, rate, n_memory, n_cmemory):
    """Recall by distance: exact within the last n_m tokens, top-c of the compressed slot
    for the n_cm · c tokens before, 0 beyond; c = 1 compresses nothing away."""
    kwargs = dict(rate=rate, n_memory=n_memory, n_cmemory=n_cmemory, method=method,
                  length=64, d=16, vocab=32, segment=8, trials=3, seed=4)
    got = compressive.distant_recall(**kwargs)
    assert got.shape == (64,)
    assert torch.allclose(got, _recall_loop(**kwargs), atol=1e-6)
    if rate == 1:
        assert got[:16].tolist() == [1.0] * 16 and got[16:].eq(0).all()
    else:
        assert 0 < float(got[n_memory:n_memory + n_cmemory * rate].mean()) < 1


def test_distant_recall_defaults_are_the_documented_ones():
    """Defaults: method mean, length 512, d 64, vocab 256, segment 16, 8 trials, seed 0."""
    got = compressive.distant_recall(rate=4, n_memory=64, n_cmemory=32)
    want = _recall_loop(rate=4, n_memory=64, n_cmemory=32, method="mean", length=512, d=64,
                        vocab=256, segment=16, trials=8, seed=0)
    assert torch.allclose(got, want, atol=1e-6)


def test_distant_recall_refuses_a_convolution_in_full():
    """A convolution must be trained, so the recall experiment takes mean or max only."""
    with pytest.raises(ValueError, match=_full("method must be 'mean' or 'max' here (a "
                                               "convolution must be trained)")):
        compressive.distant_recall(rate=2, n_memory=4, n_cmemory=2, method="conv")
