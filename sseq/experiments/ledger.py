"""Chapter 8's ledger: each family's measured capabilities, from the three stored experiments.

Not an experiment itself: it reads ``results/{copying,mqar_long,induction}.json`` (loaded with
:func:`sseq.experiments.load`) and sets one row per family — the task accuracies (means over
seeds) beside the numbers a model carries to generate, which the chapter measures live.
"""

from __future__ import annotations

from sseq.experiments import copying

__all__ = ["FAMILIES", "rows"]

FAMILIES = ("transformer", "mamba", "lstm", "hybrid")


def _pct(value) -> str:
    return "—" if value is None else f"{value:.0%}"


def rows(runs: dict, numbers: dict, *, copy_length: int = 32) -> list[dict]:
    """One row per family of :data:`FAMILIES`.

    Args:
        runs: ``{"copying": ..., "mqar_long": ..., "induction": ...}``, the stored results.
        numbers: ``{family: numbers carried}`` at the context the chapter chose.
        copy_length: the test length of the copying column beyond the training range.

    Returns:
        Dicts of strings: the parameters of the copying experiment's model (the MQAR and
        induction models have other vocabularies, so slightly other counts), numbers carried,
        copying inside and beyond the training lengths, MQAR after the long run, induction
        at the training length and at the longest test length; "—" where a family was not run.
    """
    cs, ms, ind = (runs[k]["summary"] for k in ("copying", "mqar_long", "induction"))
    mc, ic = runs["mqar_long"]["config"], runs["induction"]["config"]
    at_train = ic["test_lengths"].index(ic["train_length"])
    point = f"pairs={mc['width_pairs']},width={mc['d_model']}"
    mqar_label = (f"MQAR {mc['width_pairs']} pairs (long run, "
                  f"{mc['steps'] * mc['batch_size']:,} seq.)")
    out = []
    for f in FAMILIES:
        out.append({
            "model": copying.LABELS[f], "parameters (copying model)": f"{cs[f]['parameters']:,}",
            "numbers carried": f"{numbers[f]:,}",
            f"copy ≤ {runs['copying']['config']['train_length']}": _pct(cs[f]["mean_seq_acc"]),
            f"copy {copy_length}": _pct(cs[f]["length_mean"][
                runs["copying"]["config"]["test_lengths"].index(copy_length)]),
            mqar_label: _pct(ms[f][point]["best"]["mean"]
                                                   if f in ms else None),
            f"induction at {ic['train_length']}": _pct(ind[f]["length_mean"][at_train]
                                                       if f in ind else None),
            f"induction at {max(ic['test_lengths'])}": _pct(ind[f]["length_mean"][-1]
                                                            if f in ind else None)})
    return out
