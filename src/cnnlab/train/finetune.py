"""Fine-tuning from pretrained weights: the optimizer's parameter groups.

The weights themselves (reading, checking, copying into a model, freezing a backbone) are
:mod:`cnnlab.weights`; how they train is training's: new layers at the learning rate, pretrained
ones at ``--backbone-lr`` times it, frozen ones left out.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnlab.run.config import TrainConfig
from cnnlab.train.step import make_optimizer
from cnnlab.weights import Pretrained


def finetune_optimizer(config: TrainConfig, net: nn.Module) -> torch.optim.Optimizer:
    """The recipe's optimizer (:func:`~cnnlab.train.step.make_optimizer`), in param groups when
    ``net`` starts from pretrained weights: new layers at the lr, pretrained ones at
    ``config.backbone_lr`` times it, frozen ones left out.

    The scale is applied around each optimizer step (step hooks), so schedules that set one
    learning rate for every group, and the plateau rule, keep working unchanged.
    """
    base = make_optimizer(config, net)
    record: Pretrained | None = getattr(net, "cnnlab_pretrained", None)
    if record is None:
        return base
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    pretrained = {n for n in record.loaded if not (record.head_reset and n in record.head)}
    groups = [
        {"params": [p for n, p in trainable if n not in pretrained], "lr_scale": 1.0},
        {"params": [p for n, p in trainable if n in pretrained], "lr_scale": config.backbone_lr},
    ]
    optimizer = type(base)([g for g in groups if g["params"]], **base.defaults)

    def scale(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        for g in opt.param_groups:
            g["base_lr"], g["lr"] = g["lr"], g["lr"] * g["lr_scale"]

    def unscale(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        for g in opt.param_groups:
            g["lr"] = g.pop("base_lr")

    optimizer.register_step_pre_hook(scale)
    optimizer.register_step_post_hook(unscale)
    return optimizer
