"""Train a LeNet-style network written only with cnnlab's NumPy layers on Fashion-MNIST.

No PyTorch in the model or the training: the forward and backward passes are
``cnnlab.scratch`` (im2col convolution, max pooling, ReLU, linear, softmax cross-entropy) and the
optimiser is plain SGD (``w -= lr * dw``, no momentum, no weight decay). The data comes from
``cnnlab.data.load_dataset`` (which hands back uint8 tensors; they are turned into NumPy arrays
once, here).

    .venv/bin/python examples/scratch_lenet.py                      # 60k train, 3 epochs
    .venv/bin/python examples/scratch_lenet.py --train-size 10000 --epochs 2

Result recorded in docs/readme/scratch.md (test accuracy and time, on the shared 2-core box).
"""

from __future__ import annotations

import argparse
import os
import time

# The GEMMs here are small (64 x 400 x 120 ...): OpenBLAS threads cost more than they give, and
# on a shared machine they made a step 5x slower. One BLAS thread unless the caller says otherwise
# (must be set before numpy loads OpenBLAS).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from cnnlab.data import dataset_info, load_dataset
from cnnlab.errors import CnnlabError
from cnnlab.scratch import (
    fast,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from cnnlab.scratch.lenet import init_params, lenet_backward, lenet_forward, predict

# Hyperparameters, all in one place (units in comments).
LR = 0.05  # SGD step size
BATCH_SIZE = 64  # images per step
EPOCHS = 3  # passes over the training subset


def load(split: str, limit: int | None, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST as float32 (N, 1, 28, 28), normalised by the training-set mean and std."""
    images, labels = load_dataset("fashion-mnist", split, root=data_dir, download=False)
    info = dataset_info("fashion-mnist")
    x = images[:limit].numpy().astype(np.float32) / 255.0
    x = (x - np.float32(info.mean[0])) / np.float32(info.std[0])
    return x, labels[:limit].numpy()


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-size", type=int, default=60000, help="training images (first N)")
    p.add_argument("--test-size", type=int, default=10000, help="test images (first N)")
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--lr", type=float, default=LR)
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="folder with the IDX .gz files")
    args = p.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    x_train, y_train = load("train", args.train_size, args.data_dir)
    x_test, y_test = load("test", args.test_size, args.data_dir)
    print(f"train {x_train.shape}, test {x_test.shape}; lr {args.lr}, batch {args.batch_size}")

    params = init_params(rng)
    workspaces = {"conv1": fast.Workspace(), "conv2": fast.Workspace()}
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        total_loss, correct, seen = 0.0, 0, 0
        for step, i in enumerate(range(0, len(order), args.batch_size)):
            idx = order[i : i + args.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            logits, cache = lenet_forward(params, xb, workspaces)
            loss, loss_cache = softmax_cross_entropy_forward(logits, yb)
            grads = lenet_backward(
                softmax_cross_entropy_backward(1.0, loss_cache), cache, workspaces
            )
            for name, g in grads.items():
                params[name] -= args.lr * g.astype(params[name].dtype, copy=False)
            total_loss += loss * len(idx)
            correct += int((logits.argmax(axis=1) == yb).sum())
            seen += len(idx)
            if step % 200 == 0:
                print(f"  epoch {epoch} step {step:4d}: loss {loss:.4f}")
        test_acc = float((predict(params, x_test) == y_test).mean())
        print(
            f"epoch {epoch}: train loss {total_loss / seen:.4f}, train acc {correct / seen:.4f}, "
            f"test acc {test_acc:.4f}, {time.perf_counter() - start:.1f} s"
        )
    print(
        f"final test accuracy {test_acc:.4f} on {len(x_test)} images "
        f"after {time.perf_counter() - start:.1f} s"
    )
    return test_acc


if __name__ == "__main__":
    try:
        main()
    except CnnlabError as err:  # e.g. Fashion-MNIST not found: one line, not a traceback
        raise SystemExit(f"scratch_lenet: error: {err}") from None
