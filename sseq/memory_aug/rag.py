"""Retrieval-augmented generation: the retrieved document as a latent variable.

RAG (Lewis et al., 2020) retrieves the top ``k`` documents ``z`` for an input ``x`` with a
retriever that scores them, ``p(z | x) = softmax_z(s(x, z))``, and lets a generator read each
one. The document is never observed, so it is summed out:

    RAG-sequence:  p(y | x) = Σ_z p(z | x) · Π_t p(y_t | x, z, y_<t)
    RAG-token:     p(y | x) = Π_t Σ_z p(z | x) · p(y_t | x, z, y_<t)

(one document for the whole answer, or a new choice at every token). REALM (Guu et al., 2020)
trains the retriever through the same marginal: the gradient of ``log p(y | x)`` with respect
to a document's score is

    ∂ log p(y | x) / ∂ s(x, z) = p(z | x, y) − p(z | x)

posterior minus prior: a document is pulled up exactly when it made the answer more likely
than the average retrieved document did. Fusion-in-Decoder (Izacard & Grave, 2021) encodes
each (x, z) pair independently — cost linear in k — and lets the decoder attend over all the
encodings at once, instead of marginalising.

Shapes: ``b`` batch, ``k`` retrieved documents, ``l`` answer tokens.
"""

from __future__ import annotations

import torch

from sseq.memory_aug.ntm import _check

__all__ = ["fid_encode", "rag_sequence", "rag_sequence_ref", "rag_token",
           "realm_score_gradient"]


def _check_pair(doc_scores, token_logprobs):
    _check("doc_scores", doc_scores, (None, None), "(b, k)")
    _check("token_logprobs", token_logprobs, (*doc_scores.shape, None), "(b, k, l)")
    if (token_logprobs > 0).any():
        raise ValueError("token_logprobs must be log-probabilities (≤ 0), got a positive entry")


def rag_sequence(doc_scores: torch.Tensor, token_logprobs: torch.Tensor) -> torch.Tensor:
    """log p(y | x) = log Σ_z p(z | x) Π_t p(y_t | x, z, y_<t), computed in log space.

    Args:
        doc_scores: the retriever's scores s(x, z) ``(b, k)`` (logits of p(z | x)).
        token_logprobs: log p(y_t | x, z, y_<t) of the answer's tokens ``(b, k, l)``.

    Returns:
        ``(b,)`` log-likelihoods of the answers.
    """
    _check_pair(doc_scores, token_logprobs)
    log_prior = torch.log_softmax(doc_scores, dim=-1)                   # (b, k)
    return torch.logsumexp(log_prior + token_logprobs.sum(-1), dim=-1)


def rag_sequence_ref(doc_scores: torch.Tensor, token_logprobs: torch.Tensor) -> torch.Tensor:
    """:func:`rag_sequence` as written: probabilities, a loop over documents and tokens."""
    b, k, l = token_logprobs.shape
    out = torch.zeros(b, dtype=torch.float64)
    for i in range(b):
        prior = torch.exp(doc_scores[i].double())
        prior = prior / prior.sum()
        total = 0.0
        for z in range(k):
            p_answer = 1.0
            for t in range(l):
                p_answer *= float(torch.exp(token_logprobs[i, z, t].double()))
            total += float(prior[z]) * p_answer
        out[i] = torch.log(torch.tensor(total, dtype=torch.float64))
    return out


def rag_token(doc_scores: torch.Tensor, token_logprobs: torch.Tensor) -> torch.Tensor:
    """log p(y | x) = Σ_t log Σ_z p(z | x) p(y_t | x, z, y_<t): a document per token.

    Args and returns as :func:`rag_sequence`.
    """
    _check_pair(doc_scores, token_logprobs)
    log_prior = torch.log_softmax(doc_scores, dim=-1)                   # (b, k)
    return torch.logsumexp(log_prior[:, :, None] + token_logprobs, dim=1).sum(-1)


def realm_score_gradient(doc_scores: torch.Tensor,
                         token_logprobs: torch.Tensor) -> torch.Tensor:
    """∂ log p(y | x) / ∂ s(x, z) = p(z | x, y) − p(z | x), for RAG-sequence's marginal.

    Returns:
        ``(b, k)``: the posterior of each document given the answer, minus its prior.
    """
    _check_pair(doc_scores, token_logprobs)
    log_prior = torch.log_softmax(doc_scores, dim=-1)
    posterior = torch.softmax(log_prior + token_logprobs.sum(-1), dim=-1)
    return posterior - log_prior.exp()


def fid_encode(encoder, question: torch.Tensor, passages: torch.Tensor) -> torch.Tensor:
    """Fusion-in-Decoder's encoder side: each (question, passage) pair encoded on its own.

    The ``k`` pairs go through the encoder as a batch, so attention never crosses passages
    (cost ``k · (l_q + l_p)²``, not ``(k · (l_q + l_p))²``); the encodings are concatenated
    into the one sequence that the decoder cross-attends to, where the passages meet.

    Args:
        encoder: ``(b, l, d)`` → ``(b, l, d)``.
        question: ``(b, l_q, d)``; passages: ``(b, k, l_p, d)``.

    Returns:
        ``(b, k · (l_q + l_p), d)``.
    """
    _check("question", question, (None, None, None), "(b, l_q, d)")
    b, _, d = question.shape
    _check("passages", passages, (b, None, None, d), "(b, k, l_p, d)")
    k = passages.shape[1]
    pairs = torch.cat([question[:, None].expand(b, k, -1, -1), passages], dim=2)
    encoded = encoder(pairs.flatten(0, 1))                              # (b · k, l_q + l_p, d)
    return encoded.reshape(b, -1, d)
