"""Chapter 6 and 8's experiment definitions (copying, induction heads, MQAR, selective
copying), each checked against expectations written out here: the jobs a configuration
lists, the data and model a run is given, what it records, how its summary is computed
from made-up logs, and what its plots and tables show. No test trains for more than a few
steps: the training loop itself is tested in tests/test_ch8_experiments.py."""

from __future__ import annotations

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from sseq import models, recall_tasks  # noqa: E402
from sseq.experiments import copying, induction, mqar, mqar_long  # noqa: E402

HYBRID = ["mamba", "attention", "mamba"]
COLORS = {"transformer": "#D55E00", "transformer_rope": "#CC79A7", "mamba": "#0072B2",
          "lstm": "#E69F00", "hybrid": "#009E73"}  # recall.STYLES through viz.PALETTE


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(
        sa[k].shape == sb[k].shape and torch.equal(sa[k], sb[k]) for k in sa)


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


class _Recorder:
    """Stands in for ``train_on_task`` (records its arguments, trains nothing, returns a log)
    and for ``sequence_accuracy`` (records its calls, returns distinct token / sequence
    accuracies so that a test can tell which was kept)."""

    def __init__(self, log):
        self.log, self.train, self.scored = log, None, []

    def train_on_task(self, model, sample, eval_set, **kwargs):
        self.train = {"model": model, "sample": sample, "eval_set": eval_set, **kwargs}
        return dict(self.log)

    def sequence_accuracy(self, model, inputs, targets, **kwargs):
        self.scored.append((model, inputs, targets, kwargs))
        k = len(self.scored)
        return 0.1 * k, 0.01 * k


@pytest.fixture
def recorder(monkeypatch):
    rec = _Recorder({"step": [1], "seq_acc": [0.5]})
    for module in (copying, induction, mqar):
        monkeypatch.setattr(module, "train_on_task", rec.train_on_task)
    monkeypatch.setattr(recall_tasks, "sequence_accuracy", rec.sequence_accuracy)
    return rec


def _pairs_equal(got, want) -> bool:
    return len(got) == len(want) == 2 and all(torch.equal(g, w) for g, w in zip(got, want,
                                                                                 strict=True))


def _flat(obj, key=""):
    """{path: value} of a nested summary, so that it can be compared with a tolerance."""
    if isinstance(obj, dict):
        return {k: v for name, sub in obj.items() for k, v in _flat(sub, f"{key}/{name}").items()}
    if isinstance(obj, (list, tuple)):
        return {k: v for i, sub in enumerate(obj) for k, v in _flat(sub, f"{key}[{i}]").items()}
    return {key: obj}


def _close(got, want) -> bool:
    """Nested dicts and lists of the same structure and keys, numbers equal to 1e-12."""
    return _flat(got) == pytest.approx(_flat(want), rel=1e-12, abs=1e-15)


def _lines(ax) -> dict:
    """{label: (x, y, colour)} of the plotted lines."""
    return {line.get_label(): (list(line.get_xdata()), [round(float(v), 9)
                                                        for v in line.get_ydata()],
                               line.get_color()) for line in ax.get_lines()}


@pytest.fixture
def ax():
    fig, axes = plt.subplots()
    yield axes
    plt.close(fig)


# --- copying -----------------------------------------------------------------------------------


def test_copying_defaults_and_quick_are_the_documented_runs():
    """The full copying run: strings of 1-16 letters of 26, tested at 4..48, five families of
    width 32 (Mamba's N = 8), 800 steps of 32, lr 2e-3, records every 100 steps on 256
    held-out strings; QUICK: 100 steps, two families, three test lengths."""
    c = copying.Config()
    assert (c.train_length, c.test_lengths, c.n_symbols, c.d_model, c.d_state) == (
        16, (4, 8, 12, 16, 24, 32, 48), 26, 32, 8)
    assert (c.steps, c.batch_size, c.lr, c.eval_every, c.n_eval) == (800, 32, 2e-3, 100, 256)
    assert c.families == ("transformer", "transformer_rope", "mamba", "lstm", "hybrid")
    q = copying.QUICK
    assert (q.steps, q.eval_every, q.n_eval, q.test_lengths, q.families) == (
        100, 50, 64, (8, 16, 32), ("transformer", "mamba"))
    assert copying.PREFIX_STEPS == 100 and copying.RECORDS == ("step", "loss", "token_acc",
                                                               "seq_acc")


def test_copying_jobs_are_every_family_then_seed():
    """One job per (family, seed), families in the configuration's order, seeds inside."""
    config = copying.Config(families=("lstm", "mamba"))
    assert copying.jobs(config, [3, 1]) == [
        {"family": "lstm", "seed": 3}, {"family": "lstm", "seed": 1},
        {"family": "mamba", "seed": 3}, {"family": "mamba", "seed": 1}]


@pytest.mark.parametrize("family", ["hybrid", "mamba", "transformer_rope"])
def test_copying_build_is_the_family_over_the_copy_vocabulary(family):
    """The model of a copying run: the family (the hybrid: Mamba, attention, Mamba) over the
    n_symbols + 4 tokens of the task, of the config's width and state, from the job's seed."""
    config = copying.Config(n_symbols=5, d_model=16, d_state=4)
    kind = HYBRID if family == "hybrid" else family
    want = models.build(kind, 9, d_model=16, d_state=4, seed=3)
    assert _same_weights(copying.build(config, family, 3), want)
    assert not _same_weights(copying.build(config, family, 4), want)


def test_copying_samples_strings_of_every_length_up_to_the_training_length():
    """A training batch: strings of 1 .. train_length letters of the config's alphabet, drawn
    from the generator given."""
    config = copying.Config(train_length=3, n_symbols=5)
    got = copying._sample(config, 40, torch.Generator().manual_seed(7))
    want = recall_tasks.copying(40, 3, min_length=1, n_symbols=5,
                                seed=torch.Generator().manual_seed(7))
    assert _pairs_equal(got, want)
    lengths = (got[0] == recall_tasks.copy_tokens(5)["SEP"]).int().argmax(1) - 1
    assert set(lengths.tolist()) == {1, 2, 3}


@pytest.mark.parametrize("steps, want_steps", [(None, 7), (2, 2)])
def test_copying_run_job_trains_on_the_task_and_scores_each_test_length(recorder, steps,
                                                                         want_steps):
    """run_job trains the job's model (its family and seed) on fresh strings of 1 ..
    train_length letters with the config's budget (or the ``steps`` asked for), scores the
    held-out set (seed 1) during training, then the string accuracy (not the token accuracy)
    on n_eval strings of exactly each test length (seed 2) of the trained model."""
    real_sample = recall_tasks.copying
    config = copying.Config(train_length=3, test_lengths=(2, 5), n_symbols=4, d_model=8,
                            d_state=2, steps=7, batch_size=5, lr=0.25, eval_every=3,
                            n_eval=6)
    log = copying.run_job(config, {"family": "mamba", "seed": 2}, steps=steps)
    t = recorder.train
    assert {k: t[k] for k in ("steps", "batch_size", "lr", "seed", "eval_every")} == {
        "steps": want_steps, "batch_size": 5, "lr": 0.25, "seed": 2, "eval_every": 3}
    assert set(t) == {"model", "sample", "eval_set", "steps", "batch_size", "lr", "seed",
                      "eval_every"}
    assert _same_weights(t["model"], models.build("mamba", 8, d_model=8, d_state=2, seed=2))
    assert _pairs_equal(t["eval_set"], real_sample(6, 3, min_length=1, n_symbols=4, seed=1))
    assert _pairs_equal(t["sample"](4, torch.Generator().manual_seed(5)),
                        real_sample(4, 3, min_length=1, n_symbols=4,
                                    seed=torch.Generator().manual_seed(5)))
    assert [s[0] for s in recorder.scored] == [t["model"]] * 2
    for (_, inputs, targets, kwargs), n in zip(recorder.scored, (2, 5), strict=True):
        assert _pairs_equal((inputs, targets), real_sample(6, n, n_symbols=4, seed=2))
        assert kwargs == {}
    assert log == {"step": [1], "seq_acc": [0.5], "length_acc": [0.01, 0.02]}


def _copying_runs():
    """Made-up runs: two seeds of Mamba and LSTM, and a Transformer run the config leaves out."""
    def run(family, seed, seq_acc, length_acc):
        return {"family": family, "seed": seed,
                "log": {"seq_acc": seq_acc, "length_acc": length_acc}}
    return [run("mamba", 0, [0.1, 0.6], [1.0, 0.5, 0.2]),
            run("transformer", 0, [0.9, 0.95], [0.0, 0.0, 0.0]),
            run("lstm", 0, [0.2, 0.3], [0.8, 0.4, 0.0]),
            run("mamba", 1, [0.3, 0.8], [0.6, 0.25, 0.1]),
            run("lstm", 1, [0.4, 0.5], [1.0, 0.2, 0.1])]


def test_copying_summary_from_made_up_logs():
    """Per family of the config: parameters of its model, the last string accuracy of each
    seed and their mean, and the mean, min and max over seeds at each test length."""
    config = copying.Config(families=("mamba", "lstm"), n_symbols=5, d_model=8, d_state=2,
                            test_lengths=(2, 4, 8))
    out = copying.summarize(config, _copying_runs())
    assert list(out) == ["mamba", "lstm"]
    assert out["mamba"]["parameters"] == _n_params(
        models.build("mamba", 9, d_model=8, d_state=2))
    assert out["lstm"]["parameters"] == _n_params(models.build("lstm", 9, d_model=8))
    del out["mamba"]["parameters"], out["lstm"]["parameters"]
    assert _close(out, {
        "mamba": {"final_seq_acc": [0.6, 0.8], "mean_seq_acc": 0.7,
                  "length_mean": [0.8, 0.375, 0.15], "length_min": [0.6, 0.25, 0.1],
                  "length_max": [1.0, 0.5, 0.2]},
        "lstm": {"final_seq_acc": [0.3, 0.5], "mean_seq_acc": 0.4,
                 "length_mean": [0.9, 0.3, 0.05], "length_min": [0.8, 0.2, 0.0],
                 "length_max": [1.0, 0.4, 0.1]}})


def test_copying_summary_counts_the_hybrids_parameters():
    """The hybrid's parameters are those of Mamba, attention, Mamba (not of a family)."""
    config = copying.Config(families=("hybrid",), n_symbols=5, d_model=8, d_state=2)
    runs = [{"family": "hybrid", "seed": 0, "log": {"seq_acc": [1.0], "length_acc": [1.0]}}]
    assert copying.summarize(config, runs)["hybrid"]["parameters"] == _n_params(
        models.build(HYBRID, 9, d_model=8, d_state=2))


def _copying_results(families=("mamba", "lstm")):
    runs = []
    for run in _copying_runs():
        run["log"]["examples"] = [32, 64]
        runs.append(run)
    return {"config": {"families": list(families), "train_length": 12,
                       "test_lengths": [4, 16, 40]}, "runs": runs}


def test_copying_plot_learning_draws_each_familys_string_accuracy(ax):
    """plot_learning: per family (the stored config's, or those asked for) the mean over seeds
    of the held-out string accuracy against the examples seen, labelled and coloured; axes
    named, y from just below 0 to just above 1, the training lengths in the title."""
    assert copying.plot_learning(ax, _copying_results()) is ax
    assert _lines(ax) == {"Mamba": ([32, 64], [0.2, 0.7], COLORS["mamba"]),
                          "LSTM": ([32, 64], [0.3, 0.4], COLORS["lstm"])}
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_ylim(), ax.get_title()) == (
        "training examples seen", "strings copied exactly", (-0.02, 1.02),
        "Copying strings of 1–12 letters")
    ax.clear()
    copying.plot_learning(ax, _copying_results(), families=["lstm"])
    assert list(_lines(ax)) == ["LSTM"]


def test_copying_plot_lengths_draws_accuracy_by_length_over_the_trained_range(ax):
    """plot_lengths: the trained lengths 0 .. train_length shaded light grey (no edge) and
    labelled, then per family the mean string accuracy at each test length; x up to one past
    the longest test length."""
    assert copying.plot_lengths(ax, _copying_results()) is ax
    assert _lines(ax) == {"Mamba": ([4, 16, 40], [0.8, 0.375, 0.15], COLORS["mamba"]),
                          "LSTM": ([4, 16, 40], [0.9, 0.3, 0.05], COLORS["lstm"])}
    (span,) = ax.patches
    corners = span.get_path().transformed(span.get_patch_transform()).vertices
    assert (corners[:, 0].min(), corners[:, 0].max()) == (0, 12)
    assert span.get_facecolor() == to_rgba("0.9") and span.get_linewidth() == 0
    assert span.get_label() == "lengths trained on"
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_ylim(), ax.get_xlim(), ax.get_title()) == (
        "string length (letters)", "strings copied exactly", (-0.02, 1.02), (0, 41),
        "Copying: length generalisation")
    ax.clear()
    copying.plot_lengths(ax, _copying_results(), families=["mamba"])
    assert list(_lines(ax)) == ["Mamba"]


def _style(ax, label: str) -> tuple:
    """(x, y, colour, line style, width) of the line labelled ``label``."""
    (line,) = [li for li in ax.get_lines() if li.get_label() == label]
    return (list(line.get_xdata()), list(line.get_ydata()), line.get_color(),
            line.get_linestyle(), line.get_linewidth())


# --- induction heads ---------------------------------------------------------------------------


def test_induction_defaults_and_quick_are_the_documented_runs():
    """The full induction run: 16 symbols, trained at 32 tokens, tested at 16..512, four
    families of width 32 (N = 8), 800 steps of 32 at lr 2e-3, records every 100 steps on 256
    held-out sequences; QUICK: 100 steps, RoPE and Mamba, tested at 32 and 128."""
    c = induction.Config()
    assert (c.n_symbols, c.train_length, c.test_lengths, c.d_model, c.d_state) == (
        16, 32, (16, 32, 64, 128, 256, 512), 32, 8)
    assert (c.steps, c.batch_size, c.lr, c.eval_every, c.n_eval) == (800, 32, 2e-3, 100, 256)
    assert c.families == ("transformer", "transformer_rope", "mamba", "hybrid")
    q = induction.QUICK
    assert (q.steps, q.eval_every, q.n_eval, q.test_lengths, q.families) == (
        100, 50, 64, (32, 128), ("transformer_rope", "mamba"))
    assert induction.PREFIX_STEPS == 100
    assert induction.RECORDS == ("step", "loss", "token_acc")


def test_induction_jobs_are_every_family_then_seed():
    """One job per (family, seed), families in the configuration's order, seeds inside."""
    config = induction.Config(families=("mamba", "transformer"))
    assert induction.jobs(config, [0, 5]) == [
        {"family": "mamba", "seed": 0}, {"family": "mamba", "seed": 5},
        {"family": "transformer", "seed": 0}, {"family": "transformer", "seed": 5}]


@pytest.mark.parametrize("family", ["hybrid", "mamba"])
def test_induction_build_is_the_family_over_symbols_and_marker(family):
    """The model of an induction run: the family (the hybrid: Mamba, attention, Mamba) over
    the n_symbols + 2 tokens of the task, of the config's width and state, from the seed."""
    config = induction.Config(n_symbols=5, d_model=16, d_state=4)
    kind = HYBRID if family == "hybrid" else family
    want = models.build(kind, 7, d_model=16, d_state=4, seed=3)
    assert _same_weights(induction.build(config, family, 3), want)
    assert not _same_weights(induction.build(config, family, 4), want)


@pytest.mark.parametrize("steps, want_steps", [(None, 7), (2, 2)])
def test_induction_run_job_trains_at_one_length_and_scores_each_test_length(recorder, steps,
                                                                            want_steps):
    """run_job trains the job's model on fresh sequences of train_length tokens with the
    config's budget (or the ``steps`` asked for), the held-out set drawn with seed 1; then the
    answer accuracy (the token accuracy: one scored token per sequence) of the trained model on
    n_eval sequences of each test length (seed 2), 64 sequences per forward pass."""
    real_sample = recall_tasks.induction_heads
    config = induction.Config(n_symbols=4, train_length=6, test_lengths=(5, 9), d_model=8,
                              d_state=2, steps=7, batch_size=5, lr=0.25, eval_every=3,
                              n_eval=6)
    log = induction.run_job(config, {"family": "transformer", "seed": 2}, steps=steps)
    t = recorder.train
    assert {k: t[k] for k in ("steps", "batch_size", "lr", "seed", "eval_every")} == {
        "steps": want_steps, "batch_size": 5, "lr": 0.25, "seed": 2, "eval_every": 3}
    assert set(t) == {"model", "sample", "eval_set", "steps", "batch_size", "lr", "seed",
                      "eval_every"}
    assert _same_weights(t["model"], models.build("transformer", 6, d_model=8, seed=2))
    assert _pairs_equal(t["eval_set"], real_sample(6, 6, n_symbols=4, seed=1))
    assert _pairs_equal(t["sample"](4, torch.Generator().manual_seed(5)),
                        real_sample(4, 6, n_symbols=4, seed=torch.Generator().manual_seed(5)))
    assert [s[0] for s in recorder.scored] == [t["model"]] * 2
    for (_, inputs, targets, kwargs), n in zip(recorder.scored, (5, 9), strict=True):
        assert _pairs_equal((inputs, targets), real_sample(6, n, n_symbols=4, seed=2))
        assert kwargs == {"batch_size": 64}
    assert log == {"step": [1], "seq_acc": [0.5], "length_acc": [0.1, 0.2]}


def test_induction_summary_from_made_up_logs():
    """Per family of the config: its model's parameters, and the mean, min and max over seeds
    of the accuracy at each test length (a family the config leaves out is ignored)."""
    config = induction.Config(families=("mamba", "hybrid"), n_symbols=5, d_model=8, d_state=2)
    runs = [{"family": f, "seed": s, "log": {"length_acc": acc}} for f, s, acc in [
        ("mamba", 0, [1.0, 0.5]), ("transformer", 0, [0.0, 0.0]), ("hybrid", 0, [0.9, 0.2]),
        ("mamba", 1, [0.8, 0.25]), ("hybrid", 1, [0.7, 0.6]), ("mamba", 2, [0.6, 0.0])]]
    out = induction.summarize(config, runs)
    assert list(out) == ["mamba", "hybrid"]
    assert out["mamba"].pop("parameters") == _n_params(
        models.build("mamba", 7, d_model=8, d_state=2))
    assert out["hybrid"].pop("parameters") == _n_params(
        models.build(HYBRID, 7, d_model=8, d_state=2))
    assert _close(out, {
        "mamba": {"length_mean": [0.8, 0.25], "length_min": [0.6, 0.0],
                  "length_max": [1.0, 0.5]},
        "hybrid": {"length_mean": [0.8, 0.4], "length_min": [0.7, 0.2],
                   "length_max": [0.9, 0.6]}})


def _induction_results():
    runs = [{"family": f, "seed": s, "log": {"length_acc": acc}} for f, s, acc in [
        ("mamba", 0, [1.0, 0.5, 0.25]), ("transformer_rope", 0, [0.5, 0.5, 0.0]),
        ("mamba", 1, [0.5, 0.25, 0.75])]]
    return {"config": {"families": ["mamba", "transformer_rope"], "train_length": 8,
                       "n_symbols": 4, "test_lengths": [4, 8, 64]}, "runs": runs}


def test_induction_plot_lengths_marks_training_length_and_chance_on_a_log2_axis(ax):
    """plot_lengths: per family the mean accuracy at each test length, a dotted grey line at
    the training length and another at chance (1 / n_symbols), x on a base-2 log scale, axes
    named, y just beyond 0 .. 1."""
    assert induction.plot_lengths(ax, _induction_results()) is ax
    lines = _lines(ax)
    assert lines["Mamba"] == ([4, 8, 64], [0.75, 0.375, 0.5], COLORS["mamba"])
    assert lines["Transformer (RoPE)"] == ([4, 8, 64], [0.5, 0.5, 0.0],
                                           COLORS["transformer_rope"])
    assert list(lines) == ["Mamba", "Transformer (RoPE)", "training length", "chance"]
    assert _style(ax, "training length") == ([8, 8], [0, 1], "0.5", ":", 1)
    assert _style(ax, "chance") == ([0, 1], [0.25, 0.25], "0.3", ":", 1)
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_ylim(), ax.get_title()) == (
        "sequence length (tokens)", "answer accuracy", (-0.02, 1.02),
        "Induction heads: train short, test long")
    ax.clear()
    induction.plot_lengths(ax, _induction_results(), families=["transformer_rope"])
    assert list(_lines(ax))[0] == "Transformer (RoPE)" and "Mamba" not in _lines(ax)


# --- MQAR --------------------------------------------------------------------------------------


def test_mqar_defaults_quick_and_the_long_run_are_the_documented_runs():
    """The MQAR sweep: 48 tokens over 64 symbols, 2, 4, 8 pairs at width 32 and widths 16, 32,
    64 at 8 pairs (N = 8), learning rates 1e-3 and 3e-3, 300 steps of 32, records every 100
    on 256 held-out sequences, Transformer and Mamba; QUICK one point, one rate, 100 steps.
    mqar_long: the sweep's point (4 pairs, width 32) at lr 3e-3 for 1,500 steps."""
    c = mqar.Config()
    assert (c.length, c.vocab_size, c.d_model, c.pairs, c.width_pairs, c.widths, c.d_state) == (
        48, 64, 32, (2, 4, 8), 8, (16, 32, 64), 8)
    assert (c.lrs, c.steps, c.batch_size, c.eval_every, c.n_eval, c.families) == (
        (1e-3, 3e-3), 300, 32, 100, 256, ("transformer", "mamba"))
    q = mqar.QUICK
    assert (q.steps, q.eval_every, q.n_eval, q.pairs, q.widths, q.lrs) == (
        100, 50, 64, (4,), (32,), (3e-3,))
    assert mqar.PREFIX_STEPS == 100
    long = mqar_long.Config()
    assert (long.pairs, long.width_pairs, long.widths, long.lrs, long.steps, long.eval_every,
            long.length, long.batch_size) == ((4,), 4, (32,), (3e-3,), 1500, 250, 48, 32)
    assert mqar.points(long) == [(4, 32)] and mqar_long.PREFIX_STEPS == 250
    assert mqar_long.run_job is mqar.run_job and mqar_long.summarize is mqar.summarize
    assert (mqar_long.QUICK.steps, mqar_long.QUICK.eval_every, mqar_long.QUICK.n_eval) == (
        100, 50, 64)


def test_mqar_points_are_both_sweeps_without_repeats():
    """The pairs sweep at d_model, then the width sweep at width_pairs, a point both sweeps
    share listed once (where the pairs sweep put it)."""
    config = mqar.Config(pairs=(2, 4, 8), d_model=32, width_pairs=4, widths=(16, 32, 64))
    assert mqar.points(config) == [(2, 32), (4, 32), (8, 32), (4, 16), (4, 64)]
    assert mqar.points(mqar.Config(pairs=(2,), d_model=8, width_pairs=3, widths=(8, 4))) == [
        (2, 8), (3, 8), (3, 4)]


def test_mqar_jobs_are_family_point_rate_then_seed():
    """One job per (family, point, learning rate, seed), nested in that order."""
    config = mqar.Config(families=("mamba", "transformer"), pairs=(2,), d_model=8,
                         width_pairs=2, widths=(8, 16), lrs=(0.1, 0.2))
    got = [(j["family"], j["n_pairs"], j["d_model"], j["lr"], j["seed"])
           for j in mqar.jobs(config, [4, 0])]
    want = [(f, 2, w, lr, s) for f in ("mamba", "transformer") for w in (8, 16)
            for lr in (0.1, 0.2) for s in (4, 0)]
    assert got == want
    assert set(mqar.jobs(config, [0])[0]) == {"family", "n_pairs", "d_model", "lr", "seed"}


@pytest.mark.parametrize("family", ["hybrid", "mamba"])
def test_mqar_build_is_the_family_at_the_points_width(family):
    """The model of an MQAR run: the family (the hybrid: Mamba, attention, Mamba) over
    vocab_size tokens, of the point's width and the config's state, from the seed."""
    config = mqar.Config(vocab_size=10, d_model=32, d_state=4)
    kind = HYBRID if family == "hybrid" else family
    want = models.build(kind, 10, d_model=8, d_state=4, seed=3)
    assert _same_weights(mqar.build(config, family, 8, 3), want)
    assert not _same_weights(mqar.build(config, family, 8, 4), want)


@pytest.mark.parametrize("steps, want_steps", [(None, 7), (2, 2)])
def test_mqar_run_job_trains_the_jobs_model_at_its_rate(recorder, steps, want_steps):
    """run_job trains the job's family at the job's width and seed on fresh MQAR sequences
    with the job's number of pairs, at the job's learning rate (not a config's), with the
    config's budget (or the ``steps`` asked for), held-out set drawn with seed 1; its log is
    the training log unchanged."""
    real_sample = recall_tasks.mqar
    config = mqar.Config(length=12, vocab_size=10, d_model=32, d_state=2, steps=7,
                         batch_size=5, eval_every=3, n_eval=6)
    job = {"family": "mamba", "n_pairs": 3, "d_model": 8, "lr": 0.25, "seed": 2}
    log = mqar.run_job(config, job, steps=steps)
    t = recorder.train
    assert {k: t[k] for k in ("steps", "batch_size", "lr", "seed", "eval_every")} == {
        "steps": want_steps, "batch_size": 5, "lr": 0.25, "seed": 2, "eval_every": 3}
    assert _same_weights(t["model"], models.build("mamba", 10, d_model=8, d_state=2, seed=2))
    assert _pairs_equal(t["eval_set"], real_sample(6, 12, 3, vocab_size=10, seed=1))
    assert _pairs_equal(t["sample"](4, torch.Generator().manual_seed(5)),
                        real_sample(4, 12, 3, vocab_size=10,
                                    seed=torch.Generator().manual_seed(5)))
    assert log == {"step": [1], "seq_acc": [0.5]} and recorder.scored == []


def _mqar_runs():
    """Made-up runs at two points and two rates: the final query accuracy is the last
    ``token_acc``; a run of another family or point must not be counted."""
    def run(family, p, w, lr, seed, accs):
        return {"family": family, "n_pairs": p, "d_model": w, "lr": lr, "seed": seed,
                "log": {"token_acc": accs, "examples": [10, 20]}}
    return [run("mamba", 2, 8, 0.1, 0, [0.0, 0.5]), run("mamba", 2, 8, 0.1, 1, [0.9, 0.25]),
            run("mamba", 2, 8, 0.3, 0, [0.1, 0.75]), run("mamba", 2, 8, 0.3, 1, [0.1, 0.5]),
            run("mamba", 4, 8, 0.1, 0, [0.3, 0.5]), run("mamba", 4, 8, 0.1, 1, [0.2, 0.4]),
            run("mamba", 4, 8, 0.3, 0, [0.0, 0.1]), run("mamba", 4, 8, 0.3, 1, [0.0, 0.3]),
            run("transformer", 2, 8, 0.1, 0, [1.0, 1.0]),
            run("mamba", 2, 16, 0.1, 0, [1.0, 1.0])]


def _mqar_config():
    return mqar.Config(families=("mamba",), pairs=(2, 4), d_model=8, width_pairs=2,
                       widths=(8,), lrs=(0.1, 0.3), vocab_size=10, d_state=2)


def test_mqar_summary_from_made_up_logs():
    """Per family and point: pairs, width, parameters; per rate the mean, min, max and seeds'
    final query accuracies; the rate with the best mean, and its entry."""
    out = mqar.summarize(_mqar_config(), _mqar_runs())
    params = _n_params(models.build("mamba", 10, d_model=8, d_state=2))
    two = {"n_pairs": 2, "d_model": 8, "parameters": params,
           "lr=0.1": {"mean": 0.375, "min": 0.25, "max": 0.5, "seeds": [0.5, 0.25]},
           "lr=0.3": {"mean": 0.625, "min": 0.5, "max": 0.75, "seeds": [0.75, 0.5]},
           "best_lr": 0.3}
    two["best"] = two["lr=0.3"]
    four = {"n_pairs": 4, "d_model": 8, "parameters": params,
            "lr=0.1": {"mean": 0.45, "min": 0.4, "max": 0.5, "seeds": [0.5, 0.4]},
            "lr=0.3": {"mean": 0.2, "min": 0.1, "max": 0.3, "seeds": [0.1, 0.3]},
            "best_lr": 0.1}
    four["best"] = four["lr=0.1"]
    assert list(out) == ["mamba"] and list(out["mamba"]) == ["pairs=2,width=8",
                                                             "pairs=4,width=8"]
    assert list(out["mamba"]["pairs=2,width=8"]) == list(two)
    assert _close(out, {"mamba": {"pairs=2,width=8": two, "pairs=4,width=8": four}})


def test_mqar_summary_names_rates_in_short_form_and_counts_the_hybrid():
    """A rate's key is its short form (``lr=0.0003``, ``lr=1e-05``); the hybrid's parameters
    are those of Mamba, attention, Mamba at the point's width; one rate is its own best."""
    config = mqar.Config(families=("hybrid",), pairs=(2,), d_model=8, width_pairs=2,
                         widths=(), lrs=(1e-5, 3e-4), vocab_size=10, d_state=2)
    runs = [{"family": "hybrid", "n_pairs": 2, "d_model": 8, "lr": lr, "seed": 0,
             "log": {"token_acc": [acc]}} for lr, acc in ((1e-5, 0.5), (3e-4, 0.5))]
    entry = mqar.summarize(config, runs)["hybrid"]["pairs=2,width=8"]
    assert [k for k in entry if k.startswith("lr=")] == ["lr=1e-05", "lr=0.0003"]
    assert entry["best_lr"] == 1e-5  # a tie goes to the first rate
    assert entry["parameters"] == _n_params(models.build(HYBRID, 10, d_model=8, d_state=2))


def _mqar_results():
    config = _mqar_config()
    return {"config": {"families": ["mamba"], "pairs": [2, 4], "d_model": 8,
                       "width_pairs": 2, "widths": [8, 16], "lrs": [0.1, 0.3],
                       "vocab_size": 10},
            "runs": _mqar_runs(),
            "summary": {"mamba": {**mqar.summarize(config, _mqar_runs())["mamba"],
                                  "pairs=2,width=16": {
                                      "n_pairs": 2, "d_model": 16, "parameters": 12345,
                                      "lr=0.1": {"mean": 1.0, "min": 1.0, "max": 1.0,
                                                 "seeds": [1.0, 1.0]},
                                      "lr=0.3": {"mean": 0.0, "min": 0.0, "max": 0.0,
                                                 "seeds": [0.0, 0.0]},
                                      "best": {"seeds": [1.0, 1.0]}}}}}


def test_mqar_best_runs_are_the_seeds_at_the_points_best_rate():
    """best_runs: the final accuracy of each seed at the best rate of that family and point."""
    results = _mqar_results()
    assert mqar.best_runs(results, "mamba", 2, 8) == [0.75, 0.5]
    assert mqar.best_runs(results, "mamba", 4, 8) == [0.5, 0.4]


def test_mqar_plot_sweep_over_pairs_and_widths(ax):
    """plot_sweep: the mean over seeds at the best rate against the pairs (at d_model) or the
    widths (at width_pairs), with chance (2 / vocab_size) and the plateau of answering with a
    random value from the context (1 / pairs) dashed, x on a base-2 log scale ticked at the
    points; axes and title say which sweep."""
    results = _mqar_results()
    assert mqar.plot_sweep(ax, results) is ax
    assert _lines(ax)["Mamba"] == ([2, 4], [0.625, 0.45], COLORS["mamba"])
    assert _style(ax, "chance") == ([0, 1], [0.2, 0.2], "0.3", ":", 1)
    assert _style(ax, "a random value from the context") == ([2, 4], [0.5, 0.25], "0.5", "--",
                                                            1)
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert list(ax.get_xticks()) == [2, 4]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "4"]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_ylim(), ax.get_title()) == (
        "key–value pairs", "queries answered", (-0.02, 1.02), "MQAR at width 8")
    ax.clear()
    mqar.plot_sweep(ax, results, over="widths")
    assert _lines(ax)["Mamba"] == ([8, 16], [0.625, 1.0], COLORS["mamba"])
    assert _style(ax, "a random value from the context")[:2] == ([8, 16], [0.5, 0.5])
    assert list(ax.get_xticks()) == [8, 16]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == (
        "width d (Mamba state: 2·d·N per layer)", "queries answered", "MQAR with 2 pairs")


def test_mqar_lr_table_rows_written_out():
    """lr_table: a row per family and point, the parameters with thousands separated and each
    rate's mean accuracy with its range over seeds in whole percents."""
    results = _mqar_results()
    rows = mqar.lr_table(results)
    p = f"{_n_params(models.build('mamba', 10, d_model=8, d_state=2)):,}"
    assert rows == [
        {"model": "Mamba", "pairs": 2, "width": 8, "parameters": p,
         "lr 0.1": "38% (25%–50%)", "lr 0.3": "62% (50%–75%)"},
        {"model": "Mamba", "pairs": 4, "width": 8, "parameters": p,
         "lr 0.1": "45% (40%–50%)", "lr 0.3": "20% (10%–30%)"},
        {"model": "Mamba", "pairs": 2, "width": 16, "parameters": "12,345",
         "lr 0.1": "100% (100%–100%)", "lr 0.3": "0% (0%–0%)"}]


def test_mqar_plot_learning_draws_query_accuracy_against_sequences_seen(ax):
    """plot_learning: per family the mean query accuracy over every stored run against the
    sequences seen, the plateau 1 / (first pair count) dotted; axes and title name the point."""
    results = _mqar_results()
    results["runs"] = [r for r in results["runs"] if r["n_pairs"] == 2 and r["d_model"] == 8
                       and r["lr"] == 0.1]
    assert mqar.plot_learning(ax, results) is ax
    assert _lines(ax)["Mamba"] == ([10, 20], [0.45, 0.375], COLORS["mamba"])
    assert _style(ax, "a random value from the context") == ([0, 1], [0.5, 0.5], "0.3", ":", 1)
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_ylim(), ax.get_title()) == (
        "training sequences seen", "queries answered", (-0.02, 1.02),
        "MQAR, 2 pairs, width 8")
