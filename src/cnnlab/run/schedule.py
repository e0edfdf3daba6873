"""A run's learning-rate schedule, as a function of its config: what training set at each step.

Training sets it (:func:`cnnlab.train.step.train_step`'s caller); the report redraws it from the
run's record, so the curve on the page is the schedule the run used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnlab.run.config import TrainConfig

MULTISTEP_MILESTONES = (0.5, 0.75)  # DenseNet (Huang et al. 2017, Sec. 4.2): lr / 10 at 50%, 75%


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
        return base * (t / w if t < w else max(0.0, (1 - t) / (1 - w)))
    if config.schedule == "step":
        return base * config.lr_decay ** (epoch // config.step_epochs)
    if config.schedule == "multistep":
        passed = sum(epoch >= m * config.epochs for m in MULTISTEP_MILESTONES)
        return base * 0.1**passed
    return base
