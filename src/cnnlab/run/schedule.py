"""A run's learning-rate schedule, as a function of its config: what training set at each step.

Training sets it (:func:`cnnlab.train.step.train_step`'s caller); the report redraws it from the
run's record, so the curve on the page is the schedule the run used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnlab.run.config import TrainConfig

MULTISTEP_MILESTONES = (0.5, 0.75)  # DenseNet (Huang et al. 2017, Sec. 4.2): lr / 10 at 50%, 75%
# The one-cycle warm-up's floor in steps: the learning rate never climbs faster than from 0 to
# the peak in this many steps. A fraction of a short run is a few steps: 20% of the 19 steps of
# `cnnlab train fastnet --epochs 1 --limit-train 5000` reached lr 0.2 in 4 and blew batch-norm
# fastnet up (loss 10.8); with a floor of 32 steps ResNet-18 still blew up on those images, with
# 64 it trains (docs/training.md, "Short runs"; benchmarks/recipe_robustness.py --part short
# measures every family). A run whose warm-up is at least this long is untouched, bit for bit:
# the demo's (20% of 1,498 steps), fast94's (942) and any two epochs of Fashion-MNIST (85.6).
WARMUP_MIN_STEPS = 64


def scheduled_lr(config: TrainConfig, epoch: int, step: int, total_steps: int) -> float:
    """The learning rate of a stateless schedule at ``step`` (in ``epoch``, 0-based).

    ``plateau`` is stateful (it watches validation accuracy) and is handled by
    ``ReduceLROnPlateau``; here it is a constant.
    """
    base = config.lr
    if config.schedule == "onecycle":
        # Linear warm-up from 0 to the peak over the first `warmup` fraction, then linear decay
        # to 0 at the end (the triangular one-cycle policy, Smith & Topin 2018).
        t = (step + 1) / total_steps
        w = config.warmup
        decay = max(0.0, (1 - t) / (1 - w))
        if config.warmup * total_steps >= WARMUP_MIN_STEPS:  # the formula of long runs, unchanged
            return base * (t / w if t < w else decay)
        # A short run: the climb keeps the slope of a WARMUP_MIN_STEPS warm-up until it meets
        # the decay line, so the peak is lower and later than --lr at --warmup.
        return base * min((step + 1) / WARMUP_MIN_STEPS, decay)
    if config.schedule == "step":
        return base * config.lr_decay ** (epoch // config.step_epochs)
    if config.schedule == "multistep":
        passed = sum(epoch >= m * config.epochs for m in MULTISTEP_MILESTONES)
        return base * 0.1**passed
    return base
