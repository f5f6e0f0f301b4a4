"""Language models: next-token prediction on Tiny Shakespeare (Chapter 7).

A language model gives p(x_{t+1} | x_≤t) and is trained to make the text it reads likely. The
chapter compares the book's two answers to "how does a network carry the past?" on that task,
one concept per module:

===============  ================================================================================
module           what it holds
===============  ================================================================================
``corpus``       the shipped corpus, the character tokenizer, nanoGPT's split, batches
``ngram``        n-gram models with interpolated Kneser–Ney smoothing: the baselines
``gpt``          a decoder-only Transformer on Chapter 6's attention, with a KV cache
``lstm``         an LSTM language model: a running state
``mamba_lm``     a Mamba language model with state-spaces/mamba's parameter names
``training``     the loss (nats, bits, perplexity), ``evaluate``, one training loop for all
``generate``     sampling with temperature and top-k; cached or recomputed generation
``flops``        FLOPs of a forward pass, a training step, a generated token
``cost``         the measured cost of one more token against its position
``signal``       why every position teaches: the gradient of teacher forcing, measured
``checkpoints``  saving, loading, and the three trained models shipped with the package
``explore``      the chapter's sampling explorer
``bench``        ``python -m sseq.bench lm``: training throughput, beside nanoGPT's
===============  ================================================================================

Every model maps token ids ``(b, l)`` to next-token logits ``(b, l, v)`` and offers
``prefill(ids) → (logits (b, v), state)`` and ``step(token (b,), state) → (logits, state)``,
which :func:`generate` calls. Public names are importable from ``sseq.lm`` directly.
"""

from sseq.lm.checkpoints import load_checkpoint, load_pretrained, save_checkpoint
from sseq.lm.corpus import (
    CharTokenizer,
    Corpus,
    eval_windows,
    get_batch,
    load_corpus,
    shakespeare,
    train_val_split,
)
from sseq.lm.cost import generation_cost
from sseq.lm.flops import forward_flops, generation_flops, train_step_flops
from sseq.lm.generate import generate, sample_next, top_k_logits
from sseq.lm.gpt import GPT, GPTConfig
from sseq.lm.lstm import LSTMLM, LSTMConfig
from sseq.lm.mamba_lm import MambaLM, MambaLMConfig
from sseq.lm.ngram import KneserNey, NGramSampler
from sseq.lm.training import (
    TrainConfig,
    bits_per_char,
    evaluate,
    learning_rate,
    lm_loss,
    make_optimizer,
    perplexity,
    train_lm,
)

__all__ = [
    "GPT",
    "LSTMLM",
    "CharTokenizer",
    "Corpus",
    "GPTConfig",
    "KneserNey",
    "LSTMConfig",
    "MambaLM",
    "MambaLMConfig",
    "NGramSampler",
    "TrainConfig",
    "bits_per_char",
    "eval_windows",
    "evaluate",
    "forward_flops",
    "generate",
    "generation_cost",
    "generation_flops",
    "get_batch",
    "learning_rate",
    "lm_loss",
    "load_checkpoint",
    "load_corpus",
    "load_pretrained",
    "make_optimizer",
    "perplexity",
    "sample_next",
    "save_checkpoint",
    "shakespeare",
    "top_k_logits",
    "train_lm",
    "train_step_flops",
    "train_val_split",
]
