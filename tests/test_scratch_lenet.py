"""The from-scratch NumPy LeNet: values and gradients equal an equivalent torch.nn model with the
same weights, and a few SGD steps on real Fashion-MNIST images lower the loss."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.scratch import fast, softmax_cross_entropy_backward, softmax_cross_entropy_forward
from cnnlab.scratch.lenet import init_params, lenet_backward, lenet_forward, predict

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")


def torch_twin() -> nn.Sequential:
    """The same architecture written independently with torch.nn (names match the params)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip


# torch.nn.Sequential index -> our parameter prefix
TWIN_NAMES = {"0": "conv1", "3": "conv2", "7": "fc1", "9": "fc2", "11": "fc3"}


def test_lenet_matches_torch_values_and_gradients() -> None:
    rng = np.random.default_rng(0)
    params = init_params(rng, dtype=np.float64)
    twin = torch_twin().double()
    twin.load_state_dict(
        {f"{i}.{kind}": torch.tensor(params[f"{p}.{kind}"])
         for i, p in TWIN_NAMES.items() for kind in ("weight", "bias")}
    )  # fmt: skip
    x = rng.standard_normal((5, 1, 28, 28))
    y = np.array([0, 3, 9, 3, 1])

    logits, cache = lenet_forward(params, x)
    loss, lc = softmax_cross_entropy_forward(logits, y)
    grads = lenet_backward(softmax_cross_entropy_backward(1.0, lc), cache)

    logits_t = twin(torch.tensor(x))
    loss_t = nn.functional.cross_entropy(logits_t, torch.tensor(y))
    loss_t.backward()
    np.testing.assert_allclose(logits, logits_t.detach().numpy(), rtol=1e-10, atol=1e-10)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    assert set(grads) == set(params)
    for i, p in TWIN_NAMES.items():
        for kind in ("weight", "bias"):
            ref = dict(twin.named_parameters())[f"{i}.{kind}"].grad.numpy()
            np.testing.assert_allclose(grads[f"{p}.{kind}"], ref, rtol=1e-9, atol=1e-12)


def _fashion_subset(n: int) -> tuple[np.ndarray, np.ndarray]:
    if not (FASHION / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST not installed in /usr/share/datasets/fashion-mnist")
    from cnnlab.data import load_dataset

    images, labels = load_dataset("fashion-mnist", "train", root=FASHION, download=False)
    x = images[:n].numpy().astype(np.float32) / 255.0
    return (x - 0.286) / 0.353, labels[:n].numpy()


def test_sgd_on_a_few_hundred_images_lowers_the_loss() -> None:
    x, y = _fashion_subset(320)
    rng = np.random.default_rng(0)
    params = init_params(rng)
    ws = {"conv1": fast.Workspace(), "conv2": fast.Workspace()}

    def full_loss() -> float:
        return softmax_cross_entropy_forward(lenet_forward(params, x)[0], y)[0]

    before = full_loss()
    for _ in range(3):  # 3 epochs of 10 steps, batch 32, lr 0.05
        for i in range(0, len(x), 32):
            logits, cache = lenet_forward(params, x[i : i + 32], ws)
            _, lc = softmax_cross_entropy_forward(logits, y[i : i + 32])
            grads = lenet_backward(softmax_cross_entropy_backward(1.0, lc), cache, ws)
            for k, g in grads.items():
                params[k] -= 0.05 * g
    after = full_loss()
    assert after < 0.75 * before, (before, after)
    assert (predict(params, x) == y).mean() > 0.5  # well above chance (0.1) on what it saw


@pytest.mark.slow
def test_example_script_runs(tmp_path) -> None:
    if not (FASHION / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST not installed")
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "scratch_lenet.py"), "--train-size", "256",
         "--test-size", "200", "--epochs", "1", "--seed", "1"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert "final test accuracy" in out.stdout
    acc = float(out.stdout.rsplit("final test accuracy", 1)[1].split()[0])
    assert 0.2 < acc <= 1.0  # one epoch of 4 steps: better than chance, not a trained model
