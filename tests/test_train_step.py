"""One training step and its parts: the learning-rate schedules, the loss, the metrics."""

from __future__ import annotations

import itertools
from collections import namedtuple

import numpy as np
import pytest
import torch

import helpers.models  # noqa: F401  (registers tinynet)
from cnnlab.registry import create_model
from cnnlab.run.config import TrainConfig
from cnnlab.run.metrics import Tally
from cnnlab.run.schedule import WARMUP_MIN_STEPS, scheduled_lr
from cnnlab.train.step import (
    NonFiniteLossError,
    loss_and_logits,
    make_optimizer,
    train_step,
)


def test_scheduled_lr_shapes() -> None:
    cfg = TrainConfig(lr=1.0, schedule="onecycle", warmup=0.25, epochs=4)
    lrs = [scheduled_lr(cfg, 0, s, 400) for s in range(400)]  # a 100-step warm-up: no floor
    assert max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 99
    assert lrs[-1] == 0.0 and all(a <= b for a, b in itertools.pairwise(lrs[:100]))
    assert all(a >= b for a, b in itertools.pairwise(lrs[99:]))
    # 100 steps warm up over 25 < WARMUP_MIN_STEPS: the climb keeps the floor's slope, so the
    # peak is lower and later, and the run still ends at 0.
    short = [scheduled_lr(cfg, 0, s, 100) for s in range(100)]
    assert short[0] == pytest.approx(1 / WARMUP_MIN_STEPS) and max(short) < 1.0
    assert short.index(max(short)) > 24 and short[-1] == 0.0
    step = TrainConfig(lr=1.0, schedule="step", lr_decay=0.96, step_epochs=8)
    assert scheduled_lr(step, 7, 0, 1) == 1.0 and scheduled_lr(step, 16, 0, 1) == 0.96**2
    multi = TrainConfig(lr=1.0, schedule="multistep", epochs=10)
    assert [round(scheduled_lr(multi, e, 0, 1), 6) for e in (4, 5, 7, 8)] == [1, 0.1, 0.1, 0.01]


def test_auxiliary_losses_are_weighted_like_googlenet() -> None:
    out_type = namedtuple("Out", "logits aux_logits2 aux_logits1")
    g = torch.Generator().manual_seed(1)
    main_, aux2, aux1 = (torch.randn(6, 4, generator=g) for _ in range(3))
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    cfg = TrainConfig(aux_loss_weight=0.3, label_smoothing=0.0)
    loss, logits = loss_and_logits(out_type(main_, aux2, aux1), labels, cfg)
    ce = torch.nn.functional.cross_entropy
    expected = ce(main_, labels) + 0.3 * (ce(aux2, labels) + ce(aux1, labels))
    assert torch.allclose(loss, expected) and logits is main_
    loss, _ = loss_and_logits(out_type(main_, None, None), labels, cfg)  # aux_logits=False
    assert torch.allclose(loss, ce(main_, labels))


def test_train_step_updates_and_refuses_a_non_finite_loss_untouched() -> None:
    config = TrainConfig(lr=0.1, momentum=0.9, weight_decay=0.0, label_smoothing=0.0)
    model = create_model("tinynet", num_classes=10, in_channels=1, nan_after=1).train()
    optimizer = make_optimizer(config, model)
    x, y = torch.randn(8, 1, 28, 28), torch.arange(8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train_step(model, optimizer, x, y, config)
    assert result.count == 8 and 0 <= result.correct <= 8 and np.isfinite(result.loss)
    changed = {k: v.clone() for k, v in model.state_dict().items()}
    assert not torch.equal(changed["0.weight"], before["0.weight"])
    with pytest.raises(NonFiniteLossError, match="the loss became nan") as err:
        train_step(model, optimizer, x, y, config)  # the second forward returns NaN logits
    assert np.isnan(err.value.value)
    for name, value in model.state_dict().items():
        if name.endswith("num_batches_tracked") or "running_" in name:
            continue  # the forward itself moved batch norm's running statistics
        assert torch.equal(value, changed[name]), name


def test_tally_matches_an_independent_computation() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(257, 7, generator=g)
    labels = torch.randint(0, 7, (257,), generator=g)
    tally = Tally.zeros(7)
    for s in (slice(0, 100), slice(100, 257)):  # two batches add up to one pass
        tally.add(logits[s], labels[s])
    r = tally.result()
    x, y = logits.numpy().astype(np.float64), labels.numpy()
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    assert r.loss == pytest.approx(-logp[np.arange(257), y].mean(), rel=1e-5)
    pred = x.argmax(1)
    assert r.top1 == pytest.approx((pred == y).mean())
    top5 = np.argsort(-x, axis=1)[:, :5]
    assert r.top5 == pytest.approx(np.mean([y[i] in top5[i] for i in range(257)]))
    conf = np.zeros((7, 7), dtype=int)
    np.add.at(conf, (y, pred), 1)
    assert r.confusion == conf.tolist()
    for c in range(7):
        assert r.per_class[c] == pytest.approx(conf[c, c] / conf[c].sum())


def test_gradient_clipping_bounds_the_update_norm() -> None:
    # Plain SGD (no momentum, no decay): the first update is exactly lr * the clipped gradient.
    base = dict(optimizer="sgd", lr=1.0, momentum=0.0, weight_decay=0.0, label_smoothing=0.0)
    x, y = torch.randn(8, 1, 28, 28) * 50, torch.arange(8)
    steps = {}
    for clip in (0.0, 1e-3):
        torch.manual_seed(0)
        model = create_model("tinynet", num_classes=10, in_channels=1).train()
        before = [p.detach().clone() for p in model.parameters()]
        config = TrainConfig(**base, grad_clip=clip)
        train_step(model, make_optimizer(config, model), x, y, config)
        moved = [p.detach() - b for p, b in zip(model.parameters(), before, strict=True)]
        steps[clip] = torch.linalg.vector_norm(torch.cat([m.reshape(-1) for m in moved]))
    assert steps[0.0] > 1e-2  # unclipped, the gradient is far larger than the clip
    assert steps[1e-3].item() == pytest.approx(1e-3, rel=1e-3)
