"""``cnnlab train [MODEL] ...``: train a zoo model; every flag comes from ``TrainConfig``."""

from __future__ import annotations

import argparse

from cnnlab.run.config import TrainConfig, add_config_arguments, config_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model on real data (Fashion-MNIST by default)",
        description="Train a zoo model with the lectures' recipe (--recipe paper) or the fast "
        "one. Writes RUN_DIR/config.json, metrics.jsonl, model.safetensors, results.json, "
        "checkpoints/ and figures/. Under torchrun it trains data-parallel (--batch-size is the "
        "global batch). Settings left out come from the recipe; the resolved values are printed "
        "and saved in config.json.",
    )
    add_config_arguments(p)
    p.set_defaults(run=run)


def parse(argv: list[str]) -> tuple[TrainConfig, set[str]]:
    """The config and the explicitly given settings of ``cnnlab train ARGV...``.

    For programs that run the command's training in-process with callbacks
    (``cnnlab.train.fit(*parse(argv), callbacks=...)`` style).
    """
    parser = argparse.ArgumentParser(prog="cnnlab train")
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    from cnnlab.report.loggers import loggers_for  # --log tensorboard; nothing by default
    from cnnlab.train.trainer import fit

    config, given = config_from_args(args)
    fit(config, given=given, callbacks=loggers_for(config.log))
    return 0
