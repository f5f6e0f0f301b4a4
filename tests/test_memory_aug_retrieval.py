"""sseq.memory_aug: the kNN-LM (search, vote, interpolation), RAG's marginals and REALM's
gradient, and the Compressive Transformer's memory, against loops and hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from sseq.memory_aug import compressive, knn_lm, rag


def _rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- kNN-LM ---------------------------------------------------------------------------------


def test_nearest_is_the_sorted_brute_force_search():
    q, keys = _rand(7, 5, dtype=torch.float32), _rand(300, 5, seed=1, dtype=torch.float32)
    d, i = knn_lm.nearest(q, keys, 4, chunk=64)
    full = ((q[:, None] - keys[None]) ** 2).sum(-1)                    # (q, N)
    want_d, want_i = full.sort(dim=1)
    assert torch.equal(i, want_i[:, :4])
    assert torch.allclose(d, want_d[:, :4], rtol=1e-4, atol=1e-4)


def test_nearest_by_size_answers_for_every_prefix_of_the_datastore():
    q, keys = _rand(5, 3, dtype=torch.float32), _rand(200, 3, seed=2, dtype=torch.float32)
    for size, (_, i) in zip((10, 64, 200), knn_lm.nearest_by_size(q, keys, 3, (10, 64, 200),
                                                                  chunk=17), strict=True):
        _, i_want = knn_lm.nearest(q, keys[:size], 3)
        assert torch.equal(i, i_want) and (i < size).all()
    with pytest.raises(ValueError, match=r"sizes must lie in \[k, N\] = \[3, 200\], got \[2"):
        knn_lm.nearest_by_size(q, keys, 3, (2, 50))


def test_knn_distribution_matches_the_loop():
    d = _rand(4, 6).abs() * 3
    v = torch.randint(0, 5, (4, 6), generator=torch.Generator().manual_seed(0))
    got = knn_lm.knn_distribution(d, v, 5, temperature=2.0)
    assert torch.allclose(got, knn_lm.knn_distribution_ref(d, v, 5, 2.0), atol=1e-12)
    assert torch.allclose(got.sum(-1), torch.ones(4, dtype=torch.float64))


def test_interpolation_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)  # p_LM = (1/4, 3/4)
    p_knn = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    got = knn_lm.interpolate(logits, p_knn, 0.2).exp()
    assert got[0].tolist() == pytest.approx([0.2 + 0.8 / 4, 0.8 * 3 / 4], rel=1e-12)
    assert torch.allclose(knn_lm.interpolate(logits, p_knn, 0.0).exp(),
                          torch.tensor([[0.25, 0.75]], dtype=torch.float64))
    with pytest.raises(ValueError, match="lam must be in \\[0, 1\\], got 1.5"):
        knn_lm.interpolate(logits, p_knn, 1.5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        knn_lm.knn_distribution(torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.long), 3, 0.0)
    with pytest.raises(ValueError, match=r"neighbours must be integer tokens of shape \(1, 2\)"):
        knn_lm.knn_distribution(torch.zeros(1, 2), torch.zeros(1, 3, dtype=torch.long), 3)


def test_lm_features_are_what_the_head_reads():
    from sseq.lm import GPT, LSTMLM

    ids = torch.randint(0, 11, (3 * 8 + 1,), generator=torch.Generator().manual_seed(0))
    for model in (GPT(11, 8, 1, 2, 16), LSTMLM(11, 16, 1)):
        feats, targets, logits = knn_lm.lm_features(model, ids, 8, batch_size=2)
        assert feats.shape == (24, 16) and torch.equal(targets, ids[1:25])
        with torch.no_grad():
            want = model(ids[:24].view(3, 8)).flatten(0, 1)
        assert torch.allclose(logits, want, atol=1e-5)
    with pytest.raises(TypeError, match="model must be a sseq.lm.GPT or LSTMLM"):
        knn_lm.lm_features(torch.nn.Linear(2, 2), ids, 8)


def test_lm_features_of_chosen_windows_are_those_windows_rows():
    from sseq.lm import GPT

    ids = torch.randint(0, 11, (4 * 8 + 1,), generator=torch.Generator().manual_seed(1))
    model = GPT(11, 8, 1, 2, 16)
    feats, targets, logits = knn_lm.lm_features(model, ids, 8)
    got = knn_lm.lm_features(model, ids, 8, windows=[2, 0])
    rows = torch.cat([torch.arange(16, 24), torch.arange(0, 8)])
    for a, b in zip(got, (feats[rows], targets[rows], logits[rows]), strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match=r"windows must be 1-d indices in \[0, 4\), got \[4\]"):
        knn_lm.lm_features(model, ids, 8, windows=[4])


# --- RAG and REALM ------------------------------------------------------------------------------


def _rag_inputs(seed=0, b=3, k=4, l=5):
    return _rand(b, k, seed=seed), torch.log_softmax(_rand(b, k, l, 7, seed=seed + 1), -1)[..., 0]


def test_rag_sequence_matches_the_loop_and_rag_token_the_formula():
    scores, logp = _rag_inputs()
    assert torch.allclose(rag.rag_sequence(scores, logp), rag.rag_sequence_ref(scores, logp),
                          atol=1e-10)
    prior = torch.softmax(scores, -1)
    want = sum(math.log(sum(float(prior[0, z] * logp[0, z, t].exp()) for z in range(4)))
               for t in range(5))
    assert float(rag.rag_token(scores, logp)[0]) == pytest.approx(want, rel=1e-10)


def test_one_document_makes_both_marginals_the_plain_likelihood():
    scores, logp = _rag_inputs(k=1)
    assert torch.allclose(rag.rag_sequence(scores, logp), logp.sum((1, 2)))
    assert torch.allclose(rag.rag_token(scores, logp), logp.sum((1, 2)))


def test_realm_gradient_is_posterior_minus_prior():
    scores, logp = _rag_inputs(seed=3)
    scores.requires_grad_()
    rag.rag_sequence(scores, logp).sum().backward()
    assert torch.allclose(scores.grad, rag.realm_score_gradient(scores.detach(), logp),
                          atol=1e-12)
    with pytest.raises(ValueError, match="token_logprobs must be log-probabilities"):
        rag.rag_sequence(scores, -logp)
    with pytest.raises(ValueError, match=r"token_logprobs must have shape \(b, k, l\) = "
                                         r"\(3, 4, \?\)"):
        rag.rag_token(scores, logp[:, :2])


# --- Compressive memory -------------------------------------------------------------------------


@pytest.mark.parametrize("method", compressive.METHODS)
def test_compress_matches_the_loop(method):
    x = _rand(2, 12, 3)
    w, b = (_rand(3, 3, 4, seed=1), _rand(3, seed=2)) if method == "conv" else (None, None)
    got = compressive.compress(x, 4, method, w, b)
    assert got.shape == (2, 3, 3)
    assert torch.allclose(got, compressive.compress_ref(x, 4, method, w, b), atol=1e-12)


def test_compress_bad_input():
    with pytest.raises(ValueError, match="the length must be a multiple of rate = 4, got 10"):
        compressive.compress(torch.zeros(1, 10, 2), 4)
    with pytest.raises(ValueError, match="method must be one of"):
        compressive.compress(torch.zeros(1, 8, 2), 4, "median")
    with pytest.raises(ValueError, match=r"weight must have shape \(d, d, c\) = \(2, 2, 4\)"):
        compressive.compress(torch.zeros(1, 8, 2), 4, "conv", torch.zeros(2, 2, 3))


def test_update_memory_keeps_the_recent_exactly_and_compresses_what_falls_out():
    x = torch.arange(24, dtype=torch.float64).view(1, 24, 1)
    memory, cmemory = x[:, :0], x[:, :0]
    for chunk in x.split(4, dim=1):
        memory, cmemory = compressive.update_memory(memory, cmemory, chunk, n_memory=8,
                                                    n_cmemory=3, rate=2)
    assert memory.flatten().tolist() == list(range(16, 24))
    assert cmemory.flatten().tolist() == [10.5, 12.5, 14.5]   # means of (10,11) (12,13) (14,15)


def test_distant_recall_is_exact_in_memory_and_zero_beyond_both_tiers():
    r = compressive.distant_recall(rate=4, n_memory=16, n_cmemory=8, length=96, trials=4)
    assert r[:16].tolist() == [1.0] * 16 and r[16 + 32:].eq(0).all()
    assert 0 < float(r[16:48].mean()) < 1 + 1e-9


def test_fid_encodes_each_pair_alone_and_concatenates():
    from sseq.lm.gpt import Block, GPTConfig

    torch.manual_seed(0)
    block = Block(GPTConfig(2, 64, 1, 2, 8), fused=False)

    def encoder(x):
        return block(x)[0]

    q, passages = torch.randn(2, 3, 8), torch.randn(2, 4, 5, 8)
    got = rag.fid_encode(encoder, q, passages)
    assert got.shape == (2, 4 * 8, 8)
    for j in range(4):  # passage j's slice is the encoding of (question, passage j) alone
        want = encoder(torch.cat([q, passages[:, j]], dim=1))
        assert torch.allclose(got[:, 8 * j:8 * (j + 1)], want, atol=1e-5)
    joint = encoder(torch.cat([torch.cat([q, passages[:, j]], 1) for j in range(4)], dim=1))
    assert torch.allclose(got[:, :8], joint[:, :8], atol=1e-5)   # the first pair sees no other
    assert not torch.allclose(got[:, 8:16], joint[:, 8:16], atol=1e-3)  # here attention crossed
    with pytest.raises(ValueError, match=r"passages must have shape \(b, k, l_p, d\)"):
        rag.fid_encode(encoder, q, passages[..., :4])


# --- mutation-testing gaps (issue 18): argument checks at their boundaries, exact messages ----


def test_k_and_chunk_of_one_are_accepted_and_give_the_brute_force_answer():
    """k = 1 and chunk = 1 (the smallest allowed) work; chunk smaller than k keeps the running
    top-k right; unsorted sizes are answered in sorted order; size = k and size = N are allowed."""
    q, keys = _rand(3, 4, dtype=torch.float32), _rand(40, 4, seed=3, dtype=torch.float32)
    full = ((q[:, None] - keys[None]) ** 2).sum(-1)
    want_d, want_i = full.sort(dim=1)
    d, i = knn_lm.nearest(q, keys, 1, chunk=1)
    assert torch.equal(i, want_i[:, :1])
    assert torch.allclose(d, want_d[:, :1], rtol=1e-5, atol=1e-5)
    (d3, i3), (d40, i40) = knn_lm.nearest_by_size(q, keys, 3, (40, 3), chunk=2)
    assert torch.equal(i40, want_i[:, :3]) and torch.allclose(d40, want_d[:, :3], atol=1e-5)
    want_small = ((q[:, None] - keys[None, :3]) ** 2).sum(-1).sort(dim=1)
    assert torch.equal(i3, want_small.indices)
    assert torch.allclose(d3, want_small.values, atol=1e-5)


def test_distances_to_a_nearby_key_are_clamped_at_zero():
    """Queries 1e-3 from keys of norm ~100: the expanded ‖q‖² − 2 q·k + ‖k‖² rounds below
    zero in float32 for several of them (checked here), and the search reports 0 instead, never
    a negative squared distance; the true distance (float64 loop) is 3e-6, within rounding."""
    keys = _rand(50, 3, seed=4, dtype=torch.float32) * 100
    q = keys + 1e-3
    expanded = ((q ** 2).sum(-1) - 2 * (q * keys).sum(-1) + (keys ** 2).sum(-1))
    assert (expanded < 0).any()                                # the case the clamp is for
    d, i = knn_lm.nearest(q, keys, 1)
    assert torch.equal(i[:, 0], torch.arange(50))
    assert (d >= 0).all() and (d <= 0.05).all()
    exact = sum((float(a) - float(b)) ** 2 for a, b in zip(q[0], keys[0], strict=True))
    assert exact == pytest.approx(3e-6, rel=0.1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(k=0), "k must be an int >= 1, got 0"),
    (dict(k=True), "k must be an int >= 1, got True"),
    (dict(k=2.0), "k must be an int >= 1, got 2.0"),
    (dict(k=2, chunk=0), "chunk must be an int >= 1, got 0"),
    (dict(k=2, sizes=()), "sizes must lie in [k, N] = [2, 5], got []"),
    (dict(k=2, sizes=(2, 6)), "sizes must lie in [k, N] = [2, 5], got [2, 6]"),
    (dict(k=2, sizes=(5, 1)), "sizes must lie in [k, N] = [2, 5], got [1, 5]"),
])
def test_nearest_by_size_refuses_bad_arguments_in_full(kwargs, message):
    """Each refused k, chunk and sizes, with the whole message (sizes shown sorted)."""
    kwargs = {"sizes": (5,)} | kwargs
    with pytest.raises(ValueError) as info:
        knn_lm.nearest_by_size(torch.zeros(2, 3), torch.zeros(5, 3), **kwargs)
    assert str(info.value) == message


def test_knn_and_interpolate_refuse_bad_arguments_in_full():
    """Float neighbours, a zero vocabulary, a negative temperature, λ < 0 and a p_kNN of the
    wrong shape are refused naming the argument, with the whole message."""
    d, v = torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.long)
    cases = [
        (lambda: knn_lm.knn_distribution(d, v.double(), 3),
         "neighbours must be integer tokens of shape (1, 2), got torch.float64 (1, 2)"),
        (lambda: knn_lm.knn_distribution(d, v, 0), "vocab_size must be an int >= 1, got 0"),
        (lambda: knn_lm.knn_distribution(d, v, 3, -1.0), "temperature must be > 0, got -1.0"),
        (lambda: knn_lm.interpolate(torch.zeros(1, 3), torch.ones(1, 3), -0.1),
         "lam must be in [0, 1], got -0.1"),
        (lambda: knn_lm.interpolate(torch.zeros(1, 3), torch.ones(1, 2), 0.5),
         "p_knn must have shape (q, v) = (1, 3), got (1, 2)"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == message


def test_knn_distribution_with_vocab_and_temperature_one_against_the_loop():
    """vocab_size = 1 is allowed (every vote on token 0); the default temperature is 1."""
    d = _rand(2, 4).abs()
    v = torch.tensor([[0, 2, 2, 1], [1, 1, 0, 2]])
    assert torch.allclose(knn_lm.knn_distribution(d, v, 3), knn_lm.knn_distribution_ref(d, v, 3),
                          atol=1e-12)
    ones = knn_lm.knn_distribution(d, torch.zeros(2, 4, dtype=torch.long), 1)
    assert ones.flatten().tolist() == pytest.approx([1.0, 1.0], rel=1e-12)


def test_interpolation_at_lambda_one_is_the_knn_log_probability():
    """λ = 1 returns log p_kNN (−inf where no neighbour voted); a float32 LM with a float64
    p_kNN is mixed in float64; at λ = 0.5 the mixture is the average, by hand."""
    logits = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float32)
    p_knn = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    got = knn_lm.interpolate(logits, p_knn, 1.0)
    assert got.dtype == torch.float64 and got[0, 0] == 0 and got[0, 1] == -math.inf
    half = knn_lm.interpolate(logits, p_knn, 0.5)
    assert half.dtype == torch.float64
    assert half.exp()[0].tolist() == pytest.approx([0.5 + 0.5 / 4, 0.5 * 3 / 4], rel=1e-7)


def test_lm_features_refuse_bad_windows_in_full():
    """Negative, 2-d and long lists of windows are refused; a long list is shown by its shape."""
    from sseq.lm import GPT

    ids = torch.randint(0, 11, (4 * 8 + 1,), generator=torch.Generator().manual_seed(1))
    model = GPT(11, 8, 1, 2, 16)
    cases = [([-1], "windows must be 1-d indices in [0, 4), got [-1]"),
             ([[0, 1]], "windows must be 1-d indices in [0, 4), got [[0, 1]]"),
             ([0] * 9 + [4], "windows must be 1-d indices in [0, 4), got torch.Size([10])"),
             ([0] * 8 + [4], "windows must be 1-d indices in [0, 4), got " + str([0] * 8 + [4]))]
    for windows, message in cases:
        with pytest.raises(ValueError) as info:
            knn_lm.lm_features(model, ids, 8, windows=windows)
        assert str(info.value) == message


@pytest.mark.parametrize("call, message", [
    (lambda: knn_lm.nearest(torch.zeros(2), torch.zeros(5, 3), 1),
     "queries must have shape (q, d) = (?, ?), got (2,)"),
    (lambda: knn_lm.nearest(torch.zeros(2, 3), torch.zeros(5, 4), 1),
     "keys must have shape (N, d) = (?, 3), got (5, 4)"),
    (lambda: knn_lm.knn_distribution(torch.zeros(2), torch.zeros(2, dtype=torch.long), 3),
     "distances must have shape (q, K) = (?, ?), got (2,)"),
    (lambda: knn_lm.interpolate(torch.zeros(3), torch.ones(1, 3), 0.5),
     "lm_logits must have shape (q, v) = (?, ?), got (3,)"),
])
def test_knn_lm_shape_errors_are_spelled_out_in_full(call, message):
    """Each checked tensor argument is named with its glossary shape and the shape given."""
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


def test_interpolation_mixes_in_the_dtype_of_p_knn():
    """A float32 LM's logits are cast to p_kNN's float64 before the log-softmax, also at λ = 0
    (where the LM alone is returned): the result is float64 and matches a float64 hand value."""
    logits = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float32)
    got = knn_lm.interpolate(logits, torch.tensor([[1.0, 0.0]], dtype=torch.float64), 0.0)
    assert got.dtype == torch.float64
    assert got.exp()[0].tolist() == pytest.approx([0.25, 0.75], rel=1e-6)


def test_the_reference_loop_refuses_neighbours_of_another_length():
    """knn_distribution_ref zips each query's distances with its neighbours strictly: a row
    of neighbours shorter than the distances is an error, not a silently dropped vote."""
    with pytest.raises(ValueError, match="zip"):
        knn_lm.knn_distribution_ref(torch.zeros(1, 3), torch.zeros(1, 2, dtype=torch.long), 4)
