"""``tiny-test``: a two-run experiment on ``tinynet`` for the experiment framework's tests.

Importing this module registers it (and tinynet). Run as ``python -m helpers.tiny_experiment
ARGS`` it is the ``cnnlab`` command with both registered, for subprocess tests (kill and resume);
start it with :func:`helpers.subprocess_env`. ``TINYNET_STEP_DELAY`` slows each training step so
a test can kill it mid-run.
"""

from __future__ import annotations

import sys
from typing import Any

import helpers.models  # noqa: F401  (registers tinynet)
from cnnlab.experiments import Context, Experiment, Outcome, register_experiment

NAME = "tiny-test"
# 512 images in batches of 64: 8 steps an epoch; "second" checkpoints every 3 steps, so a kill
# after its first checkpoint lands mid-epoch.
RUN = {
    "model": "tinynet",
    "limit_train": 512,
    "val_size": 256,
    "limit_test": 256,
    "batch_size": 64,
    "device": "cpu",
}
MEASURE_CALLS: list[str] = []  # labels whose measurement function ran in this process


def run(ctx: Context) -> Outcome:
    first = ctx.train("first", epochs=1, **RUN)
    second = ctx.train("second", epochs=ctx.settings["epochs"], checkpoint_every=3, **RUN)

    def count() -> dict[str, Any]:
        MEASURE_CALLS.append("count")
        return {"runs": 2, "pair": (1, 2), "nan": float("nan")}

    counted = ctx.measure("count", count)
    from cnnlab import plotting

    fig = plotting.figure(figsize=(3, 2))
    fig.subplots().plot([h["train_acc"] for h in second.history], "o-")
    ctx.figure("curve", fig, "training accuracy of the second run")
    ctx.note("a note")
    a, b = first.test.top1, second.test.top1
    return Outcome(
        measured={"first": a, "second": b, **counted},
        held=b >= a,
        verdict=f"second {100 * b:.2f}% against first {100 * a:.2f}%",
        findings=["| run | test |\n|---|---|\n" + f"| first | {a:.4f} |\n| second | {b:.4f} |"],
        departures=["a test, not a paper"],
        paper={"source": "none"},
    )


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        title="A tiny experiment for tests",
        claim="More epochs do not hurt.",
        source="cnnlab tests",
        tiers={"smoke": {"epochs": 3, "expected_s": 5}, "quick": {"epochs": 4, "expected_s": 9}},
        run=run,
        jobs=lambda settings: 3,
    )
)

if __name__ == "__main__":
    from cnnlab.cli import main

    sys.exit(main(sys.argv[1:]))
