"""``cnnlab train [MODEL] ...``: train a zoo model; every flag comes from ``TrainConfig``."""

from __future__ import annotations

import argparse

from cnnlab.train.config import add_config_arguments, config_from_args


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


def run(args: argparse.Namespace) -> int:
    from cnnlab.train.loop import train

    config, given = config_from_args(args)
    train(config, given)
    return 0
