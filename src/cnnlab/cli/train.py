"""``cnnlab train [MODEL] ...``: train a zoo model; every flag comes from ``TrainConfig``."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys

from cnnlab.run.config import TrainConfig, add_config_arguments, config_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model on real data (Fashion-MNIST by default)",
        description="Train a zoo model with the lectures' recipe (--recipe paper) or the fast "
        "one. Writes RUN_DIR/config.json, metrics.jsonl, model.safetensors, results.json, "
        "checkpoints/ and figures/. Under torchrun it trains data-parallel (--batch-size is the "
        "global batch). Settings left out come from the recipe; the resolved values are printed "
        "and saved in config.json. Ctrl-C stops it and prints the command that resumes it.",
    )
    add_config_arguments(p)
    p.add_argument("--step-log", action=argparse.BooleanOptionalAction, default=True,
                   help="record the training loss twice a second in RUN_DIR/steps.jsonl, for "
                   "live views such as cnnlab studio (default: on)")  # fmt: skip
    p.set_defaults(run=run)


def parse(argv: list[str]) -> tuple[TrainConfig, set[str]]:
    """The config and the explicitly given settings of ``cnnlab train ARGV...``.

    For programs that run the command's training in-process with callbacks
    (``cnnlab.train.fit(*parse(argv), callbacks=...)`` style).
    """
    parser = argparse.ArgumentParser(prog="cnnlab train")
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def resume_command(config: TrainConfig, given: set[str]) -> str:
    """The ``cnnlab train`` command that continues this run: the settings given, ``--resume``.

    ``--resume`` refuses a config that differs from the run's, so the command repeats every
    setting the user gave (the recipe fills the others the same way again) and names the run
    directory even when it was the default one.
    """
    from cnnlab.run.recipes import FAST_DEFAULT_MODEL
    from cnnlab.train.rundir import default_run_dir

    words = ["cnnlab", "train"]
    if config.model is not None:
        words.append(config.model)
    for f in dataclasses.fields(TrainConfig):
        if f.name not in given or f.name in ("model", "out", "resume"):
            continue
        flag, value = "--" + f.name.replace("_", "-"), getattr(config, f.name)
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + flag[2:])
        else:
            words += [flag, str(value)]
    out = config.out or default_run_dir(
        dataclasses.replace(config, model=config.model or FAST_DEFAULT_MODEL)
    )
    words += ["--out", str(out), "--resume"]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from cnnlab.report.loggers import loggers_for  # --log tensorboard; nothing by default
    from cnnlab.train.steplog import StepLog
    from cnnlab.train.trainer import fit

    config, given = config_from_args(args)
    try:
        steps = [StepLog()] if args.step_log else []  # RUN_DIR/steps.jsonl
        fit(config, given=given, callbacks=[*loggers_for(config.log), *steps])
    except KeyboardInterrupt:
        # Checkpoints are written at every epoch's end and every few minutes (--checkpoint-every)
        print(
            "cnnlab: interrupted; continue from the last checkpoint with:\n  "
            + resume_command(config, given),
            file=sys.stderr,
        )
        return 130
    return 0
