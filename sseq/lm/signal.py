"""Why every position teaches: the gradient one sequence gives, with and without teacher forcing.

The log-likelihood of a text is a sum over its positions, −log p(x) = −Σ_t log p(x_{t+1} | x_≤t),
and every term has its answer in the text itself. Reading the true prefix at every position
(*teacher forcing*) therefore turns one window of l characters into l scored predictions, all
from one forward pass. Scoring a sequence only once — here, its last prediction, as a classifier
of whole windows would — gives one signal per sequence instead.

:func:`gradient_agreement` measures what that does to learning: whether two independent batches
of k sequences agree on the direction to move the weights (the cosine of their gradients). A
cosine near 1 means that k sequences already point the way the whole data does; near 0, the
gradient is mostly the chance of which sequences were drawn.

Shapes: ``b`` batch, ``l`` context, ``p`` parameters (flattened).
"""

from __future__ import annotations

import torch

from sseq.lm.corpus import Corpus, get_batch, shakespeare
from sseq.lm.training import lm_loss

__all__ = ["gradient_agreement", "sequence_loss"]

POSITIONS = ("all", "last")


def sequence_loss(model, x: torch.Tensor, y: torch.Tensor, positions: str = "all"):
    """The mean loss of windows ``x, y`` ``(b, l)`` scored at every position (teacher forcing)
    or at the last one only."""
    if positions not in POSITIONS:
        raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
    logits = model(x)                                           # (b, l, v)
    if positions == "last":
        return lm_loss(logits[:, -1:], y[:, -1:])
    return lm_loss(logits, y)


def _gradient(model, loss) -> torch.Tensor:
    """The gradient of ``loss`` with respect to every parameter, flattened: ``(p,)``."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params)
    return torch.cat([g.reshape(-1) for g in grads]).double()


def gradient_agreement(model, positions: str = "all", *, sizes=(1, 2, 4, 8, 16, 32),
                       context: int = 64, corpus: Corpus | None = None, seed: int = 0) -> dict:
    """How well two independent batches of k sequences agree on the gradient.

    ``2 · max(sizes)`` training windows are drawn and each one's gradient computed. For each
    k, the windows are split into groups of k; the result is the mean cosine between the mean
    gradients of two different groups. Two batches agree when their common part (the expected
    gradient, the signal) outweighs what each draws by chance (the noise): the cosine is about
    k s / (k s + 1) for a signal-to-noise ratio s per sequence.

    Args:
        model: a language model (its weights are not changed).
        positions: ``"all"`` (teacher forcing) or ``"last"`` (one prediction per sequence).
        sizes: group sizes k, each dividing ``max(sizes)``.
        context: window length l.
        corpus: default :func:`sseq.lm.shakespeare`; windows are drawn from its training split.
        seed: draws the windows.

    Returns:
        ``{"size": [...], "cosine": [...]}``.
    """
    n = max(sizes)
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 1 or n % k for k in sizes):
        raise ValueError(f"sizes must be positive ints dividing max(sizes) = {n}, got {sizes!r}")
    corpus = corpus or shakespeare()
    x, y = get_batch(corpus.train, 2 * n, context, torch.Generator().manual_seed(seed))
    was_training = model.training
    model.eval()  # no dropout: the randomness is in the data alone
    each = torch.stack([_gradient(model, sequence_loss(model, x[i:i + 1], y[i:i + 1], positions))
                        for i in range(2 * n)])                              # (2n, p)
    model.train(was_training)
    cosines = []
    for k in sizes:
        groups = torch.nn.functional.normalize(each.view(2 * n // k, k, -1).mean(1), dim=-1)
        cos = groups @ groups.T                                              # (2n/k, 2n/k)
        off_diagonal = ~torch.eye(len(cos), dtype=torch.bool)
        cosines.append(cos[off_diagonal].mean().item())
    return {"size": list(sizes), "cosine": cosines}
