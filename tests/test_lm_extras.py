"""The chapter's measuring tools against independent oracles: the generation-cost bookkeeping
with a recording model and a fake timer, gradient agreement against a float64 loop, the
checkpoint file's contents, the benchmark's tables with a fake clock, and the explorer's figure
against probabilities worked out by hand."""

from __future__ import annotations

import math
import pickle
import types
from dataclasses import asdict
from fractions import Fraction

import matplotlib
import pytest
import torch
from torch import nn

from sseq.bench import Timing
from sseq.lm import GPT, LSTMLM, MambaLM, TrainConfig, explore, shakespeare, signal
from sseq.lm import bench as lm_bench
from sseq.lm import checkpoints as ckpt
from sseq.lm import cost as lm_cost
from sseq.lm.corpus import CharTokenizer, Corpus

matplotlib.use("Agg")
V = 65


# --- generation cost -----------------------------------------------------------------------------


class _Recorder:
    """A model with no window that records what it reads and whether it was in eval mode."""

    def __init__(self, vocab_size=7):
        self.config = types.SimpleNamespace(vocab_size=vocab_size)
        self.training = True
        self.calls = []

    def eval(self):
        self.training = False

    def train(self, mode=True):
        self.training = mode

    def prefill(self, idx):
        self.calls.append(("prefill", idx.clone(), self.training))
        return None, ("state", idx.shape[1])

    def step(self, token, state):
        self.calls.append(("step", token.clone(), state, self.training))


def _fake_timer(monkeypatch, seen):
    """time_fn replaced: calls the function once, records its arguments, and reports a median
    that differs from both quartiles (1 ms per call made so far)."""

    def time_fn(fn, *, repeat, warmup):
        seen.append((repeat, warmup))
        fn()
        k = len(seen)
        return Timing(k * 1e-3, -1.0, -2.0, ())

    monkeypatch.setattr(lm_cost, "time_fn", time_fn)
    monkeypatch.setattr(lm_cost, "generation_flops",
                        lambda model, t, cache: 1000 * t + (1 if cache is True else 2))


def test_generation_cost_reads_the_seeded_prompt_then_steps_on_token_t(monkeypatch):
    """With a cache, position t reads the prompt's first t − 1 tokens and times one step on
    token t (the state of that prefill), in eval mode, with repeat and one warm-up; the medians,
    the positions (as a list) and the FLOPs of a cached step come back, and training is
    restored."""
    seen = []
    _fake_timer(monkeypatch, seen)
    model = _Recorder()
    out = lm_cost.generation_cost(model, (3, 6), repeat=4, seed=5)
    text = torch.randint(7, (1, 6), generator=torch.Generator().manual_seed(5))
    assert out == {"position": [3, 6], "seconds": [1e-3, 2e-3], "flops": [3001, 6001]}
    assert seen == [(4, 1), (4, 1)] and model.training
    kinds = [c[0] for c in model.calls]
    assert kinds == ["prefill", "step", "prefill", "step"]
    assert torch.equal(model.calls[0][1], text[:, :2])
    assert torch.equal(model.calls[2][1], text[:, :5])
    assert torch.equal(model.calls[1][1], text[:, 2]) and model.calls[1][2] == ("state", 2)
    assert torch.equal(model.calls[3][1], text[:, 5]) and model.calls[3][2] == ("state", 5)
    assert not any(c[-1] for c in model.calls)  # eval mode throughout


def test_generation_cost_without_cache_rereads_t_tokens_and_keeps_eval_mode(monkeypatch):
    """Without a cache, position t re-reads all t tokens; the defaults are repeat = 5 and
    seed = 0; a model that was in eval mode stays in it."""
    seen = []
    _fake_timer(monkeypatch, seen)
    model = _Recorder(vocab_size=11)
    model.training = False
    out = lm_cost.generation_cost(model, [2, 5], cache=False)
    text = torch.randint(11, (1, 5), generator=torch.Generator().manual_seed(0))
    assert out == {"position": [2, 5], "seconds": [1e-3, 2e-3], "flops": [2002, 5002]}
    assert seen == [(5, 1), (5, 1)] and not model.training
    assert [c[0] for c in model.calls] == ["prefill", "prefill"]
    assert torch.equal(model.calls[0][1], text[:, :2]) and torch.equal(model.calls[1][1], text)
    # the default cache is True and its default repeat 5 leaves room for 6 steps
    seen.clear()
    out = lm_cost.generation_cost(_Recorder(), [2])
    assert seen == [(5, 1)] and out["flops"] == [2001]


def test_generation_cost_rejects_bad_positions_in_full():
    """Positions must be a non-empty list of ints >= 2 (2 itself is accepted); the message
    shows the list given."""
    model = LSTMLM(V, 8, 1)
    for bad in ([], [4, 1], [4.0], [True, 3], [3, None]):
        with pytest.raises(ValueError) as err:
            lm_cost.generation_cost(model, bad, repeat=1)
        assert str(err.value) == ("positions must be a non-empty list of ints >= 2, "
                                  f"got {bad!r}")
    assert lm_cost.generation_cost(model, [2], repeat=1)["position"] == [2]


def test_generation_cost_window_boundary_counts_the_timed_steps():
    """A GPT of context 16 timed with repeat = 2 (3 steps after t) accepts t = 13 and rejects
    t = 14 with the full message; without a cache t = 16 itself is accepted."""
    model = GPT(V, 16, 1, 2, 16)
    assert lm_cost.generation_cost(model, [13], repeat=2)["position"] == [13]
    with pytest.raises(ValueError) as err:
        lm_cost.generation_cost(model, [4, 14], repeat=2)
    assert str(err.value) == ("positions must stay within the model's context = 16 with the 3 "
                              "timed steps after them, got 14: build the model with a longer "
                              "context to measure further")
    assert lm_cost.generation_cost(model, [16], cache=False, repeat=1)["position"] == [16]
    with pytest.raises(ValueError, match="context = 16 with the 0 timed steps after them, got 17"):
        lm_cost.generation_cost(model, [17], cache=False, repeat=1)


def test_generation_cost_rejects_a_bad_repeat_in_full():
    """repeat must be a positive int: 0, -1, 1.0 and True are refused, 1 is accepted."""
    model = LSTMLM(V, 8, 1)
    for bad in (0, -1, 1.0, True):
        with pytest.raises(ValueError) as err:
            lm_cost.generation_cost(model, [3], repeat=bad)
        assert str(err.value) == f"repeat must be a positive int, got {bad!r}"
    assert len(lm_cost.generation_cost(model, [3], repeat=1)["seconds"]) == 1


# --- gradient agreement --------------------------------------------------------------------------


class _Tiny(nn.Module):
    """Embedding → dropout → linear head, with a frozen parameter that must not be counted."""

    def __init__(self, v=V, d=3):
        super().__init__()
        self.embedding = nn.Embedding(v, d)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(d, v)
        self.frozen = nn.Parameter(torch.ones(2), requires_grad=False)

    def forward(self, x):
        return self.head(self.drop(self.embedding(x)))


def _nll(logits, targets):
    """Mean negative log-likelihood by a float64 loop: −log softmax(z)[y]."""
    total, n = 0.0, 0
    z, t = logits.double().reshape(-1, logits.shape[-1]), targets.reshape(-1)
    for row, y in zip(z, t, strict=True):
        m = row.max().item()
        total += m + math.log(sum(math.exp(a - m) for a in row.tolist())) - row[y].item()
        n += 1
    return total / n


def test_sequence_loss_scores_every_position_or_the_last_in_full():
    """"all" is the mean loss over every position (the default), "last" over the last only;
    any other choice is refused with the full message."""
    torch.manual_seed(1)
    model = _Tiny().eval()
    x, y = torch.randint(V, (2, 5)), torch.randint(V, (2, 5))
    logits = model(x)
    assert signal.sequence_loss(model, x, y).item() == pytest.approx(_nll(logits, y), abs=1e-5)
    last = signal.sequence_loss(model, x, y, "last").item()
    assert last == pytest.approx(_nll(logits[:, -1:], y[:, -1:]), abs=1e-5)
    with pytest.raises(ValueError) as err:
        signal.sequence_loss(model, x, y, "first")
    assert str(err.value) == "positions must be one of ('all', 'last'), got 'first'"


def test_gradient_flattens_every_trainable_parameter_in_order():
    """The private _gradient: d loss / d params of the parameters that require a gradient, in
    model order, flattened, float64 (closed form: the loss Σ w·a + b·c)."""
    model = nn.Module()
    model.w = nn.Parameter(torch.zeros(2, 2))
    model.skip = nn.Parameter(torch.zeros(3), requires_grad=False)
    model.b = nn.Parameter(torch.zeros(3))
    a, c = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([5.0, 6.0, 7.0])
    g = signal._gradient(model, (model.w * a).sum() + (model.b * c).sum() + model.skip.sum())
    assert g.dtype == torch.float64
    assert g.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def _agreement_oracle(model, positions, sizes, context, corpus, seed):
    """The definition, with loops: per-window gradients in eval mode, group means of k
    consecutive windows, the mean cosine over ordered pairs of different groups."""
    from sseq.lm.corpus import get_batch

    n = max(sizes)
    x, y = get_batch(corpus.train, 2 * n, context, torch.Generator().manual_seed(seed))
    model.eval()
    grads = []
    for i in range(2 * n):
        model.zero_grad()
        logits = model(x[i:i + 1])
        if positions == "last":
            logits, target = logits[:, -1:], y[i:i + 1, -1:]
        else:
            target = y[i:i + 1]
        nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                    target.reshape(-1)).backward()
        grads.append([v for p in model.parameters() if p.requires_grad
                      for v in p.grad.double().reshape(-1).tolist()])
    cosines = []
    for k in sizes:
        means = [[sum(col) / k for col in zip(*grads[j * k:(j + 1) * k], strict=True)]
                 for j in range(2 * n // k)]
        pairs = [(a, b) for i, a in enumerate(means) for j, b in enumerate(means) if i != j]
        cos = [sum(p * q for p, q in zip(a, b, strict=True))
               / math.sqrt(sum(p * p for p in a) * sum(q * q for q in b)) for a, b in pairs]
        cosines.append(sum(cos) / len(cos))
    return cosines


@pytest.mark.parametrize("positions", ["all", "last"])
def test_gradient_agreement_matches_the_definition(positions):
    """The cosines equal a float64 loop over the same windows (drawn from the corpus given,
    by the seed given), with dropout off; the model's mode is restored either way; the sizes
    come back as a list."""
    base = shakespeare()
    corpus = Corpus("slice", base.tokenizer, base.train[5000:6000], base.val[:100])
    torch.manual_seed(2)
    model = _Tiny()
    out = signal.gradient_agreement(model, positions, sizes=(1, 2, 4), context=8,
                                    corpus=corpus, seed=3)
    assert model.training
    assert out["size"] == [1, 2, 4]
    want = _agreement_oracle(_copy(model), positions, (1, 2, 4), 8, corpus, 3)
    assert out["cosine"] == pytest.approx(want, abs=1e-6)
    model.eval()
    signal.gradient_agreement(model, positions, sizes=(1,), context=4, corpus=corpus)
    assert not model.training


def _copy(model):
    clone = _Tiny()
    clone.load_state_dict(model.state_dict())
    return clone


def test_gradient_agreement_defaults_are_shakespeare_64_characters_and_seed_0():
    """Without arguments: sizes 1 … 32, windows of 64 characters from Shakespeare's training
    split, drawn with seed 0 — the same numbers as when they are given."""
    torch.manual_seed(4)
    model = _Tiny(d=1)
    out = signal.gradient_agreement(model)
    given = signal.gradient_agreement(model, "all", sizes=(1, 2, 4, 8, 16, 32), context=64,
                                      corpus=shakespeare(), seed=0)
    assert out == given and out["size"] == [1, 2, 4, 8, 16, 32]
    other = signal.gradient_agreement(model, sizes=(1,), seed=1)
    assert other["cosine"] != given["cosine"][:1]


def test_gradient_agreement_rejects_bad_sizes_in_full():
    """Every size must be a positive int dividing the largest: bools, floats, zero, negatives
    and non-divisors are refused, with max(sizes) and the sizes in the message."""
    model = _Tiny()
    for bad, n in (((True, 2), 2), ((2.0, 4), 4), ((0, 4), 4), ((-2, 4), 4), ((3, 4), 4)):
        with pytest.raises(ValueError) as err:
            signal.gradient_agreement(model, sizes=bad)
        assert str(err.value) == (f"sizes must be positive ints dividing max(sizes) = {n}, "
                                  f"got {bad!r}")


# --- checkpoints ---------------------------------------------------------------------------------


def test_a_checkpoint_file_holds_plain_float32_data(tmp_path):
    """The file (written into folders that do not exist yet, then again into the same folder)
    holds the family, the configuration as a dict, float32 weights, the tokenizer's characters
    and the meta; save_checkpoint returns its Path."""
    torch.manual_seed(0)
    model = LSTMLM(V, 8, 1).double()
    tok = shakespeare().tokenizer
    path = ckpt.save_checkpoint(model, str(tmp_path / "a" / "b" / "m.pt"), tok, val_loss=1.25)
    assert path == tmp_path / "a" / "b" / "m.pt" and isinstance(path, type(tmp_path))
    again = ckpt.save_checkpoint(model, tmp_path / "a" / "b" / "n.pt", tok)
    data = torch.load(path, weights_only=True)
    assert set(data) == {"family", "config", "state_dict", "chars", "meta"}
    assert data["family"] == "lstm" and data["config"] == asdict(model.config)
    assert data["chars"] == tok.chars and data["meta"] == {"val_loss": 1.25}
    for name, value in model.state_dict().items():
        assert data["state_dict"][name].dtype == torch.float32
        torch.testing.assert_close(data["state_dict"][name], value.float(), rtol=0, atol=0)
    assert torch.load(again, weights_only=True)["meta"] == {}


@pytest.mark.parametrize("make, family", [(lambda: GPT(V, 16, 1, 2, 16), "gpt"),
                                          (lambda: LSTMLM(V, 16, 1), "lstm"),
                                          (lambda: MambaLM(V, 16, 1, d_state=4), "mamba")])
def test_each_family_is_named_and_rebuilt_from_a_str_path(tmp_path, make, family):
    """The family recorded is the model's; load_checkpoint (given a str) rebuilds that class
    with the same configuration, in eval mode, with the tokenizer and the meta attached."""
    torch.manual_seed(0)
    model = make()
    tok = CharTokenizer("abcdefghij" + "".join(chr(0x100 + i) for i in range(V - 10)))
    path = ckpt.save_checkpoint(model, tmp_path / "m.pt", tok, note="x")
    assert torch.load(path, weights_only=True)["family"] == family
    loaded = ckpt.load_checkpoint(str(path))
    assert type(loaded) is type(model) and loaded.config == model.config
    assert not loaded.training and loaded.tokenizer == tok and loaded.meta == {"note": "x"}
    for (n1, p1), (n2, p2) in zip(loaded.state_dict().items(), model.state_dict().items(),
                                  strict=True):
        assert n1 == n2 and torch.equal(p1, p2)


def test_loading_is_strict_and_safe(tmp_path):
    """A state dict with a key the model lacks is refused (strict loading), and a file holding
    anything but plain data is refused by torch.load's weights_only mode."""
    model = LSTMLM(V, 8, 1)
    tok = shakespeare().tokenizer
    path = ckpt.save_checkpoint(model, tmp_path / "m.pt", tok)
    data = torch.load(path, weights_only=True)
    data["state_dict"]["extra"] = torch.zeros(1)
    torch.save(data, tmp_path / "extra.pt")
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "extra"'):
        ckpt.load_checkpoint(tmp_path / "extra.pt")
    ckpt.save_checkpoint(model, tmp_path / "unsafe.pt", tok, ratio=Fraction(1, 3))
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        ckpt.load_checkpoint(tmp_path / "unsafe.pt")


def test_loading_stays_safe_when_the_environment_forces_unsafe_loads(tmp_path, monkeypatch):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD turns torch.load's default to unsafe unpickling;
    load_checkpoint asks for weights_only explicitly, so a file holding an arbitrary object is
    still refused."""
    ckpt.save_checkpoint(LSTMLM(V, 8, 1), tmp_path / "unsafe.pt", shakespeare().tokenizer,
                         ratio=Fraction(1, 3))
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        ckpt.load_checkpoint(tmp_path / "unsafe.pt")


def test_a_checkpoint_written_on_a_gpu_loads_on_the_cpu(tmp_path, monkeypatch):
    """A file whose tensors are tagged with a CUDA device (as a GPU training run writes them)
    loads onto the CPU: load_checkpoint maps every tensor to the CPU."""
    import torch.serialization as ser

    torch.manual_seed(0)
    model = LSTMLM(V, 8, 1)
    with monkeypatch.context() as m:  # torch.save tags every storage "cuda:0"
        m.setattr(ser, "_package_registry",
                  [(0, lambda storage: "cuda:0", lambda storage, loc: None),
                   *ser._package_registry])
        path = ckpt.save_checkpoint(model, tmp_path / "gpu.pt", shakespeare().tokenizer)
    if not torch.cuda.is_available():  # the file really asks for a GPU
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    loaded = ckpt.load_checkpoint(path)
    for a, b in zip(loaded.parameters(), model.parameters(), strict=True):
        assert a.device.type == "cpu" and torch.equal(a, b)


def test_checkpoint_errors_in_full(tmp_path, monkeypatch):
    """A model of another class, an unknown pretrained name and a missing file are refused with
    messages that name what was given and what to do."""
    with pytest.raises(TypeError) as err:
        ckpt.save_checkpoint(nn.Linear(2, 2), tmp_path / "x.pt", shakespeare().tokenizer)
    assert str(err.value) == "model must be a GPT, LSTMLM or MambaLM, got Linear"
    with pytest.raises(ValueError) as err:
        ckpt.load_pretrained("rnn")
    assert str(err.value) == "name must be one of ('gpt', 'lstm', 'mamba'), got 'rnn'"
    monkeypatch.setattr(ckpt, "CHECKPOINTS", tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        ckpt.load_pretrained("lstm")
    assert str(err.value) == (f"no checkpoint at {tmp_path / 'lstm.pt'}: train it with "
                              "'python -m sseq.experiments lm --seeds 0'")


def test_load_pretrained_reads_name_dot_pt_from_the_folder(tmp_path, monkeypatch):
    """load_pretrained("mamba") is load_checkpoint of CHECKPOINTS / "mamba.pt"."""
    torch.manual_seed(0)
    model = MambaLM(V, 16, 1, d_state=4)
    ckpt.save_checkpoint(model, tmp_path / "mamba.pt", shakespeare().tokenizer, val_loss=2.5)
    monkeypatch.setattr(ckpt, "CHECKPOINTS", tmp_path)
    loaded = ckpt.load_pretrained("mamba")
    assert isinstance(loaded, MambaLM) and loaded.meta == {"val_loss": 2.5}
    assert all(torch.equal(a, b) for a, b in zip(loaded.parameters(), model.parameters(),
                                                 strict=True))


# --- the benchmark -------------------------------------------------------------------------------


def _fake_clock(monkeypatch):
    """Replaces the benchmark's clock: each function below advances it by the durations in
    its queue, so that the timings are known exactly."""
    now = [0.0]
    monkeypatch.setattr(lm_bench, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))

    def ticking(durations, calls, name):
        queue = list(durations)

        def fn():
            calls.append(name)
            now[0] += queue.pop(0)
        return fn

    return ticking


def test_interleaved_times_each_function_by_the_clock(monkeypatch):
    """Taking turns after one warm-up round: seconds per call, the median and the quartiles
    (statistics' exclusive method: (n + 1)p-th of the sorted runs) and the runs in order."""
    ticking, calls = _fake_clock(monkeypatch), []
    fns = {"a": ticking([100.0, 5.0, 1.0, 4.0, 2.0, 3.0], calls, "a"),
           "b": ticking([100.0, 2.0, 10.0, 6.0, 8.0, 4.0], calls, "b")}
    out = lm_bench.interleaved(fns, repeat=5, warmup=1)
    assert calls == ["a", "b"] * 6 and list(out) == ["a", "b"]
    assert out["a"] == Timing(3.0, 1.5, 4.5, (5.0, 1.0, 4.0, 2.0, 3.0))
    assert out["b"] == Timing(6.0, 3.0, 9.0, (2.0, 10.0, 6.0, 8.0, 4.0))


def test_interleaved_with_one_or_two_runs_and_two_warmups_by_default(monkeypatch):
    """One run: its time is the median and both quartiles. Two runs [1, 3]: median 2 and the
    exclusive method's extrapolated quartiles 0.5 and 3.5. Two warm-up rounds by default."""
    ticking, calls = _fake_clock(monkeypatch), []
    out = lm_bench.interleaved({"a": ticking([9.0, 9.0, 7.0], calls, "a")}, repeat=1)
    assert calls == ["a"] * 3 and out["a"] == Timing(7.0, 7.0, 7.0, (7.0,))
    out = lm_bench.interleaved({"a": ticking([1.0, 3.0], calls, "a")}, repeat=2, warmup=0)
    assert out["a"] == Timing(2.0, 0.5, 3.5, (1.0, 3.0))


class _Linear2(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[0.5, -1.0], [2.0, 0.25]]))
        self.b = nn.Parameter(torch.tensor([1.0, -0.5]))


def _adamw_oracle(params, grads, *, lr, wd, betas, clip, eps=1e-8):
    """AdamW with global-norm clipping, by hand in float64: decay on the matrix only; a
    parameter whose gradient is None (the loss did not use it) is left alone that step."""
    p = {k: [float(v) for v in t.reshape(-1).tolist()] for k, t in params.items()}
    m = {k: [0.0] * len(v) for k, v in p.items()}
    s = {k: [0.0] * len(v) for k, v in p.items()}
    steps = dict.fromkeys(p, 0)
    for g in grads:
        norm = math.sqrt(sum(x * x for v in g.values() if v is not None for x in v))
        scale = min(1.0, clip / (norm + 1e-6))
        for k in p:
            if g[k] is None:
                continue
            steps[k] += 1
            t, decay = steps[k], (wd if k == "w" else 0.0)
            for i, gi in enumerate(g[k]):
                gi *= scale
                m[k][i] = betas[0] * m[k][i] + (1 - betas[0]) * gi
                s[k][i] = betas[1] * s[k][i] + (1 - betas[1]) * gi * gi
                mhat, shat = m[k][i] / (1 - betas[0] ** t), s[k][i] / (1 - betas[1] ** t)
                p[k][i] = p[k][i] * (1 - lr * decay) - lr * mhat / (math.sqrt(shat) + eps)
    return p


def _linear_loss(model, coefs):
    """Σ w·A + Σ b·c for the next (A, c) of coefs; c None: the loss does not use b."""
    turn = iter(coefs)

    def loss_fn():
        c = next(turn)
        loss = (model.w * torch.tensor(c["w"]).view(2, 2)).sum()
        if c["b"] is not None:
            loss = loss + (model.b * torch.tensor(c["b"])).sum()
        return loss
    return loss_fn


def test_a_training_step_is_clipped_adamw_with_fresh_gradients():
    """Three steps of a linear loss whose gradient changes (a large one that is clipped, a
    small one that is not, then one that leaves the bias out) agree with AdamW worked out by
    hand: the gradients do not accumulate, the clip is the config's, weight decay falls on the
    matrix only, and a parameter the loss did not use is not moved (its gradient is None, not
    zero, so its momentum does not carry it)."""
    config = TrainConfig(lr=0.1, min_lr=0.01, weight_decay=0.5, beta1=0.8, beta2=0.9,
                         grad_clip=0.5)
    model = _Linear2()
    start = {"w": model.w.detach().clone(), "b": model.b.detach().clone()}
    coefs = [{"w": [6.0, 0.0, 0.0, 8.0], "b": [0.0, 0.0]},
             {"w": [0.01, -0.02, 0.03, 0.0], "b": [0.05, 0.04]},
             {"w": [0.02, 0.01, 0.0, -0.01], "b": None}]
    step = lm_bench.training_step(model, _linear_loss(model, coefs), config)
    step()
    step()
    after_two = model.b.detach().clone()
    step()
    want = _adamw_oracle(start, coefs, lr=0.1, wd=0.5, betas=(0.8, 0.9), clip=0.5)
    assert model.w.reshape(-1).tolist() == pytest.approx(want["w"], abs=1e-6)
    assert model.b.tolist() == pytest.approx(want["b"], abs=1e-6)
    assert torch.equal(model.b, after_two)


def test_a_training_step_uses_the_default_recipe():
    """Without a config: nanoGPT's recipe (lr 1e-3, weight decay 0.1, betas 0.9 and 0.99,
    clip 1), two steps worked out by hand."""
    model = _Linear2()
    start = {"w": model.w.detach().clone(), "b": model.b.detach().clone()}
    coefs = [{"w": [3.0, 0.0, 0.0, 4.0], "b": [0.0, 0.0]},
             {"w": [0.1, 0.2, -0.3, 0.0], "b": [0.4, 0.0]}]
    step = lm_bench.training_step(model, _linear_loss(model, coefs))
    step()
    step()
    want = _adamw_oracle(start, coefs, lr=1e-3, wd=0.1, betas=(0.9, 0.99), clip=1.0)
    assert model.w.reshape(-1).tolist() == pytest.approx(want["w"], abs=1e-6)
    assert model.b.tolist() == pytest.approx(want["b"], abs=1e-6)


def _recording(cls, made, small):
    """A stand-in for a model class: records the arguments, builds a small model instead."""

    def make(*args, **kwargs):
        model = cls(*small)
        made.append((cls.__name__, args, kwargs, model,
                     {k: v.clone() for k, v in model.state_dict().items()}))
        return model
    return make


_SMALL = {"GPT": (V, 64, 1, 2, 16), "LSTMLM": (V, 16, 1), "MambaLM": (V, 16, 1, 2, 4)}


def _patch_models(monkeypatch, made):
    for cls in (GPT, LSTMLM, MambaLM):
        monkeypatch.setattr(lm_bench, cls.__name__, _recording(cls, made, _SMALL[cls.__name__]))


def test_the_benchmarks_models_are_the_chapters_seeded():
    """The three models: their names, their sizes as the chapter builds them, seed 0 first."""
    made = []
    _patch_models(monkeypatch := pytest.MonkeyPatch(), made)
    try:
        torch.manual_seed(123)
        models = lm_bench._models()
    finally:
        monkeypatch.undo()
    assert list(models) == ["GPT (4 × 128)", "LSTM (2 × 224)", "Mamba (7 × 128, cpu scan)"]
    assert [m[:3] for m in made] == [("GPT", (65, 64, 4, 4, 128), {}),
                                                  ("LSTMLM", (65, 224, 2), {}),
                                                  ("MambaLM", (65, 128, 7), {})]
    torch.manual_seed(0)
    fresh = GPT(*_SMALL["GPT"])
    assert all(torch.equal(a, b) for a, b in zip(models["GPT (4 × 128)"].parameters(),
                                                 fresh.parameters(), strict=True))


def _fake_interleaved(monkeypatch, timings, seen):
    """interleaved replaced: records the repeat, runs every step once, returns set timings."""

    def interleaved(steps, *, repeat):
        seen.append((list(steps), repeat))
        for step in steps.values():
            step()
        return timings

    monkeypatch.setattr(lm_bench, "interleaved", interleaved)


def _batch():
    from sseq.lm.corpus import get_batch

    return get_batch(shakespeare().train, 12, 64, torch.Generator().manual_seed(0))


def test_throughput_rows_from_set_timings(monkeypatch):
    """Each model trains on the seeded batch of 12 × 64 characters; its row reports the
    parameters, milliseconds per step, the quartiles, characters per second and the FLOP
    rate from the set timings."""
    made, seen, inputs = [], [], {}
    _patch_models(monkeypatch, made)
    names = ["GPT (4 × 128)", "LSTM (2 × 224)", "Mamba (7 × 128, cpu scan)"]
    timings = {names[0]: Timing(0.004, 0.0034996, 0.0054996, ()),  # ×1001 would round up
               names[1]: Timing(0.002, 0.0014, 0.0026, ()),
               names[2]: Timing(0.008, 0.0075, 0.0091, ())}
    _fake_interleaved(monkeypatch, timings, seen)
    rows_of = {}
    orig_models = lm_bench._models

    def models():
        out = orig_models()
        for name, m in out.items():
            rows_of[name] = m
            m.register_forward_pre_hook(lambda mod, args, name=name:
                                        inputs.setdefault(name, args[0].clone()))
        return out

    monkeypatch.setattr(lm_bench, "_models", models)
    torch.manual_seed(12345)  # the batch is drawn by its own seeded generator
    rows = lm_bench.throughput_rows(7)
    assert seen == [(names, 7)]
    x, _ = _batch()
    assert all(torch.equal(inputs[n], x) for n in names)
    from sseq.lm.flops import train_step_flops

    want = []
    for name, ms, iqr, chars in ((names[0], 4.0, "3–5", "192,000"),
                                 (names[1], 2.0, "1–3", "384,000"),
                                 (names[2], 8.0, "8–9", "96,000")):
        m = rows_of[name]
        flops = train_step_flops(m, 12, 64)
        want.append({"model": name, "parameters": f"{sum(p.numel() for p in m.parameters()):,}",
                     "ms / step": pytest.approx(ms), "IQR (ms)": iqr, "chars / s": chars,
                     "GFLOP / step": pytest.approx(flops / 1e9, rel=1e-12, abs=0),
                     "GFLOP/s": pytest.approx(flops / 1e9 / (ms / 1e3), rel=1e-12, abs=0)})
    assert rows == want
    assert "," in rows[0]["parameters"]  # thousands are separated


def test_nanogpt_rows_divide_each_turn_by_nanogpts(monkeypatch, tmp_path):
    """Beside nanoGPT: the seeded book GPT at nanoGPT's CPU shape and nanoGPT's model from the
    path given, trained on the same batch; the ratio column is the median over turns of each
    step divided by nanoGPT's step of that turn."""
    made, seen, got = [], [], {}
    monkeypatch.setattr(lm_bench, "GPT", _recording(GPT, made, _SMALL["GPT"]))

    class Theirs(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(1, V)

        def forward(self, x, y):
            got["xy"] = (x.clone(), y.clone())
            logits = self.head(x[..., None].float())
            return logits, nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))

    def load(path):
        got["path"] = path
        return Theirs()

    monkeypatch.setattr(lm_bench, "load_nanogpt", load)
    timings = {"sseq.lm.GPT": Timing(0.004, 0.0034996, 0.0054996, (0.002, 0.006, 0.004)),
               "nanoGPT model.py": Timing(0.002, 0.0012, 0.0036, (0.001, 0.002, 0.004))}
    _fake_interleaved(monkeypatch, timings, seen)
    torch.manual_seed(99)
    rows = lm_bench.nanogpt_rows(tmp_path, 3)
    assert seen == [(["sseq.lm.GPT", "nanoGPT model.py"], 3)] and got["path"] == tmp_path
    x, y = _batch()
    assert torch.equal(got["xy"][0], x) and torch.equal(got["xy"][1], y)
    ours = made[0][3]
    assert made[0][1] == (65, 64, 4, 4, 128)
    torch.manual_seed(0)
    fresh = GPT(*_SMALL["GPT"]).state_dict()
    assert all(torch.equal(fresh[k], v) for k, v in made[0][4].items())
    n_ours = sum(p.numel() for p in ours.parameters())
    assert rows == [{"model": "sseq.lm.GPT", "parameters": f"{n_ours:,}",
                     "ms / step": pytest.approx(4.0), "IQR (ms)": "3–5",
                     "time / nanoGPT's (median of turns)": pytest.approx(2.0)},
                    {"model": "nanoGPT model.py", "parameters": f"{2 * V:,}",
                     "ms / step": pytest.approx(2.0), "IQR (ms)": "1–4",
                     "time / nanoGPT's (median of turns)": pytest.approx(1.0)}]


_TABLE = "| model | ms / step |\n|-------|-----------|\n| m     | 2.5       |"
_NANO = "| model | ratio |\n|-------|-------|\n| n     | 1.25  |"
_HEAD = ("Training steps, batch 12 × context 64, one thread, {} steps each, taking turns "
         "(median)\n\n")


def _fake_tables(monkeypatch, seen):
    def throughput(repeat):
        seen.append(("throughput", repeat, torch.get_num_threads()))
        return [{"model": "m", "ms / step": 2.5}]

    def nanogpt(path, repeat):
        seen.append(("nanogpt", path, repeat, torch.get_num_threads()))
        return [{"model": "n", "ratio": 1.25}]

    monkeypatch.setattr(lm_bench, "throughput_rows", throughput)
    monkeypatch.setattr(lm_bench, "nanogpt_rows", nanogpt)


def test_main_prints_the_tables_on_one_thread_and_restores_the_threads(monkeypatch, capsys):
    """The printed text, exactly: 5 steps when quick, 30 otherwise; without --nanogpt (or with
    an empty one) a hint instead of the second table; the thread count is 1 while timing and
    the caller's afterwards."""
    threads = torch.get_num_threads()
    seen = []
    _fake_tables(monkeypatch, seen)
    try:
        torch.set_num_threads(3)
        lm_bench.main(types.SimpleNamespace(quick=True))
        hint = ("\n(pass --nanogpt PATH, a clone of karpathy/nanoGPT, to time its model.py "
                "beside the book's GPT)\n")
        assert capsys.readouterr().out == _HEAD.format(5) + _TABLE + "\n" + hint
        assert seen == [("throughput", 5, 1)] and torch.get_num_threads() == 3
        lm_bench.main(types.SimpleNamespace(quick=False, nanogpt="/x/nanoGPT"))
        assert capsys.readouterr().out == (
            _HEAD.format(30) + _TABLE + "\n\nBeside nanoGPT's model.py at its CPU setting "
            "(same batch, same AdamW)\n\n" + _NANO + "\n")
        assert seen[1:] == [("throughput", 30, 1), ("nanogpt", "/x/nanoGPT", 30, 1)]
        lm_bench.main(types.SimpleNamespace(quick=True, nanogpt=""))
        assert capsys.readouterr().out.endswith(hint) and len(seen) == 4
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)


def test_main_restores_the_threads_when_a_table_fails(monkeypatch):
    """An error while timing still gives the caller back its thread count."""
    threads = torch.get_num_threads()

    def boom(repeat):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(lm_bench, "throughput_rows", boom)
    try:
        torch.set_num_threads(2)
        with pytest.raises(RuntimeError, match="out of memory"):
            lm_bench.main(types.SimpleNamespace(quick=True))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_load_nanogpt_names_its_module_and_the_missing_file(tmp_path, capsys):
    """nanoGPT's model.py is imported as the module "nanogpt_model" and whatever it writes to
    sys.stdout is kept off the table; without it, the error says where it looked and what to
    pass."""
    with pytest.raises(FileNotFoundError) as err:
        lm_bench.load_nanogpt(tmp_path)
    assert str(err.value) == f"no model.py in {tmp_path}: pass a clone of karpathy/nanoGPT"
    (tmp_path / "model.py").write_text(
        "import torch\n"
        "class GPTConfig:\n"
        "    def __init__(self, **kw): self.kw = kw\n"
        "class GPT(torch.nn.Module):\n"
        "    def __init__(self, config):\n"
        "        import sys; sys.stdout.write('number of parameters: 0.80M\\n')\n"
        "        super().__init__(); self.kw = config.kw; self.name = __name__\n")
    model = lm_bench.load_nanogpt(str(tmp_path))
    assert model.name == "nanogpt_model" and type(model).__module__ == "nanogpt_model"
    assert capsys.readouterr().out == ""  # written to sys.stdout, which is set aside


# --- the explorer --------------------------------------------------------------------------------


class _FixedLogits:
    """A model whose next-token logits are log(weights) whatever the prompt (no eval method)."""

    def __init__(self, weights):
        self.logits = torch.tensor(weights, dtype=torch.float32).log()[None]
        self.read = []

    def prefill(self, idx):
        self.read.append(idx.clone())
        return self.logits, None


_TOK = CharTokenizer("ab \nc")  # ids: "\n" 0, " " 1, "a" 2, "b" 3, "c" 4
_WEIGHTS = [1.0, 2.0, 3.0, 4.0, 10.0]  # probabilities 0.05, 0.1, 0.15, 0.2, 0.5


def test_labels_show_newlines_and_spaces():
    """A newline is drawn as \\n, a space as ␣, any other character as itself."""
    assert [explore._label(c) for c in "\n a"] == ["\\n", "␣", "a"]


def test_plot_next_token_draws_the_most_likely_characters():
    """Defaults (τ = 1, all characters, up to 15 bars): all five bars, most likely first,
    heights the probabilities worked out by hand, labelled, in the book's attention colour,
    with the axes and title set."""
    import matplotlib.pyplot as plt

    model = _FixedLogits(_WEIGHTS)
    fig, ax = plt.subplots()
    out_ax, probs = explore.plot_next_token(ax, model, "ab c", _TOK)
    assert out_ax is ax and probs.tolist() == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.5])
    assert torch.equal(model.read[0], torch.tensor([[2, 3, 1, 4]]))
    assert [p.get_height() for p in ax.patches] == pytest.approx([0.5, 0.2, 0.15, 0.1, 0.05])
    assert [p.get_x() + p.get_width() / 2 for p in ax.patches] == pytest.approx(range(5))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c", "b", "a", "␣", "\\n"]
    from matplotlib.colors import to_rgba

    from sseq.viz import PALETTE

    # the book's colour for attention models, as in every chapter's figures
    assert {p.get_facecolor() for p in ax.patches} == {to_rgba(PALETTE["attention"])}
    assert ax.get_xlabel() == "next character" and ax.get_ylabel() == "probability"
    assert ax.get_ylim() == (0, 1)
    assert ax.get_title() == "After 'ab c': τ = 1, top-k = all"
    plt.close(fig)


def test_plot_next_token_follows_temperature_top_k_and_n_shown():
    """τ = 0.5 squares the weights (1, 4, 9, 16, 100 over 130); top-k = 3 keeps the three
    largest; two bars are shown; the title quotes the prompt's last 20 characters."""
    import matplotlib.pyplot as plt

    model = _FixedLogits(_WEIGHTS)
    prompt = "abc " * 6 + "\nb"
    fig, ax = plt.subplots()
    _, probs = explore.plot_next_token(ax, model, prompt, _TOK, 0.5, 3, n_shown=2)
    assert probs.tolist() == pytest.approx([0, 0, 9 / 125, 16 / 125, 100 / 125])
    assert [p.get_height() for p in ax.patches] == pytest.approx([100 / 125, 16 / 125])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c", "b"]
    assert ax.get_title() == f"After {prompt[-20:]!r}: τ = 0.5, top-k = 3"
    plt.close(fig)


def test_the_explorers_update_draws_and_prints_a_seeded_sample(monkeypatch, capsys):
    """The controls' ranges, and the update behind them: by default the first model at τ = 1,
    all characters, seed 0; otherwise the chosen ones (top-k 0 meaning all). It draws the
    distribution on an 8 × 3 figure and prints generate's sample for the same settings."""
    pytest.importorskip("ipywidgets")
    import matplotlib.pyplot as plt

    from sseq.lm import generate

    torch.manual_seed(0)
    tok = shakespeare().tokenizer
    models = {"one": LSTMLM(V, 8, 1), "two": LSTMLM(V, 8, 1)}
    box = explore.sampling_explorer(models, tok, prompt="ROMEO:", n_new=6)
    model_w, temp_w, k_w, seed_w = box.children[:4]
    assert list(model_w.options) == ["one", "two"] and model_w.value == "one"
    assert (temp_w.value, temp_w.min, temp_w.max, temp_w.step) == (1.0, 0.1, 2.0, 0.1)
    assert (k_w.value, k_w.min, k_w.max) == (0, 0, V)
    assert (seed_w.value, seed_w.min, seed_w.max) == (0, 0, 20)
    assert [w.description for w in box.children[:4]] == ["model", "temperature τ",
                                                         "top-k (0: all)", "seed"]
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    capsys.readouterr()
    for kwargs, (name, tau, k, seed) in (({}, ("one", 1.0, None, 0)),
                                         ({"model": "two", "temperature": 0.5, "top_k": 3,
                                           "seed": 2}, ("two", 0.5, 3, 2))):
        box.f(**kwargs)
        out = capsys.readouterr().out
        fig = shown[-1]
        assert tuple(fig.get_size_inches()) == (8.0, 3.0)
        ax = fig.axes[0]
        want = explore.next_token_probs(models[name], "ROMEO:", tok, tau, k)
        assert [p.get_height() for p in ax.patches] == pytest.approx(
            torch.topk(want, 15).values.tolist())
        assert ax.get_title() == f"After 'ROMEO:': τ = {tau:g}, top-k = {k or 'all'}"
        sample = generate(models[name], "ROMEO:", 6, tau, k, seed, tokenizer=tok)
        assert out == sample + "\n"
        plt.close(fig)


def test_the_explorer_continues_juliet_for_160_characters_by_default(monkeypatch, capsys):
    """Without prompt and n_new, the explorer continues "JULIET:\\n" by 160 characters."""
    pytest.importorskip("ipywidgets")
    import matplotlib.pyplot as plt

    from sseq.lm import generate

    torch.manual_seed(0)
    tok, model = shakespeare().tokenizer, LSTMLM(V, 8, 1)
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    box = explore.sampling_explorer({"only": model}, tok)
    capsys.readouterr()
    box.f()
    out = capsys.readouterr().out
    assert shown[-1].axes[0].get_title() == "After 'JULIET:\\n': τ = 1, top-k = all"
    assert out == generate(model, "JULIET:\n", 160, 1.0, None, 0, tokenizer=tok) + "\n"
    assert len(out) == len("JULIET:\n") + 160 + 1
    plt.close("all")
