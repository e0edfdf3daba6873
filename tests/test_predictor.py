"""``cnnlab.load``: one loader for run directories, safetensors files and ONNX exports.

The model is a randomly initialised LeNet-5 saved with the train package's own writer, so no
training runs: what is tested is the loading, the preprocessing, the test-time augmentation and
the agreement of the library with ``cnnlab predict`` / ``cnnlab eval``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab import fastpath
from cnnlab.cli import main
from cnnlab.errors import CheckpointError, DataError
from cnnlab.export import ATOL, RTOL
from cnnlab.predictor import PROBE_MIN_IMAGES, Prediction, Predictor, load
from cnnlab.run.inputs import make_prepare
from cnnlab.run.metrics import evaluate, logits_of
from cnnlab.runmeta import RunMeta
from cnnlab.train.checkpoint import save_model

CLASSES = ("cat", "dog", "ship")
HAS_ONNX = all(
    importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript")
)


def _meta(tta: bool = False) -> RunMeta:
    return RunMeta(
        model="lenet5",
        num_classes=3,
        in_channels=1,
        input_size=(1, 28, 28),
        classes=CLASSES,
        mean=(0.5,),
        std=(0.25,),
        dataset="toy",
        tta=tta,
    )


def _run(root: Path, tta: bool = False) -> Path:
    torch.manual_seed(3)
    model = cnnlab.create_model("lenet5", num_classes=3)
    run = root / f"run-tta{int(tta)}"
    run.mkdir()
    save_model(run / "model.safetensors", model, _meta(tta))
    return run


def _images(root: Path) -> list[Path]:
    """Three files of other sizes and modes than the model's 28x28 grey input."""
    rng = np.random.default_rng(0)
    paths = [root / "a.png", root / "b.jpg", root / "c.png"]
    Image.fromarray(rng.integers(0, 255, (40, 30), np.uint8)).save(paths[0])
    Image.fromarray(rng.integers(0, 255, (20, 36, 3), np.uint8)).save(paths[1])
    Image.fromarray(rng.integers(0, 255, (28, 28), np.uint8)).save(paths[2])
    return paths


def _cli_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> object:
    threads = torch.get_num_threads()  # the CLI sets the thread count; put it back
    try:
        assert main([*argv, "--format", "json"]) == 0
    finally:
        torch.set_num_threads(threads)
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("tta", [False, True])
def test_load_predict_matches_cli_predict(
    tta: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run(tmp_path, tta)
    images = _images(tmp_path)
    out = _cli_json(
        ["predict", str(run), *map(str, images), "--device", "cpu", "--top-k", "3"], capsys
    )
    predictor = load(run, device="cpu")
    assert predictor.tta is tta and predictor.meta == _meta(tta)
    assert predictor.source == run / "model.safetensors"
    probs = predictor.predict(images)
    assert probs.dtype == torch.float32 and probs.shape == (3, 3)
    assert torch.allclose(probs.sum(1), torch.ones(3))
    for row, result, image in zip(predictor.top_k(probs, 3), out, images, strict=True):
        assert result["image"] == str(image)
        assert [p["index"] for p in result["predictions"]] == [p.index for p in row]
        assert [p["class"] for p in result["predictions"]] == [p.name for p in row]
        # the same code computes both: the same float32 values, not merely close ones
        assert [p["probability"] for p in result["predictions"]] == [p.probability for p in row]


def test_predict_is_what_training_preprocessing_and_tta_give(tmp_path: Path) -> None:
    run = _run(tmp_path, tta=True)
    predictor = load(run, device="cpu")
    from cnnlab.data.images import read_image

    files = _images(tmp_path)
    prepare = make_prepare((28, 28), (0.5,), (0.25,), torch.device("cpu"))
    with torch.no_grad():
        want = torch.cat([predictor.model(prepare(read_image(f, channels=1)[None])) for f in files])
        mirrored = torch.cat(
            [predictor.model(prepare(read_image(f, channels=1)[None]).flip(-1)) for f in files]
        )
    want = torch.softmax((want + mirrored) / 2, dim=1)
    # batched forward passes round differently from one-image ones, in the last bits only
    torch.testing.assert_close(predictor.predict(files), want, rtol=1e-5, atol=1e-7)
    # tensors and files give the same answer; tta=False is another answer
    tensors = [read_image(f, channels=1) for f in files]
    assert torch.equal(predictor.predict(tensors), predictor.predict(files))
    plain = load(run, device="cpu", tta=False)
    assert plain.tta is False and not torch.allclose(plain.predict(files), want)


def test_logits_batches_internally_and_match_one_pass(tmp_path: Path) -> None:
    predictor = load(_run(tmp_path), device="cpu")
    batch = torch.randint(0, 256, (7, 1, 32, 24), dtype=torch.uint8, generator=torch.Generator())
    whole = predictor.logits(batch)
    predictor.batch_size = 3  # three passes: 3 + 3 + 1
    chunked = predictor.logits(batch)
    assert chunked.shape == (7, 3) and chunked.dtype == torch.float32
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)
    assert not chunked.requires_grad
    # a 4-D batch to predict() is the same as logits() + softmax
    torch.testing.assert_close(predictor.predict(batch), torch.softmax(chunked, 1))
    assert predictor.logits(batch[:0]).shape == (0, 3)


def test_logits_of_is_the_one_flip_average(tmp_path: Path) -> None:
    """evaluate() and the predictor share logits_of, so eval and predict agree exactly."""
    predictor = load(_run(tmp_path, tta=True), device="cpu")
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        x = predictor.prepare(images)
        want = (predictor.model(x) + predictor.model(x.flip(-1))) / 2
        torch.testing.assert_close(logits_of(predictor.model, x, tta=True), want)
    labels = predictor.logits(images).argmax(1)
    result = evaluate(predictor.model, images, labels, predictor.prepare, 3, tta=True)
    assert result.top1 == 1.0  # evaluation predicts exactly what the predictor predicts
    assert predictor.evaluate(images, labels).top1 == 1.0


def test_eval_cli_reads_through_the_predictor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cnnlab eval` on an image folder: the same numbers as Predictor.evaluate."""
    data = tmp_path / "toy"
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        for name in CLASSES:
            folder = data / split / name
            folder.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (28, 28), np.uint8)).save(folder / f"{i}.png")
    run = _run(tmp_path, tta=True)
    out = _cli_json(["eval", str(run), "--data", str(data), "--device", "cpu"], capsys)
    assert out["tta"] is True and out["source"] == str(run / "model.safetensors")
    from cnnlab.data import load_dataset

    images, labels = load_dataset(str(data), "test")
    result = load(run, device="cpu").evaluate(images, labels)
    assert out["top1"] == result.top1 and out["loss"] == result.loss
    assert out["confusion"] == result.confusion


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    predictor = load(_run(tmp_path), device="cpu")
    with pytest.raises(DataError, match=r"takes uint8 pixels .* got torch.float32: convert"):
        predictor.predict(torch.rand(1, 28, 28))
    with pytest.raises(DataError, match=r"takes 1-channel images, got 3 channels"):
        predictor.predict(torch.zeros(3, 28, 28, dtype=torch.uint8))
    with pytest.raises(DataError, match=r"takes 1-channel images, got 3 channels"):
        predictor.logits(torch.zeros(2, 3, 28, 28, dtype=torch.uint8))
    with pytest.raises(DataError, match=r"expected a uint8 \(N, C, H, W\) batch, got \(28, 28\)"):
        predictor.logits(torch.zeros(28, 28, dtype=torch.uint8))
    with pytest.raises(DataError, match=r"file not found|no such file"):
        predictor.predict(tmp_path / "missing.png")
    with pytest.raises(CheckpointError, match="no such file"):
        load(tmp_path / "nope")
    (tmp_path / "m.safetensors").write_bytes(b"\x80\x04junk" * 8)
    with pytest.raises(CheckpointError, match="pickle"):
        load(tmp_path / "m.safetensors")


def test_single_image_and_top_k(tmp_path: Path) -> None:
    predictor = load(_run(tmp_path), device="cpu")
    image = _images(tmp_path)[0]
    probs = predictor.predict(image)  # one path, not a list
    assert probs.shape == (1, 3)
    rows = predictor.top_k(probs, 10)  # more than there are classes: all of them
    assert len(rows[0]) == 3 and isinstance(rows[0][0], Prediction)
    assert [p.probability for p in rows[0]] == sorted(probs[0].tolist(), reverse=True)
    assert {p.name for p in rows[0]} == set(CLASSES)


def test_package_exports_load() -> None:
    assert cnnlab.load is load and cnnlab.Predictor is Predictor
    assert {"load", "Predictor"} <= set(cnnlab.__all__)


@pytest.mark.skipif(not HAS_ONNX, reason="onnx, onnxruntime and onnxscript not installed")
def test_onnx_file_loads_like_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path, tta=True)
    onnx_file = tmp_path / "m.onnx"
    _cli_json(["export", str(run), "--onnx", str(onnx_file)], capsys)
    from_onnx = load(onnx_file, device="auto")  # ONNX Runtime runs on the CPU whatever asked
    assert from_onnx.device == torch.device("cpu") and from_onnx.source == onnx_file
    assert from_onnx.meta == _meta(tta=True)  # the whole record travels in the file
    assert from_onnx.tta is True
    images = _images(tmp_path)
    torch.testing.assert_close(
        from_onnx.predict(images), load(run, device="cpu").predict(images), rtol=1e-4, atol=1e-6
    )
    out = _cli_json(["predict", str(onnx_file), *map(str, images)], capsys)
    probs = from_onnx.predict(images)
    for result, row in zip(out, from_onnx.top_k(probs, 3), strict=True):
        assert [p["probability"] for p in result["predictions"]] == [p.probability for p in row]
    # evaluation runs the ONNX session too (no train/eval mode to switch)
    batch = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    assert from_onnx.evaluate(batch, from_onnx.logits(batch).argmax(1)).top1 == 1.0


# --- the fastest path that agrees with float32 (cnnlab.fastpath) ----------------------------------


class _Slow(torch.nn.Module):
    """LeNet-5 that takes 20 ms a call: any candidate path below is faster than the reference."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = cnnlab.create_model("lenet5", num_classes=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import time

        time.sleep(0.02)
        return self.net(x)


class _Shifted(fastpath.Path):
    """A path that runs the inner network without the delay, logits moved by ``shift``."""

    def __init__(self, name: str, shift: float) -> None:
        super().__init__(name)
        object.__setattr__(self, "shift", shift)

    def apply(self, model: torch.nn.Module):  # type: ignore[no-untyped-def]
        # The inner network's answer computed once per input: the path then takes microseconds
        # against the reference's 20 ms and more, however loaded the machine is.
        answers: dict[int, torch.Tensor] = {}

        def run(x: torch.Tensor) -> torch.Tensor:
            if id(x) not in answers:
                answers[id(x)] = model.net(x)
            return answers[id(x)] + self.shift

        return run


def test_agreement_is_the_export_tolerance_elementwise() -> None:
    want = torch.tensor([[10.0, -2.0, 0.0]])
    edge = ATOL + RTOL * want.abs()  # the largest difference allowed, per element
    assert fastpath.agrees(want + 0.9 * edge, want)
    assert not fastpath.agrees(want + torch.tensor([[0.0, 0.0, 1.1]]) * edge, want)
    assert not fastpath.agrees(want[:, :2], want)  # another shape never agrees


def test_choose_takes_the_fastest_path_only_if_it_agrees() -> None:
    x = torch.randn(8, 1, 28, 28)
    model = _Slow().eval()
    wrong = _Shifted("fast but wrong", 1e-2)  # bf16's size of error: outside the tolerance
    choice, _ = fastpath.choose(model, x, (wrong,))
    assert choice.path == fastpath.REFERENCE and choice.agreed == {wrong.name: False}
    assert choice.max_abs_diff[wrong.name] == pytest.approx(1e-2, rel=1e-3)
    right = _Shifted("fast and right", 0.0)
    choice, run = fastpath.choose(model, x, (wrong, right))
    assert choice.path is right and choice.agreed[right.name]
    assert choice.seconds[right.name] < choice.seconds[fastpath.REFERENCE.name]
    assert torch.equal(run(x), model.net(x))


def test_predictor_chooses_once_and_agrees_with_fp32(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    images = torch.randint(0, 256, (PROBE_MIN_IMAGES, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 3, (PROBE_MIN_IMAGES,))
    fast, plain = load(run_dir, device="cpu"), load(run_dir, device="cpu")
    plain.fast = False
    fast.logits(images[:10])
    assert fast.choice is None  # too few images to pay for the choice
    got, want = fast.logits(images), plain.logits(images)
    assert fast.choice is not None and plain.choice is None
    assert fastpath.agrees(got, want)
    assert set(fast.choice.agreed) == {p.name for p in fastpath.CANDIDATES}
    # bf16 is tried; whatever it gave, the path taken is one that agreed.
    assert fast.choice.path == fastpath.REFERENCE or fast.choice.agreed[fast.choice.path.name]
    assert fast.evaluate(images, labels).top1 == plain.evaluate(images, labels).top1
