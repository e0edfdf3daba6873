"""The lectures' empirical claims as experiments anyone can rerun (``cnnlab experiment``).

Each experiment trains its models as ordinary cnnlab runs and measures what the claim is about,
at three tiers: ``smoke`` (seconds, in the test suite), ``quick`` (minutes on a 2-core laptop) and
``full`` (the paper's scale, hours). It writes ``results.json``, its figures and ``summary.md``:
the claim, what was measured, whether the claim held at this tier, and how the run departs from
the paper. ``python -m cnnlab.dev generate`` turns the kept results into ``docs/experiments.md``.

:data:`~cnnlab.experiments.catalogue.EXPERIMENTS` is the table of cnnlab's own experiments; code
and tests iterate it. Adding one is its module (an ``EXPERIMENT``), its row there, and its
results kept in ``benchmarks/results/experiments/``, from which ``python -m cnnlab.dev
generate`` writes its section of ``docs/experiments.md``. Its smoke-tier test comes from the row
(``tests/test_experiments_smoke.py``).

Python API::

    from cnnlab.experiments import list_experiments, run_experiment
    result = run_experiment("degradation", tier="smoke")
    result.outcome.verdict, result.results["measured"]

Modules are imported on first use, so importing this package (and ``cnnlab experiment list``)
does not import torch.
"""

from __future__ import annotations

from cnnlab.experiments.base import TIERS, Context, Experiment, Outcome
from cnnlab.experiments.catalogue import (
    EXPERIMENTS,
    experiment_names,
    get_experiment,
    list_experiments,
    register_experiment,
)
from cnnlab.experiments.runner import ExperimentResult, run_experiment

__all__ = [
    "EXPERIMENTS",
    "TIERS",
    "Context",
    "Experiment",
    "ExperimentResult",
    "Outcome",
    "experiment_names",
    "get_experiment",
    "list_experiments",
    "register_experiment",
    "run_experiment",
]
