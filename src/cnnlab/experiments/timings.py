"""How long an experiment's tier takes: measured where its results are kept, else estimated.

The one owner of the measured times is the kept results, ``benchmarks/results/experiments/
NAME-TIER.json`` (their ``seconds`` and ``machine``). ``python -m cnnlab.dev generate`` copies
each one's time and machine into :mod:`cnnlab.experiments.measured_times` (a generated module,
so an installed cnnlab has it without the repository), and ``cnnlab experiment list`` and the
runner's announcement read them from there. A tier never measured (``smoke``, the hours-long
``full``) falls back to its ``expected_s`` setting, shown as an estimate.

This module imports neither torch nor matplotlib.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cnnlab.experiments.base import Experiment


@dataclass(frozen=True)
class Expected:
    """A tier's expected time: ``seconds``, and where it comes from (``measured_on`` or None)."""

    seconds: float
    measured_on: str | None  # e.g. "AMD EPYC, 2 threads"; None: an estimate

    def words(self) -> str:
        """``67 s (measured on AMD EPYC, 2 threads)`` or ``12 s (estimate)``."""
        from cnnlab.formats import duration

        where = f"measured on {self.measured_on}" if self.measured_on else "estimate"
        return f"{duration(self.seconds, coarse=True)} ({where})"


def machine_words(machine: Mapping[str, Any]) -> str:
    """``AMD EPYC, 2 threads`` (a GPU's name where one ran) from ``results.json["machine"]``."""
    if machine.get("cuda"):
        return str(machine["cuda"])
    threads = machine.get("threads", "?")
    return f"{machine.get('cpu', '?')}, {threads} thread{'' if str(threads) == '1' else 's'}"


def expected(experiment: Experiment, tier: str) -> Expected:
    """The time of ``experiment`` at ``tier``: its kept measurement, else its estimate."""
    from cnnlab.experiments.measured_times import MEASURED

    kept = MEASURED.get(experiment.name, {}).get(tier)
    if kept is not None:
        return Expected(float(kept["seconds"]), kept["machine"])
    return Expected(float(experiment.tiers[tier].get("expected_s", 0)), None)


def measured_times(results: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{name: {tier: {"seconds", "machine"}}}`` from kept ``results.json`` records."""
    times: dict[str, dict[str, dict[str, Any]]] = {}
    for r in sorted(results, key=lambda r: (r["experiment"], r["tier"])):
        times.setdefault(r["experiment"], {})[r["tier"]] = {
            "seconds": r["seconds"],
            "machine": machine_words(r.get("machine", {})),
        }
    return times


def module_text(results: Iterable[Mapping[str, Any]], about: str) -> str:
    """The source of :mod:`cnnlab.experiments.measured_times` (``about`` says how it is made)."""
    body = json.dumps(measured_times(results), indent=4, sort_keys=True)
    return (
        '"""Measured time and machine of each kept experiment result.\n\n'
        f'{about}; do not edit.\n"""\n\n'
        "from typing import Any\n\n"
        "# fmt: off\n"
        f"MEASURED: dict[str, dict[str, dict[str, Any]]] = {body}\n"
        "# fmt: on\n"
    )
