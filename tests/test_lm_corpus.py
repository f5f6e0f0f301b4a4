"""sseq.lm.corpus: the shipped text, the tokenizer's round trip, nanoGPT's split, the batches."""

from __future__ import annotations

import hashlib

import pytest
import torch

from sseq.lm import corpus as C
from tests.conftest import ROOT

MD5 = "6fb458f1232090904fb40fe944165e91"  # of input.txt in char-rnn and nanoGPT


def test_the_shipped_corpus_is_tiny_shakespeare_byte_for_byte():
    text = C.load_corpus("shakespeare")
    assert len(text) == 1_115_394
    assert hashlib.md5(text.encode("utf-8")).hexdigest() == MD5
    assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")


def test_the_corpus_is_package_data_with_its_attribution():
    """pip install (from git, or on Colab) must carry the file and its README."""
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = meta["tool"]["setuptools"]["package-data"]["sseq.lm"]
    assert "data/*.gz" in patterns and "data/*.md" in patterns
    readme = (C.DATA / "README.md").read_text()
    assert "public domain" in readme and "char-rnn" in readme and MD5 in readme


def test_unknown_corpus_is_refused():
    with pytest.raises(ValueError, match=r"name must be one of \['shakespeare'\], got 'wiki'"):
        C.load_corpus("wiki")


def test_split_is_nanogpts_90_10():
    corpus = C.shakespeare()
    n = 1_115_394
    assert len(corpus.train) == int(0.9 * n) == 1_003_854 and len(corpus.val) == n - 1_003_854
    text = C.load_corpus()
    assert corpus.tokenizer.decode(corpus.val[:30]) == text[1_003_854:1_003_884]
    assert corpus.tokenizer.vocab_size == 65
    assert corpus.tokenizer.chars == "".join(sorted(set(text)))  # nanoGPT's ids
    assert corpus.split("val") is corpus.val
    with pytest.raises(ValueError, match="split must be 'train' or 'val', got 'test'"):
        corpus.split("test")


def test_tokenizer_round_trip_on_the_whole_corpus():
    text = C.load_corpus()
    tok = C.shakespeare().tokenizer
    ids = tok.encode(text)
    assert ids.dtype == torch.int64 and ids.shape == (len(text),)
    assert tok.decode(ids) == text
    assert tok.decode(ids[:5].tolist()) == text[:5] and tok.decode([]) == ""


def test_tokenizer_names_an_unknown_character_and_its_position():
    tok = C.shakespeare().tokenizer
    with pytest.raises(ValueError, match=r"outside the vocabulary: 'é' at position 3"):
        tok.encode("Caf\u00e9")
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        tok.encode(b"abc")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, vocab_size\) = \[0, 65\), got "
                                         r"values from 0 to 65"):
        tok.decode([0, 65])
    with pytest.raises(ValueError, match="ids must be a 1-d sequence of ints"):
        tok.decode(torch.zeros(2, 2, dtype=torch.long))


def test_tokenizer_vocabulary_checks():
    assert C.CharTokenizer("cba").chars == "abc" and C.CharTokenizer("ab") == C.CharTokenizer("ba")
    with pytest.raises(ValueError, match="chars must be distinct"):
        C.CharTokenizer("aab")
    with pytest.raises(ValueError, match="chars must be a non-empty str"):
        C.CharTokenizer("")


def test_batches_are_windows_of_the_stream_with_targets_shifted_by_one():
    data = torch.arange(1000)
    x, y = C.get_batch(data, 8, 16, torch.Generator().manual_seed(3))
    assert x.shape == y.shape == (8, 16) and x.is_contiguous() and y.is_contiguous()
    assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(y, x + 1)  # consecutive ids
    assert (x[:, 0] <= 1000 - 17).all()
    x2, _ = C.get_batch(data, 8, 16, torch.Generator().manual_seed(3))
    assert torch.equal(x, x2)  # seeded
    with pytest.raises(ValueError, match="context must be shorter than the data"):
        C.get_batch(data[:10], 2, 10, torch.Generator())


def test_eval_windows_score_every_target_once():
    data = torch.arange(100)
    x, y = C.eval_windows(data, 16)
    assert x.shape == (6, 16) and torch.equal(y, x + 1)
    assert torch.equal(y.flatten(), torch.arange(1, 97))
    with pytest.raises(ValueError, match="data must hold more than context = 16 tokens"):
        C.eval_windows(data[:16], 16)


def test_train_val_split_checks():
    train, val = C.train_val_split(torch.arange(10), 0.7)
    assert train.tolist() == list(range(7)) and val.tolist() == [7, 8, 9]
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\), got 1.5"):
        C.train_val_split(torch.arange(10), 1.5)
    with pytest.raises(ValueError, match="ids must be a 1-d tensor"):
        C.train_val_split(torch.zeros(2, 2))


def test_tokenizer_identity_repr_and_refusals_in_full():
    """Two tokenizers are equal (and hash alike) exactly when their vocabularies are; the
    refusals name the argument and show what was given."""
    tok = C.CharTokenizer("ba")
    assert repr(tok) == "CharTokenizer(vocab_size=2)" and tok.vocab_size == 2
    assert tok == C.CharTokenizer("ab") and hash(tok) == hash(C.CharTokenizer("ab"))
    assert tok != C.CharTokenizer("abc") and tok != "ab"
    assert len({tok, C.CharTokenizer("ab"), C.CharTokenizer("abc")}) == 2
    assert hash(tok) != hash(C.CharTokenizer("abc"))  # vocabularies spread over the hash
    with pytest.raises(ValueError, match=r"^chars must be a non-empty str, got ''$"):
        C.CharTokenizer("")
    with pytest.raises(ValueError, match=r"^chars must be a non-empty str, got \['a'\]$"):
        C.CharTokenizer(["a"])
    with pytest.raises(ValueError, match=r"^chars must be distinct, got 4 characters of which 2 "
                                         r"differ$"):
        C.CharTokenizer("abab")
    with pytest.raises(TypeError, match=r"^text must be a str, got bytes$"):
        tok.encode(b"ab")
    with pytest.raises(ValueError, match=r"^text has a character outside the vocabulary: 'c' at "
                                         r"position 2; the vocabulary is 'ab'$"):
        tok.encode("abcc")
    with pytest.raises(ValueError, match=r"^ids must lie in \[0, vocab_size\) = \[0, 2\), got "
                                         r"values from -1 to 1$"):
        tok.decode([1, -1])
    with pytest.raises(ValueError, match=r"^ids must be a 1-d sequence of ints, got shape \(2,\) "
                                         r"and dtype torch.float32$"):
        tok.decode([0.0, 1.0])
    with pytest.raises(ValueError, match=r"^ids must be a 1-d sequence of ints, got shape \(1,\) "
                                         r"and dtype torch.complex64$"):
        tok.decode(torch.zeros(1, dtype=torch.complex64))
    assert tok.decode([0, 1, 1]) == "abb" and tok.decode(torch.tensor([1])) == "b"
    assert tok.encode("").shape == (0,) and tok.encode("").dtype == torch.int64


def test_splits_and_windows_at_their_edges():
    """The edges of each cut: split fractions just inside (0, 1), the train split by name,
    a batch window reaching the last token, an evaluation of exactly one window."""
    train, val = C.train_val_split(torch.arange(10), 0.99)
    assert len(train) == 9 and val.tolist() == [9]
    for bad in (0, 1, 0.0, -0.5):
        with pytest.raises(ValueError, match=rf"^fraction must be in \(0, 1\), got {bad}$"):
            C.train_val_split(torch.arange(10), bad)
    with pytest.raises(ValueError, match=r"^ids must be a 1-d tensor, got list \(\)$"):
        C.train_val_split([1, 2, 3])
    with pytest.raises(ValueError, match=r"^ids must be a 1-d tensor, got Tensor \(2, 2\)$"):
        C.train_val_split(torch.zeros(2, 2))
    corpus = C.Corpus("toy", C.CharTokenizer("ab"), torch.tensor([0, 1]), torch.tensor([1]))
    assert corpus.split("train") is corpus.train and corpus.split("val") is corpus.val
    with pytest.raises(ValueError, match=r"^split must be 'train' or 'val', got 'Train'$"):
        corpus.split("Train")
    # 12 tokens, windows of 8 (+1 target): the starts 0..3 are all drawn, and only they
    x, y = C.get_batch(torch.arange(12), 400, 8, torch.Generator().manual_seed(0))
    assert sorted(set(x[:, 0].tolist())) == [0, 1, 2, 3] and y[:, -1].max().item() == 11
    with pytest.raises(ValueError, match=r"^context must be shorter than the data: context = 12, "
                                         r"len\(data\) = 12$"):
        C.get_batch(torch.arange(12), 2, 12, torch.Generator())
    x, y = C.eval_windows(torch.arange(17), 16)  # exactly one window and its 16 targets
    assert x.tolist() == [list(range(16))] and y.tolist() == [list(range(1, 17))]
    x, y = C.eval_windows(torch.arange(32), 8)   # 31 targets: 3 full windows, 7 left over
    assert x.shape == (3, 8) and y[-1, -1].item() == 24
    with pytest.raises(ValueError, match=r"^data must hold more than context = 4 tokens, got 4$"):
        C.eval_windows(torch.arange(4), 4)
