"""sseq.lm.generate: seeded sampling, temperature and top-k, and cached generation equal to
re-reading the text for every new token."""

from __future__ import annotations

import math

import pytest
import torch

from sseq.lm import GPT, LSTMLM, MambaLM, generate, sample_next, shakespeare, top_k_logits

V = 65


def _models():
    torch.manual_seed(0)
    return {"gpt": GPT(V, 16, 2, 2, 32), "lstm": LSTMLM(V, 32, 2),
            "mamba": MambaLM(V, 32, 2, d_state=8)}


@pytest.mark.parametrize("name", ["gpt", "lstm", "mamba"])
def test_cached_generation_equals_recomputation(name):
    """The state carried from token to token (a KV cache, (h, c), the scan's state) gives the
    same text as re-reading everything; 40 new tokens take the GPT past its 16-token window."""
    model = _models()[name]
    prompt = torch.randint(V, (3, 5), generator=torch.Generator().manual_seed(1))
    fast = generate(model, prompt, 40, temperature=1.5, seed=7)
    slow = generate(model, prompt, 40, temperature=1.5, seed=7, cache=False)
    assert fast.shape == (3, 45) and torch.equal(fast[:, :5], prompt)
    assert torch.equal(fast, slow)


def test_seeded_sampling_repeats_and_the_seed_matters():
    model = _models()["lstm"]
    tok = shakespeare().tokenizer
    a = generate(model, "ROMEO:", 50, seed=3, tokenizer=tok)
    assert isinstance(a, str) and a.startswith("ROMEO:") and len(a) == 56
    assert a == generate(model, "ROMEO:", 50, seed=3, tokenizer=tok)
    assert a != generate(model, "ROMEO:", 50, seed=4, tokenizer=tok)
    torch.manual_seed(123)  # the global generator is neither used nor disturbed
    before = torch.rand(1)
    torch.manual_seed(123)
    generate(model, "ROMEO:", 5, seed=3, tokenizer=tok)
    assert torch.equal(torch.rand(1), before)


def test_generation_restores_training_mode_and_accepts_1d_prompts():
    model = _models()["gpt"].train()
    out = generate(model, torch.tensor([1, 2, 3]), 4, seed=0)
    assert out.shape == (7,) and model.training
    assert generate(model, torch.tensor([1, 2, 3]), 0).tolist() == [1, 2, 3]


def test_greedy_and_top_1_pick_the_most_likely_token():
    logits = torch.tensor([[0.1, 2.0, -1.0, 1.9], [3.0, 0.0, 0.0, 0.0]])
    assert sample_next(logits, temperature=0).tolist() == [1, 0]
    g = torch.Generator().manual_seed(0)
    assert sample_next(logits, top_k=1, generator=g).tolist() == [1, 0]
    model = _models()["gpt"]
    prompt = torch.tensor([[4, 5]])
    with torch.no_grad():
        expected = model(prompt)[0, -1].argmax().item()
    assert generate(model, prompt, 1, temperature=0)[0, -1].item() == expected


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[0.5, 3.0, -2.0, 1.0, 2.0]])
    kept = top_k_logits(logits, 2)
    assert torch.isfinite(kept).tolist() == [[False, True, False, False, True]]
    assert torch.equal(kept[torch.isfinite(kept)], torch.tensor([3.0, 2.0]))
    assert torch.equal(top_k_logits(logits, 5), logits) and top_k_logits(logits, None) is logits


def test_samples_follow_the_tempered_distribution():
    """10^5 draws: each token's frequency within 5 standard errors of softmax(z / τ),
    restricted to the top k."""
    z = torch.tensor([1.0, 0.0, -1.0, 2.0, 0.5])
    n = 100_000
    for temperature, top_k in ((1.0, None), (0.5, None), (2.0, 3)):
        g = torch.Generator().manual_seed(0)
        draws = sample_next(z.expand(n, 5), temperature, top_k, g)
        freq = torch.bincount(draws, minlength=5).double() / n
        p = torch.softmax(top_k_logits(z[None], top_k)[0].double() / temperature, -1)
        se = (p * (1 - p) / n).sqrt()
        assert ((freq - p).abs() <= 5 * se + 1e-12).all(), (temperature, top_k, freq, p)
        if top_k:
            assert (freq[p == 0] == 0).all()


def test_argument_checks():
    model = _models()["lstm"]
    with pytest.raises(ValueError, match="temperature must be a number >= 0, got -1"):
        sample_next(torch.zeros(1, 3), temperature=-1)
    with pytest.raises(ValueError, match="top_k must be a positive int or None, got 0"):
        top_k_logits(torch.zeros(1, 3), 0)
    with pytest.raises(ValueError, match=r"logits must have shape \(b, v\)"):
        sample_next(torch.zeros(3))
    with pytest.raises(ValueError, match="a text prompt needs a tokenizer"):
        generate(model, "hello", 3)
    with pytest.raises(ValueError, match="n_new must be an int >= 0, got -1"):
        generate(model, torch.tensor([1]), -1)
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        generate(model, torch.tensor([1]), 1, seed=-2)
    with pytest.raises(ValueError, match="prompt must hold at least one token"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="prompt must be a str or integer token ids"):
        generate(model, torch.zeros(3), 1)
    assert math.isfinite(sample_next(torch.zeros(1, 3), 1.0).item())


def _greedy_oracle(model, prompt, n_new):
    """Greedy decoding written as its definition: re-read the text (its last ``context``
    tokens) with the model in evaluation mode, append the arg-max, n_new times."""
    text = prompt.clone()
    window = getattr(model, "context", None) or text.shape[1] + n_new
    with torch.no_grad():
        for _ in range(n_new):
            text = torch.cat([text, model(text[:, -window:])[:, -1].argmax(-1, keepdim=True)], 1)
    return text


@pytest.mark.parametrize("family", ["gpt", "lstm"])
def test_generation_reads_with_dropout_off_and_restores_either_mode(family):
    """Generation switches off dropout (the model's evaluation mode) and puts the model back in
    the mode it was in, training or evaluation: with dropout 0.5 a model left in training mode
    would draw from a randomly thinned network, and the greedy text would change."""
    torch.manual_seed(0)
    model = GPT(V, 8, 2, 2, 16, dropout=0.5) if family == "gpt" else LSTMLM(V, 16, 2, 0.5)
    prompt = torch.randint(V, (2, 3), generator=torch.Generator().manual_seed(2))
    expected = _greedy_oracle(model.eval(), prompt, 12)
    for cache in (True, False):
        model.train()
        assert torch.equal(generate(model, prompt, 12, temperature=0, cache=cache), expected)
        assert model.training
        model.eval()
        assert torch.equal(generate(model, prompt, 12, temperature=0, cache=cache), expected)
        assert not model.training


def test_a_one_token_prompt_is_enough():
    """A single token (the smallest prompt the docstring allows) starts a text."""
    model = _models()["lstm"]
    out = generate(model, torch.tensor([7]), 3, temperature=0)
    assert out.shape == (4,) and out[0].item() == 7
    assert torch.equal(out, _greedy_oracle(model, torch.tensor([[7]]), 3)[0])


def test_a_text_prompt_uses_the_models_own_tokenizer():
    """A model loaded from a checkpoint carries its tokenizer (model.tokenizer): a text prompt
    then needs no tokenizer argument and the text comes back decoded with it."""
    model = _models()["lstm"]
    tok = shakespeare().tokenizer
    expected = generate(model, "ROMEO:", 8, seed=5, tokenizer=tok)
    model.tokenizer = tok
    assert generate(model, "ROMEO:", 8, seed=5) == expected
    ids = generate(model, tok.encode("ROMEO:"), 8, seed=5)  # ids in, ids out
    assert isinstance(ids, torch.Tensor) and tok.decode(ids) == expected


def test_argument_messages_show_what_was_given():
    """Each refusal names the argument and shows the value or shape it was given."""
    model = _models()["lstm"]
    with pytest.raises(ValueError, match=r"^logits must have shape \(b, v\), got \(3,\)$"):
        sample_next(torch.zeros(3))
    with pytest.raises(ValueError, match=r"^logits must have shape \(b, v\), got \(\)$"):
        sample_next([[0.0, 1.0]])
    with pytest.raises(ValueError, match=r"^temperature must be a number >= 0, got True$"):
        sample_next(torch.zeros(1, 3), temperature=True)
    with pytest.raises(ValueError, match=r"^temperature must be a number >= 0, got nan$"):
        sample_next(torch.zeros(1, 3), temperature=float("nan"))
    with pytest.raises(ValueError, match=r"^top_k must be a positive int or None, got 2\.0$"):
        top_k_logits(torch.zeros(1, 3), 2.0)
    with pytest.raises(ValueError, match=r"^top_k must be a positive int or None, got True$"):
        top_k_logits(torch.zeros(1, 3), True)
    with pytest.raises(ValueError, match=r"^a text prompt needs a tokenizer: pass tokenizer="
                                         r"\.\.\. \(e\.g\. sseq\.lm\.shakespeare\(\)\.tokenizer"
                                         r"\) or token ids$"):
        generate(model, "hello", 3)
    with pytest.raises(ValueError, match=r"^prompt must be a str or integer token ids \(l,\) "
                                         r"or \(b, l\), got Tensor \(3,\)$"):
        generate(model, torch.zeros(3), 1)
    with pytest.raises(ValueError, match=r"^prompt must be a str or integer token ids \(l,\) "
                                         r"or \(b, l\), got Tensor \(1, 1, 2\)$"):
        generate(model, torch.zeros(1, 1, 2, dtype=torch.long), 1)
    with pytest.raises(ValueError, match=r"^prompt must be a str or integer token ids \(l,\) "
                                         r"or \(b, l\), got list \(\)$"):
        generate(model, [1, 2], 1)
    for bad in (True, 2.0):
        with pytest.raises(ValueError, match=rf"^n_new must be an int >= 0, got {bad}$"):
            generate(model, torch.tensor([1]), bad)
        with pytest.raises(ValueError, match=rf"^seed must be an int >= 0, got {bad}$"):
            generate(model, torch.tensor([1]), 1, seed=bad)
    with pytest.raises(ValueError, match=r"^prompt must hold at least one token$"):
        generate(model, "", 1, tokenizer=shakespeare().tokenizer)


def test_sampling_defaults_to_temperature_one_and_all_tokens():
    """Without temperature or top_k, sample_next draws from softmax(z) itself: the very draws of
    temperature=1 (the same seed), and not those of temperature 2."""
    z = torch.randn(2000, 5, generator=torch.Generator().manual_seed(0))

    def draws(**kwargs):
        return sample_next(z, generator=torch.Generator().manual_seed(1), **kwargs)

    assert torch.equal(draws(), draws(temperature=1.0, top_k=None))
    assert not torch.equal(draws(), draws(temperature=2.0))


def test_a_single_possible_token_is_always_drawn():
    """A one-token vocabulary, or a distribution with one token left (top_k=1), is a certain
    draw at any temperature: one draw per row, never an error."""
    g = torch.Generator().manual_seed(0)
    for temperature in (0.5, 1.0, 3.0):
        assert sample_next(torch.zeros(4, 1), temperature, generator=g).tolist() == [0] * 4
        logits = torch.tensor([[0.0, 5.0, 1.0]]).expand(4, 3)
        assert sample_next(logits, temperature, 1, g).tolist() == [1] * 4
