"""MQAR trained five times longer, at one point of :mod:`sseq.experiments.mqar`'s sweep.

The sweep's 300 steps leave both families on the plateau of answering each query with some
value from the context. This run trains the Transformer and the Mamba of width 32 on 4 pairs
for ``steps`` (1,500) at the sweep's better learning rate, three seeds each, to see which
family leaves the plateau first. Everything else is the sweep's
(:func:`sseq.experiments.mqar.run_job`).

    python -m sseq.experiments mqar_long --jobs 2
"""

from __future__ import annotations

from dataclasses import dataclass

from sseq.experiments import mqar
from sseq.experiments.mqar import LABELS, RECORDS, jobs, run_job, summarize

__all__ = ["LABELS", "RECORDS", "jobs", "run_job", "summarize"]

DESCRIPTION = "MQAR, 4 pairs, width 32, trained 5x longer: Transformer vs Mamba"
PREFIX_STEPS = 250  # the first record of a run


@dataclass(frozen=True)
class Config(mqar.Config):
    """The full run; ``QUICK`` is a smaller one."""

    pairs: tuple = (4,)
    width_pairs: int = 4
    widths: tuple = (32,)
    lrs: tuple = (3e-3,)
    steps: int = 1500
    eval_every: int = 250


QUICK = Config(steps=100, eval_every=50, n_eval=64)
