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

from sseq import mixers, models, recall_tasks, tasks, train  # noqa: E402
from sseq.experiments import (  # noqa: E402
    copying,
    induction,
    mqar,
    mqar_long,
    selective_copying,
)

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
    return [run("mamba", 0, [0.1, 0.2, 0.6], [1.0, 0.5, 0.2]),
            run("transformer", 0, [0.9, 0.5, 0.95], [0.0, 0.0, 0.0]),
            run("lstm", 0, [0.2, 0.1, 0.3], [0.8, 0.4, 0.0]),
            run("mamba", 1, [0.3, 0.4, 0.8], [0.6, 0.25, 0.1]),
            run("lstm", 1, [0.4, 0.3, 0.5], [1.0, 0.2, 0.1])]


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
        run["log"]["examples"] = [32, 64, 96]
        runs.append(run)
    return {"config": {"families": list(families), "train_length": 12,
                       "test_lengths": [4, 16, 40]}, "runs": runs}


def test_copying_plot_learning_draws_each_familys_string_accuracy(ax):
    """plot_learning: per family (the stored config's, or those asked for) the mean over seeds
    of the held-out string accuracy against the examples seen, labelled and coloured; axes
    named, y from just below 0 to just above 1, the training lengths in the title."""
    assert copying.plot_learning(ax, _copying_results()) is ax
    assert _lines(ax) == {"Mamba": ([32, 64, 96], [0.2, 0.3, 0.7], COLORS["mamba"]),
                          "LSTM": ([32, 64, 96], [0.3, 0.2, 0.4], COLORS["lstm"])}
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_ylim(), ax.get_title()) == (
        "training examples seen", "strings copied exactly", (-0.02, 1.02),
        "Copying strings of 1–12 letters")
    ax.clear()
    copying.plot_learning(ax, _copying_results(), families=["transformer"])  # one seed
    assert _lines(ax) == {"Transformer (absolute)": ([32, 64, 96], [0.9, 0.5, 0.95],
                                                     COLORS["transformer"])}


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
                "log": {"token_acc": accs, "examples": [10, 20, 30]}}
    return [run("mamba", 2, 8, 0.1, 0, [0.0, 0.2, 0.5]),
            run("mamba", 2, 8, 0.1, 1, [0.9, 0.1, 0.25]),
            run("mamba", 2, 8, 0.3, 0, [0.1, 0.2, 0.75]),
            run("mamba", 2, 8, 0.3, 1, [0.1, 0.9, 0.5]),
            run("mamba", 4, 8, 0.1, 0, [0.3, 0.2, 0.5]),
            run("mamba", 4, 8, 0.1, 1, [0.2, 0.1, 0.4]),
            run("mamba", 4, 8, 0.3, 0, [0.0, 0.9, 0.1]),
            run("mamba", 4, 8, 0.3, 1, [0.0, 0.9, 0.3]),
            run("transformer", 2, 8, 0.1, 0, [1.0, 1.0, 1.0]),
            run("mamba", 2, 16, 0.1, 0, [1.0, 1.0, 1.0])]


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
    assert _lines(ax)["Mamba"] == ([10, 20, 30], [0.45, 0.15, 0.375], COLORS["mamba"])
    assert _style(ax, "a random value from the context") == ([0, 1], [0.5, 0.5], "0.3", ":", 1)
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_ylim(), ax.get_title()) == (
        "training sequences seen", "queries answered", (-0.02, 1.02),
        "MQAR, 2 pairs, width 8")
    ax.clear()
    results["runs"] = results["runs"][1:]  # one seed
    mqar.plot_learning(ax, results)
    assert _lines(ax)["Mamba"] == ([10, 20, 30], [0.9, 0.1, 0.25], COLORS["mamba"])


# --- selective copying -------------------------------------------------------------------------


def test_selective_copying_defaults_and_quick_are_the_documented_runs():
    """The full run (Mamba §3.1 in miniature): 64 tokens, 8 of 16 symbols to copy, two layers
    of width 32 and N = 16; 2,500 steps (LSTM 10,000, plain copying 1,000) of 32 at lr 3e-3,
    records every 50 on 512 held-out sequences, 20,000 training sequences; QUICK is smaller."""
    c = selective_copying.Config()
    assert (c.length, c.n_memorize, c.n_symbols, c.d_model, c.n_layer, c.d_state) == (
        64, 8, 16, 32, 2, 16)
    assert (c.steps, c.lstm_steps, c.plain_steps, c.batch_size, c.lr, c.eval_every) == (
        2500, 10000, 1000, 32, 3e-3, 50)
    assert (c.n_train, c.n_eval, c.models, c.plain_models) == (
        20000, 512, ("s4d", "s4d_gate", "s6", "mamba", "lstm"), ("s4d", "mamba"))
    q = selective_copying.QUICK
    assert (q.steps, q.lstm_steps, q.plain_steps, q.n_train, q.n_eval, q.models,
            q.plain_models) == (300, 300, 200, 2000, 256, ("s4d", "mamba"), ("s4d",))
    assert selective_copying.PAPER == {"s4d": 0.183, "s6": 0.970, "mamba": 0.998}
    assert selective_copying.RECORDS == ("step", "loss", "eval_acc")


def test_selective_copying_jobs_list_selective_then_plain():
    """Selective copying's (model, seed) jobs first, then plain copying's, seeds inside."""
    config = selective_copying.Config(models=("s6", "lstm"), plain_models=("mamba",))
    assert selective_copying.jobs(config, [2, 0]) == [
        {"task": "selective", "model": "s6", "seed": 2},
        {"task": "selective", "model": "s6", "seed": 0},
        {"task": "selective", "model": "lstm", "seed": 2},
        {"task": "selective", "model": "lstm", "seed": 0},
        {"task": "plain", "model": "mamba", "seed": 2},
        {"task": "plain", "model": "mamba", "seed": 0}]


@pytest.mark.parametrize("task", ["selective", "plain"])
def test_selective_copying_data_trains_on_the_seeds_set_and_holds_out_seed_1(task):
    """data: n_train sequences drawn with seed 10,000 + the run's seed, n_eval held out with
    seed 1 (the same for every run), of the task asked for (random or leading positions)."""
    config = selective_copying.Config(length=10, n_memorize=3, n_symbols=5, n_train=7,
                                      n_eval=4)
    (x, y), (ex, ey) = selective_copying.data(config, task, 2)
    selective = task == "selective"
    assert _pairs_equal((x, y), tasks.selective_copying(7, 10, 3, n_symbols=5,
                                                        selective=selective, seed=10_002))
    assert _pairs_equal((ex, ey), tasks.selective_copying(4, 10, 3, n_symbols=5,
                                                          selective=selective, seed=1))
    assert (x[:, :3] != tasks.BLANK).all().item() is not selective


@pytest.mark.parametrize("model", ["mamba", "lstm"])
def test_selective_copying_build_is_the_mixer_model_of_the_config(model):
    """The model of a run: the token model over n_symbols + 2 tokens with the config's width,
    depth and state, initialised from the seed."""
    config = selective_copying.Config(n_symbols=5, d_model=8, n_layer=1, d_state=4)
    want = mixers.make_model(model, 7, d_model=8, n_layer=1, d_state=4, seed=3)
    assert _same_weights(selective_copying.build(config, model, 3), want)
    assert not _same_weights(selective_copying.build(config, model, 4), want)


def test_selective_copying_steps_of_each_run():
    """Selective copying trains for ``steps``, the LSTM for ``lstm_steps``; plain copying
    for ``plain_steps``, whatever the model."""
    config = selective_copying.Config(steps=3, lstm_steps=5, plain_steps=7)
    steps_of = selective_copying.steps_of
    assert steps_of(config, {"task": "selective", "model": "mamba"}) == 3
    assert steps_of(config, {"task": "selective", "model": "lstm"}) == 5
    assert steps_of(config, {"task": "plain", "model": "lstm"}) == 7
    assert steps_of(config, {"task": "plain", "model": "s4d"}) == 7


class _Fixed(torch.nn.Module):
    """Predicts the given tokens ``(n, l)`` whatever the input (one-hot logits over 6)."""

    def __init__(self, predicted):
        super().__init__()
        self.predicted, self.modes = predicted, []

    def forward(self, x):
        self.modes.append((self.training, torch.is_grad_enabled()))
        return torch.nn.functional.one_hot(self.predicted, 6).float() * 2 - 1


def test_position_accuracy_scores_each_copy_position_in_eval_mode():
    """position_accuracy: the fraction of sequences right at each scored position (the copy
    positions, in order), the model in evaluation mode without gradients."""
    targets = torch.tensor([[-100, -100, 1, 2, 3], [-100, -100, 4, 4, 5],
                            [-100, -100, 2, 1, 3], [-100, -100, 5, 2, 1]])
    predicted = torch.tensor([[1, 1, 1, 2, 3], [4, 4, 4, 1, 5],
                              [0, 0, 1, 1, 3], [1, 1, 1, 1, 2]])
    model = _Fixed(predicted)
    got = selective_copying.position_accuracy(model, torch.zeros_like(targets), targets)
    assert got == pytest.approx([0.5, 0.5, 0.75], rel=1e-12)
    assert model.modes == [(False, False)]
    one = selective_copying.position_accuracy(_Fixed(predicted[1:2]), targets[1:2],
                                              targets[1:2])
    assert one == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("steps, want_steps", [(None, 11), (3, 3)])
def test_selective_copying_run_job_fits_and_keeps_the_records(monkeypatch, steps, want_steps):
    """run_job: train.fit on the run's training data with the run's budget (the LSTM's here;
    or the ``steps`` asked for), batch size, rate, seed, the held-out set and record interval,
    without a progress bar; the log keeps the records and adds the final position accuracy."""
    calls = {}

    def fit(model, x, y, **kwargs):
        calls.update(model=model, x=x, y=y, **kwargs)
        return {"step": [1, 2], "loss": [0.5, 0.25], "eval_loss": [9.0, 9.0],
                "eval_acc": [0.125, 0.375], "seconds": [1.0, 2.0]}

    monkeypatch.setattr(train, "fit", fit)
    config = selective_copying.Config(length=6, n_memorize=2, n_symbols=4, d_model=8,
                                      n_layer=1, d_state=2, steps=5, lstm_steps=11,
                                      plain_steps=13, batch_size=3, lr=0.5, eval_every=4,
                                      n_train=9, n_eval=5)
    log = selective_copying.run_job(config, {"task": "selective", "model": "lstm", "seed": 1},
                                    steps=steps)
    train_set, eval_set = selective_copying.data(config, "selective", 1)
    assert _pairs_equal((calls.pop("x"), calls.pop("y")), train_set)
    assert _pairs_equal(calls.pop("eval_data"), eval_set)
    model = calls.pop("model")
    assert _same_weights(model, mixers.make_model("lstm", 6, d_model=8, n_layer=1,
                                                  d_state=2, seed=1))
    assert calls == {"steps": want_steps, "batch_size": 3, "lr": 0.5, "seed": 1,
                     "eval_every": 4, "progress": False}
    assert log == {"step": [1, 2], "loss": [0.5, 0.25], "eval_acc": [0.125, 0.375],
                   "position_acc": selective_copying.position_accuracy(model, *eval_set)}
    assert len(log["position_acc"]) == 2


def _selective_runs():
    def run(task, model, seed, steps, acc):
        return {"task": task, "model": model, "seed": seed,
                "log": {"step": steps, "eval_acc": acc}}
    return [run("selective", "s4d", 0, [2, 4, 6], [0.1, 0.2, 0.3]),
            run("selective", "s4d", 1, [2, 4, 6], [0.1, 0.4, 0.5]),
            run("selective", "lstm", 0, [2, 4, 6, 8], [0.1, 0.2, 0.6, 0.9]),
            run("selective", "lstm", 1, [2, 4, 6, 8], [0.1, 0.3, 0.7, 0.7]),
            run("plain", "s4d", 0, [2, 3], [0.5, 1.0])]


def test_selective_copying_summary_from_made_up_logs():
    """Per task and model: the last step, each seed's final accuracy and their mean, each
    seed's accuracy at ``steps`` (the common budget; the last record for a shorter run) and
    their mean, and the model's parameters."""
    config = selective_copying.Config(steps=6, n_symbols=4, d_model=8, n_layer=1, d_state=2)
    out = selective_copying.summarize(config, _selective_runs())
    params = {m: mixers.count_parameters(mixers.make_model(m, 6, d_model=8, n_layer=1,
                                                           d_state=2)) for m in ("s4d", "lstm")}
    assert params["s4d"] != params["lstm"]
    want = {"selective": {
        "s4d": {"steps": 6, "final_acc": [0.3, 0.5], "budget_acc": [0.3, 0.5], "mean_acc": 0.4,
                "mean_budget_acc": 0.4, "parameters": params["s4d"]},
        "lstm": {"steps": 8, "final_acc": [0.9, 0.7], "budget_acc": [0.6, 0.7], "mean_acc": 0.8,
                 "mean_budget_acc": 0.65, "parameters": params["lstm"]}},
        "plain": {"s4d": {"steps": 3, "final_acc": [1.0], "budget_acc": [1.0], "mean_acc": 1.0,
                          "mean_budget_acc": 1.0, "parameters": params["s4d"]}}}
    assert list(out) == ["selective", "plain"]
    assert {t: list(m) for t, m in out.items()} == {t: list(m) for t, m in want.items()}
    assert _close(out, want)


def test_selective_copying_curves_and_a_missing_model():
    """curves: the steps of the first run and every seed's held-out accuracy of one task and
    model; a model without runs on that task is named in the error."""
    results = {"runs": _selective_runs()}
    steps, acc = selective_copying.curves(results, "selective", "s4d")
    assert steps.tolist() == [2, 4, 6]
    assert acc.tolist() == [[0.1, 0.2, 0.3], [0.1, 0.4, 0.5]]
    steps, acc = selective_copying.curves(results, "plain", "s4d")  # one seed
    assert (steps.tolist(), acc.tolist()) == ([2, 3], [[0.5, 1.0]])
    with pytest.raises(ValueError) as info:
        selective_copying.curves(results, "plain", "lstm")
    assert str(info.value) == "no runs of model 'lstm' on task 'plain' in these results"


def _selective_results():
    runs = _selective_runs()
    config = selective_copying.Config(steps=6, n_symbols=4, d_model=8, n_layer=1, d_state=2)
    return {"config": {"steps": 6, "plain_steps": 3, "n_symbols": 4}, "runs": runs,
            "summary": selective_copying.summarize(config, runs)}


def test_selective_copying_plot_accuracy_draws_each_models_curve(ax):
    """plot_accuracy: per model with runs on the task (in the book's order, or those asked
    for) the mean held-out accuracy over seeds against the step in its colour, a band from
    the lowest to the highest seed, chance (1 / n_symbols) dotted; x to just past the task's
    budget, y from 0 to just above 1, the task in the title."""
    from sseq.viz import PALETTE

    results = _selective_results()
    assert selective_copying.plot_accuracy(ax, results) is ax
    labels = selective_copying.LABELS
    assert _lines(ax) == {
        labels["s4d"]: ([2, 4, 6], [0.1, 0.3, 0.4], PALETTE["attention"]),
        labels["lstm"]: ([2, 4, 6, 8], [0.1, 0.25, 0.65, 0.8], PALETTE["theory"]),
        "chance": ([0, 1], [0.25, 0.25], PALETTE["reference"])}
    assert _style(ax, "chance")[3:] == (":", 1)
    first = ax.collections[0]
    vertices = {tuple(v) for v in first.get_paths()[0].vertices.round(6)}
    assert {(2, 0.1), (4, 0.2), (6, 0.3), (4, 0.4), (6, 0.5)} <= vertices
    assert first.get_facecolor()[0] == pytest.approx(to_rgba(PALETTE["attention"], 0.2))
    assert first.get_linewidth()[0] == 0 and len(ax.collections) == 2
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_ylim(), ax.get_xlim(), ax.get_title()) == (
        "training step", "held-out accuracy", (0, 1.02), (0, 6 * 1.02), "Selective copying")
    ax.clear()
    selective_copying.plot_accuracy(ax, results, task="plain")
    assert list(_lines(ax)) == [labels["s4d"], "chance"]
    assert (ax.get_xlim(), ax.get_title()) == ((0, 3 * 1.02), "Plain copying")
    ax.clear()
    selective_copying.plot_accuracy(ax, results, models=["lstm"])
    assert list(_lines(ax)) == [labels["lstm"], "chance"]


def test_selective_copying_plot_accuracy_colours_every_model():
    """Each of the five models has its own colour from the book's palette."""
    from sseq.viz import PALETTE

    want = {"s4d": "attention", "s4d_gate": "extra2", "s6": "extra3", "mamba": "state",
            "lstm": "theory"}
    runs = [{"task": "selective", "model": m, "seed": 0,
             "log": {"step": [1], "eval_acc": [0.5]}} for m in want]
    fig, ax = plt.subplots()
    try:
        selective_copying.plot_accuracy(ax, {"config": {"steps": 1, "n_symbols": 2},
                                             "runs": runs})
        colors = {line.get_label(): line.get_color() for line in ax.get_lines()}
    finally:
        plt.close(fig)
    assert colors == {**{selective_copying.LABELS[m]: PALETTE[p] for m, p in want.items()},
                      "chance": PALETTE["reference"]}


def test_selective_copying_table_rows_written_out():
    """table: per model of the task, its label, parameters, the mean accuracy after the common
    budget, the final mean and range over seeds (percent to one decimal), its steps, and the
    paper's number for selective copying (a dash where the paper has none, and on plain)."""
    results = _selective_results()
    summary = results["summary"]
    rows = selective_copying.table(results)
    labels = selective_copying.LABELS
    assert rows == [
        {"model": labels["s4d"], "parameters": summary["selective"]["s4d"]["parameters"],
         "at 6 steps": "40.0%", "final (mean)": "40.0%", "range over seeds": "30.0% – 50.0%",
         "steps": 6, "paper (Table 1)": "18.3%"},
        {"model": labels["lstm"], "parameters": summary["selective"]["lstm"]["parameters"],
         "at 6 steps": "65.0%", "final (mean)": "80.0%", "range over seeds": "70.0% – 90.0%",
         "steps": 8, "paper (Table 1)": "—"}]
    (plain,) = selective_copying.table(results, task="plain")
    assert plain["paper (Table 1)"] == "—" and plain["final (mean)"] == "100.0%"
    assert plain["at 6 steps"] == "100.0%"


# --- runs of unequal length are refused, not cut short ----------------------------------------


def test_summaries_refuse_seeds_scored_at_different_test_lengths():
    """A seed whose log has fewer test lengths than another (a run of another config mixed in)
    makes copying's and induction's summary raise, instead of silently dropping lengths."""
    config = copying.Config(families=("mamba",), n_symbols=5, d_model=8, d_state=2)
    runs = [{"family": "mamba", "seed": 0, "log": {"seq_acc": [1.0], "length_acc": [1.0, 0.5]}},
            {"family": "mamba", "seed": 1, "log": {"seq_acc": [1.0], "length_acc": [1.0]}}]
    with pytest.raises(ValueError, match="zip"):
        copying.summarize(config, runs)
    config = induction.Config(families=("mamba",), n_symbols=5, d_model=8, d_state=2)
    with pytest.raises(ValueError, match="zip"):
        induction.summarize(config, runs)


def test_mqar_plot_sweep_refuses_points_with_different_seeds(ax):
    """plot_sweep draws the seeds' band point by point: a point with fewer seeds than another
    is an error, not a band silently cut to the fewest seeds."""
    results = _mqar_results()
    results["summary"]["mamba"]["pairs=4,width=8"]["best"]["seeds"] = [0.5]
    with pytest.raises(ValueError, match="zip"):
        mqar.plot_sweep(ax, results)
