"""Language models (Chapter 7): next-token prediction on Tiny Shakespeare."""

from sseq.lm.corpus import (CharTokenizer, Corpus, eval_windows, get_batch, load_corpus,
                            shakespeare, train_val_split)
from sseq.lm.generate import generate, sample_next, top_k_logits
from sseq.lm.gpt import GPT, GPTConfig
from sseq.lm.lstm import LSTMLM, LSTMConfig
from sseq.lm.ngram import KneserNey, NGramSampler
from sseq.lm.training import (TrainConfig, bits_per_char, evaluate, learning_rate, lm_loss,
                              make_optimizer, perplexity, train_lm)
