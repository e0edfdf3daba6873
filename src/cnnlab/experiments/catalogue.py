"""The table of experiments: cnnlab's own, in the lectures' order, and any added at run time.

The runner looks experiments up here, the docs page lists them from here, and the smoke tests are
generated from here (``tests/test_experiments_smoke.py``). Each row names a module, which is
imported only when its experiment is asked for, so listing them imports no torch.
"""

from __future__ import annotations

import importlib
import importlib.util

from cnnlab.errors import ConfigError
from cnnlab.experiments.base import Experiment

# Registry: name -> "module" (its EXPERIMENT) or "module:ATTRIBUTE", in the lectures' order
# (architecture first, then training, then the cost of it all).
EXPERIMENTS: tuple[tuple[str, str], ...] = (
    ("degradation", "cnnlab.experiments.degradation"),
    ("kernel-stacks", "cnnlab.experiments.kernel_stacks"),
    ("bottleneck", "cnnlab.experiments.bottleneck"),
    ("batchnorm", "cnnlab.experiments.regularisers:BATCHNORM"),
    ("dropout", "cnnlab.experiments.regularisers:DROPOUT"),
    ("augmentation", "cnnlab.experiments.regularisers:AUGMENTATION"),
    ("loss-landscape", "cnnlab.experiments.loss_landscape"),
    ("cost", "cnnlab.experiments.cost"),
)


# Experiments added at run time (a course's own, or a test's), after the built-in ones.
_REGISTERED: dict[str, Experiment] = {}


def register_experiment(experiment: Experiment) -> Experiment:
    """Add an experiment defined outside cnnlab; it is listed and run like the built-in ones.

    Raises:
        ConfigError: the name is taken by another experiment.
    """
    taken = dict(EXPERIMENTS) | _REGISTERED
    if experiment.name in taken and _REGISTERED.get(experiment.name) is not experiment:
        raise ConfigError(f"an experiment named {experiment.name!r} exists: choose another name")
    _REGISTERED[experiment.name] = experiment
    return experiment


def _installed(target: str) -> bool:
    """Whether the module behind a registry entry exists in this cnnlab."""
    return importlib.util.find_spec(target.partition(":")[0]) is not None


def _load(target: str) -> Experiment:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute or "EXPERIMENT")


def experiment_names(*, added: bool = True) -> list[str]:
    """Names of the experiments this cnnlab has, in registry order.

    Args:
        added: include those added with :func:`register_experiment` (after cnnlab's own);
            ``False`` lists only the rows of :data:`EXPERIMENTS`.
    """
    own = [name for name, target in EXPERIMENTS if _installed(target)]
    return own + list(_REGISTERED) if added else own


def get_experiment(name: str) -> Experiment:
    """The registered experiment ``name``.

    Raises:
        ConfigError: no such experiment (the message lists them).
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    targets = dict(EXPERIMENTS)
    if name not in targets or not _installed(targets[name]):
        raise ConfigError(
            f"unknown experiment {name!r}: choose one of {', '.join(experiment_names())} "
            "(cnnlab experiment list)"
        )
    experiment = _load(targets[name])
    if experiment.name != name:  # a registry typo would otherwise run the wrong experiment
        raise ConfigError(f"registry entry {name!r} points at experiment {experiment.name!r}")
    return experiment


def list_experiments() -> list[Experiment]:
    """Every registered experiment, in registry order."""
    return [get_experiment(name) for name in experiment_names()]
