"""Linear attention and retention: the parallel, recurrent and chunkwise forms agree."""

from __future__ import annotations

import re

import pytest
import torch

from sseq import attention as A


def qkv(b=2, h=3, l=20, d=4, d_v=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, h, l, d, generator=g, dtype=dtype),
            torch.randn(b, h, l, d, generator=g, dtype=dtype),
            torch.randn(b, h, l, d_v, generator=g, dtype=dtype))


def linear_attention_loop(q, k, v, phi, causal, eps=1e-6):
    """Independent oracle: the definition, one (i, j) pair at a time, float64."""
    b, h, l, _ = q.shape
    y = torch.zeros(b, h, l, v.shape[-1], dtype=torch.float64)
    for i in range(l):
        num, den = 0, 0
        for j in range(i + 1 if causal else l):
            sim = (phi(q[:, :, i]) * phi(k[:, :, j])).sum(-1, keepdim=True)   # (b, h, 1)
            num, den = num + sim * v[:, :, j], den + sim
        y[:, :, i] = num / (den + eps)
    return y


@pytest.mark.parametrize("causal", [True, False])
def test_linear_attention_is_its_definition(causal):
    q, k, v = qkv(l=9)
    phi = A.FEATURE_MAPS["elu+1"]
    torch.testing.assert_close(A.linear_attention(q, k, v, causal=causal),
                               linear_attention_loop(q, k, v, phi, causal))


@pytest.mark.parametrize("feature_map", ["elu+1", "relu", lambda x: x.square(), "identity"])
def test_recurrent_form_equals_parallel_form_outputs_and_gradients(feature_map):
    normalize = feature_map != "identity"  # identity similarities can sum to zero
    q, k, v = (t.requires_grad_() for t in qkv())
    parallel = A.linear_attention(q, k, v, feature_map, normalize=normalize)
    recurrent = A.linear_attention_recurrent(q, k, v, feature_map, normalize=normalize)
    torch.testing.assert_close(recurrent, parallel, rtol=1e-10, atol=1e-12)
    for a, b in zip(torch.autograd.grad(recurrent.sum(), (q, k, v)),
                    torch.autograd.grad(parallel.sum(), (q, k, v)), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_the_recurrent_state_is_d_by_d_v_and_resumes():
    q, k, v = qkv(l=12)
    y, (S, z) = A.linear_attention_recurrent(q, k, v, return_state=True)
    assert S.shape == (2, 3, 4, 5) and z.shape == (2, 3, 4)  # fixed size, whatever l is
    y1, state = A.linear_attention_recurrent(q[:, :, :8], k[:, :, :8], v[:, :, :8],
                                             return_state=True)
    y2 = A.linear_attention_recurrent(q[:, :, 8:], k[:, :, 8:], v[:, :, 8:], state=state)
    torch.testing.assert_close(torch.cat([y1, y2], dim=2), y)


def test_linear_attention_defaults_and_eps():
    """Protects the defaults (causal, normalized, eps = 1e-6) of the three forms and that
    linear_attention passes its eps on."""
    q, k, v = qkv(l=9)
    phi = A.FEATURE_MAPS["elu+1"]
    want = linear_attention_loop(q, k, v, phi, causal=True)
    torch.testing.assert_close(A.linear_attention(q, k, v), want)
    torch.testing.assert_close(A.linear_attention_from_features(phi(q), phi(k), v), want)
    torch.testing.assert_close(A.linear_attention_recurrent(q, k, v), want)
    torch.testing.assert_close(A.linear_attention(q, k, v, eps=3.0),
                               linear_attention_loop(q, k, v, phi, causal=True, eps=3.0))


def test_causal_features_with_fewer_queries_are_aligned_bottom_right():
    """Protects the causal mask of l_q < l_k: the queries are the last l_q of the sequence."""
    q, k, v = qkv(l=9)
    phi = A.FEATURE_MAPS["elu+1"]
    full = A.linear_attention_from_features(phi(q), phi(k), v, causal=True)
    torch.testing.assert_close(A.linear_attention_from_features(phi(q[:, :, -4:]), phi(k), v,
                                                                causal=True), full[:, :, -4:])


def test_linear_attention_rejects_bad_input():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="feature_map must be a function or one of"):
        A.linear_attention(q, k, v, "softmax")
    with pytest.raises(ValueError, match="^q and k must have one length here, got l_q = 20 and "
                                         "l_k = 5$"):
        A.linear_attention_recurrent(q, k[:, :, :5], v[:, :, :5])
    with pytest.raises(ValueError, match="K/V heads must divide"):
        A.linear_attention(q, k[:, :2], v[:, :2])
    with pytest.raises(ValueError, match=r"^state must be \(S, z\) of shapes \(b, h, m, d_v\) = "
                       r"\(2, 3, 4, 5\) and \(b, h, m\) = \(2, 3, 4\), got \(2, 3, 4, 4\) and "
                       r"\(2, 3, 4\)$"):
        A.linear_attention_recurrent(q, k, v, state=(torch.zeros(2, 3, 4, 4),
                                                     torch.zeros(2, 3, 4)))


# ----------------------------------------------------------------------------- retention
def retention_loop(q, k, v, gamma):
    """Independent oracle: y_t = Σ_{s≤t} (γ_{s+1} ⋯ γ_t) (q_t · k_s) v_s, term by term."""
    b, h, l, _ = q.shape
    y = torch.zeros(b, h, l, v.shape[-1], dtype=torch.float64)
    for t in range(l):
        for s in range(t + 1):
            decay = torch.ones(b, h, dtype=torch.float64)
            for r in range(s + 1, t + 1):
                decay = decay * gamma[:, :, r]
            y[:, :, t] += (decay * (q[:, :, t] * k[:, :, s]).sum(-1))[..., None] * v[:, :, s]
    return y


def gammas(b=2, h=3, l=20):
    g = torch.Generator().manual_seed(7)
    return {
        "one float": 0.9,
        "one per head": torch.tensor([0.5, 0.9, 0.99], dtype=torch.float64),
        "one per head and step": 0.5 + 0.5 * torch.rand(b, h, l, generator=g,
                                                         dtype=torch.float64),
    }


@pytest.mark.parametrize("kind", ["one float", "one per head", "one per head and step"])
def test_parallel_retention_is_its_definition(kind):
    q, k, v = qkv(l=8)
    gamma = gammas(l=8)[kind]
    full = torch.as_tensor(gamma, dtype=torch.float64)
    full = full[None, :, None] if full.dim() == 1 else full
    torch.testing.assert_close(A.retention(q, k, v, gamma),
                               retention_loop(q, k, v, full.expand(2, 3, 8)))


@pytest.mark.parametrize("kind", ["one float", "one per head", "one per head and step"])
@pytest.mark.parametrize(("form", "chunk_size"), [("recurrent", 1), ("chunkwise", 1),
                                                  ("chunkwise", 6), ("chunkwise", 20),
                                                  ("chunkwise", 64)])
def test_all_forms_of_retention_agree_outputs_and_gradients(kind, form, chunk_size):
    q, k, v = (t.requires_grad_() for t in qkv())
    gamma = gammas()[kind]
    parallel = A.retention(q, k, v, gamma, "parallel")
    other = A.retention(q, k, v, gamma, form, chunk_size=chunk_size)
    torch.testing.assert_close(other, parallel, rtol=1e-10, atol=1e-12)
    for a, b in zip(torch.autograd.grad(other.sum(), (q, k, v)),
                    torch.autograd.grad(parallel.sum(), (q, k, v)), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_retention_without_decay_is_plain_linear_attention():
    q, k, v = qkv()
    torch.testing.assert_close(A.retention(q, k, v, 1.0),
                               A.linear_attention(q, k, v, "identity", normalize=False))


@pytest.mark.parametrize("kind", ["one float", "one per head", "one per head and step"])
def test_retention_is_a_selective_scan_with_scalar_A(kind):
    q, k, v = qkv(l=16)
    gamma = gammas(l=16)[kind]
    torch.testing.assert_close(A.retention_as_selective_scan(q, k, v, gamma),
                               A.retention(q, k, v, gamma), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("gamma", "form", "message"), [
    (1.5, "parallel", r"gamma must be in \(0, 1\]"),
    (0.0, "parallel", r"gamma must be in \(0, 1\]"),
    (torch.full((2,), 0.9), "parallel", r"gamma must be a float, a \(h,\) = \(3,\) tensor"),
    (0.9, "dual", "form must be one of"),
])
def test_retention_rejects_bad_arguments(gamma, form, message):
    with pytest.raises(ValueError, match=message):
        A.retention(*qkv(), gamma, form)


def test_retention_rejects_bad_chunks_and_steps():
    with pytest.raises(ValueError, match="chunk_size must be a positive int, got 0"):
        A.retention(*qkv(), 0.9, "chunkwise", chunk_size=0)
    with pytest.raises(ValueError, match="gamma must be < 1 here"):
        A.retention_as_selective_scan(*qkv(), 1.0)
    q, k, v = qkv()
    with pytest.raises(ValueError, match="same heads and length"):
        A.retention(q, k[:, :, :4], v[:, :, :4], 0.9)


def test_state_sizes_from_n_d_to_d_squared_to_n():
    sizes = A.state_sizes(4096, d_model=512, n_heads=8, d_state=16, expand=2)
    assert sizes == {"attention (KV cache)": 2 * 4096 * 512,
                     "linear attention / retention": 512 * 512 // 8,
                     "Mamba (selective SSM)": 2 * 512 * 16}


def test_linear_attention_state_is_what_retention_keeps():
    """With γ = 1 and identity features, the recurrent state equals Σ_s k_s v_sᵀ."""
    q, k, v = qkv(l=10)
    _, (S, _) = A.linear_attention_recurrent(q, k, v, "identity", normalize=False,
                                             return_state=True)
    torch.testing.assert_close(S, k.transpose(-2, -1) @ v)
    y = A.retention(q, k, v, 1.0, "recurrent")
    torch.testing.assert_close(y[:, :, -1], (q[:, :, -1, None, :] @ S).squeeze(-2))


# ----------------------------------------------------------------------------- retention in full
@pytest.mark.parametrize(("gamma", "message"), [
    (torch.full((2,), 0.9), "gamma must be a float, a (h,) = (3,) tensor (one decay per head) "
                            "or a (b, h, l) = (2, 3, 20) tensor (one per head and step), got "
                            "shape (2,)"),
    (torch.full((2, 3), 0.9), "gamma must be a float, a (h,) = (3,) tensor (one decay per head) "
                              "or a (b, h, l) = (2, 3, 20) tensor (one per head and step), got "
                              "shape (2, 3)"),
    (torch.full((2, 3, 19), 0.9), "gamma must be a float, a (h,) = (3,) tensor (one decay per "
                                  "head) or a (b, h, l) = (2, 3, 20) tensor (one per head and "
                                  "step), got shape (2, 3, 19)"),
    (torch.full((1, 2, 3, 20), 0.9), "gamma must be a float, a (h,) = (3,) tensor (one decay "
                                     "per head) or a (b, h, l) = (2, 3, 20) tensor (one per "
                                     "head and step), got shape (1, 2, 3, 20)"),
    (torch.tensor([0.5, 1.25, 0.0]), "gamma must be in (0, 1], got values from 0 to 1.25"),
    (-0.5, "gamma must be in (0, 1], got values from -0.5 to -0.5"),
])
def test_retention_names_a_bad_gamma_in_full(gamma, message):
    """Protects the decay check of every form and of the selective-scan form: the three
    accepted shapes named with their sizes, the given shape, and the range of bad values."""
    for call in (lambda: A.retention(*qkv(), gamma, "recurrent"),
                 lambda: A.retention_as_selective_scan(*qkv(), gamma)):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            call()


def test_gamma_of_exactly_one_is_accepted_and_one_per_head_is_per_head():
    """Protects the closed upper end γ = 1 (no decay) and that an (h,) gamma decays head i by
    γ_i: each head alone equals retention with that head's float."""
    q, k, v = qkv(l=6)
    gamma = torch.tensor([1.0, 0.5, 0.8], dtype=torch.float64)
    y = A.retention(q, k, v, gamma)
    for i, g in enumerate(gamma.tolist()):
        torch.testing.assert_close(y[:, i], A.retention(q[:, i:i + 1], k[:, i:i + 1],
                                                        v[:, i:i + 1], g)[:, 0])


@pytest.mark.parametrize("chunk_size", [True, 2.0, -1])
def test_retention_chunk_size_must_be_a_positive_int(chunk_size):
    """Protects the chunk-size check: no bool, no float, no negative, the value shown."""
    with pytest.raises(ValueError, match="^" + re.escape(
            f"chunk_size must be a positive int, got {chunk_size!r}") + "$"):
        A.retention(*qkv(), 0.9, "chunkwise", chunk_size=chunk_size)


def test_retention_chunks_are_64_tokens_by_default(monkeypatch):
    """Protects the default chunk of the chunkwise form (64 tokens: 130 tokens make chunks of
    64, 64 and 2) and that the chunkwise form gives the parallel form's numbers."""
    import sseq.attention.retnet as R

    lengths = []
    parallel = R._parallel

    def spy(q, k, v, log_g):
        lengths.append(q.shape[2])
        return parallel(q, k, v, log_g)

    q, k, v = qkv(b=1, h=1, l=130, d=2, d_v=2)
    expected = A.retention(q, k, v, 0.97)
    monkeypatch.setattr(R, "_parallel", spy)
    torch.testing.assert_close(A.retention(q, k, v, 0.97, "chunkwise"), expected)
    assert lengths == [64, 64, 2]


def test_retention_needs_one_head_count_and_length_for_q_k_v():
    """Protects retention's shape check (no grouped K/V heads here), both shapes shown."""
    q, k, v = qkv()
    message = ("q, k and v must have the same heads and length (h, l), got q (2, 3, 20, 4), "
               "k (2, 1, 20, 4)")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        A.retention(q, k[:, :1], v[:, :1], 0.9)
    with pytest.raises(ValueError, match=f"^{re.escape('form must be one of')}"):
        A.retention(q, k, v, 0.9, "Parallel")
    with pytest.raises(ValueError, match="^" + re.escape(
            "form must be one of ('parallel', 'recurrent', 'chunkwise'), got 'dual'") + "$"):
        A.retention(q, k, v, 0.9, "dual")


def test_retention_as_selective_scan_refuses_gamma_one_anywhere():
    """Protects the selective-scan form's check: a single γ = 1 (Δ = 0) among others is
    refused with the reason."""
    q, k, v = qkv()
    gamma = torch.full((2, 3, 20), 0.9, dtype=torch.float64)
    gamma[1, 2, 7] = 1.0
    with pytest.raises(ValueError, match="^" + re.escape(
            "gamma must be < 1 here: γ = 1 would need the step Δ = −log γ = 0") + "$"):
        A.retention_as_selective_scan(q, k, v, gamma)


def test_state_sizes_defaults_are_mambas():
    """Protects state_sizes' defaults (N = 16, expand 2, as in Mamba), each formula, and that
    the sizes are ints (the head size d_model // n_heads an int)."""
    sizes = A.state_sizes(10, d_model=48, n_heads=3)
    assert sizes == {"attention (KV cache)": 2 * 10 * 48,
                     "linear attention / retention": 3 * 16 * 16,
                     "Mamba (selective SSM)": 2 * 48 * 16}
    assert A.state_sizes(1, 48, 4, d_state=4, expand=3)["Mamba (selective SSM)"] == 3 * 48 * 4
    assert all(type(n) is int for n in sizes.values())     # counts of numbers, not floats


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_retention_as_selective_scan_keeps_the_inputs_dtype(dtype):
    """Protects the scan's A made in q's dtype: float32 and bfloat16 inputs give outputs of
    their own dtype, close to the float64 retention (to the dtype's precision)."""
    q, k, v = qkv(l=8)
    y = A.retention_as_selective_scan(q.to(dtype), k.to(dtype), v.to(dtype), 0.8)
    assert y.dtype == dtype
    tol = 1e-4 if dtype == torch.float32 else 0.1
    torch.testing.assert_close(y.double(), A.retention(q, k, v, 0.8), rtol=tol, atol=tol)
