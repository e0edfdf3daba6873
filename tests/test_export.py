"""ONNX export: ONNX Runtime reproduces PyTorch for the zoo, at any batch, from the file alone.

Every model is exported in *train* mode with populated batch-norm statistics (so eval-graph export
and the restoration of the train flags are both exercised), then run by ONNX Runtime at a batch
size other than the one it was exported with, and compared with PyTorch in eval mode at
rtol 1e-3 / atol 1e-5. Inputs are the smallest each model allows, to keep the file fast.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import CheckpointError, ConfigError, DataError
from cnnlab.export import (
    ATOL,
    DEFAULT_OPSET,
    RTOL,
    OnnxClassifier,
    check_onnx,
    export_onnx,
    read_metadata,
)
from cnnlab.runmeta import RunMeta

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

# The models the acceptance criteria name, with small inputs each accepts (H = W).
REQUIRED = {
    "lenet5": 28,
    "alexnet": 63,
    "vgg11": 32,
    "googlenet": 32,
    "resnet18": 32,
    "densenet121": 32,
    "resnet20": 32,
}
# Paper variants with layers of their own (LRN, grouped towers, trainable subsampling, RBF head).
EXTRA = {"alexnet_paper": 67, "lenet5_paper": 32}


def _other_families() -> dict[str, int]:
    """The smallest model of each registered family the lists above do not cover."""
    covered = {cnnlab.model_info(n).family for n in (*REQUIRED, *EXTRA)}
    chosen: dict[str, tuple[int, str]] = {}
    for name in cnnlab.list_models():
        info = cnnlab.model_info(name)
        if info.family in covered or info.num_params == 0:
            continue
        if info.family not in chosen or info.num_params < chosen[info.family][0]:
            chosen[info.family] = (info.num_params, name)
    out = {}
    for _, name in chosen.values():
        info = cnnlab.model_info(name)
        out[name] = info.input_size[1] if info.fixed_input else max(info.min_input_size)
    return out


CASES = {**REQUIRED, **EXTRA, **_other_families()}


def _size(name: str, side: int) -> tuple[int, int, int]:
    info = cnnlab.model_info(name)
    if info.fixed_input:
        return tuple(info.input_size)  # type: ignore[return-value]
    return (info.input_size[0], side, side)


def _calibrated(name: str, size: tuple[int, int, int]) -> nn.Module:
    """A model with realistic batch-norm running statistics, left in train mode.

    Fresh running statistics (mean 0, variance 1) make many deep nets output nearly the same
    logits for every input in eval mode, which would make a parity test vacuous.
    """
    model = cnnlab.create_model(name, num_classes=10)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.momentum = None  # cumulative average over the calibration batches
    gen = torch.Generator().manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(2 if bns else 0):
            model(torch.randn((4, *size), generator=gen))
    return model


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_onnx_matches_pytorch_at_another_batch(name: str, tmp_path: Path) -> None:
    size = _size(name, CASES[name])
    model = _calibrated(name, size)
    flags = [m.training for m in model.modules()]
    # optimize=False keeps the file fast (the graph optimiser triples DenseNet's export time);
    # the default optimize=True path is exercised by the lenet5 tests below.
    path = export_onnx(
        model,
        tmp_path / f"{name}.onnx",
        size,
        metadata={"classes": list("abcdefghij")},
        optimize=False,
    )
    # export_onnx exports the eval graph but gives the model back in the mode it came in.
    assert [m.training for m in model.modules()] == flags

    # One input with a symbolic batch, one output: GoogLeNet's auxiliary heads (active in train
    # mode) are not in the file.
    graph = onnx.load(str(path), load_external_data=False).graph
    assert [o.name for o in graph.output] == ["logits"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param

    x = torch.randn((3, *size), generator=torch.Generator().manual_seed(2))  # exported at 1
    report = check_onnx(model, path, inputs=x)
    assert report.ok, f"{name}: max abs diff {report.max_abs_diff:.3g}"
    assert report.batch_size == 3
    assert report.max_abs_diff <= ATOL + RTOL * 100  # logits here are O(1)
    # A meaningful comparison: the logits depend on the input.
    # The comparison means something only if the logits vary with the input by more than the
    # ONNX-vs-PyTorch difference (random-init NIN varies little: its ReLU'd logits are sparse).
    logits = OnnxClassifier(path).logits(x.numpy())
    assert logits.shape == (3, 10)
    spread = float(np.abs(logits[0] - logits[1:]).max())
    assert spread > 0 and spread > 10 * report.max_abs_diff, "logits do not depend on the input"


def test_metadata_atomic_write_and_static_batch(tmp_path: Path) -> None:
    model = cnnlab.create_model("lenet5", num_classes=10)
    path = tmp_path / "sub" / "lenet.onnx"
    classes = [f"class {i}" for i in range(10)]
    export_onnx(
        model,
        path,
        (1, 28, 28),
        dynamic_batch=False,
        metadata={"classes": classes, "mean": [0.286], "std": [0.353], "note": "10"},
    )
    assert sorted(p.name for p in path.parent.iterdir()) == ["lenet.onnx"]  # no temp file left
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    meta = read_metadata(path)
    assert meta["model"] == "lenet5"
    assert meta["input_size"] == [1, 28, 28]
    assert meta["classes"] == classes
    assert meta["opset"] == DEFAULT_OPSET
    assert meta["note"] == "10"  # a string stays a string
    proto = onnx.load(str(path))
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 1, 28, 28]
    assert {o.domain: o.version for o in proto.opset_import}[""] == DEFAULT_OPSET
    with pytest.raises(Exception, match=r"(?i)dimension|shape|got"):
        OnnxClassifier(path).logits(np.zeros((2, 1, 28, 28), np.float32))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_default_export_runs_at_any_batch(tmp_path: Path) -> None:
    model = cnnlab.create_model("lenet5", num_classes=10)
    path = export_onnx(model, tmp_path / "m.onnx", (1, 28, 28))  # defaults: optimize, dynamic
    dim0 = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.dim_value
    clf = OnnxClassifier(path)
    for n in (1, 3, 8):
        x = torch.randn(n, 1, 28, 28)
        with torch.no_grad():
            want = model.eval()(x).numpy()
        np.testing.assert_allclose(clf.logits(x.numpy()), want, rtol=RTOL, atol=ATOL)


def test_failed_export_leaves_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = cnnlab.create_model("lenet5", num_classes=10)
    path = export_onnx(model, tmp_path / "m.onnx", (1, 28, 28), optimize=False)
    before = path.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="No space"):
        export_onnx(model, path, (1, 28, 28), optimize=False)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


@pytest.mark.parametrize("opset", [11, 17, 99, True])
def test_unsupported_opset_is_a_config_error(opset: int, tmp_path: Path) -> None:
    model = cnnlab.create_model("lenet5", num_classes=10)
    with pytest.raises(ConfigError, match=r"opset .* not supported: pick one from 18"):
        export_onnx(model, tmp_path / "m.onnx", (1, 28, 28), opset=opset)
    assert not (tmp_path / "m.onnx").exists()


def test_other_opset_is_honoured(tmp_path: Path) -> None:
    model = cnnlab.create_model("lenet5", num_classes=10)
    path = export_onnx(model, tmp_path / "m.onnx", (1, 28, 28), opset=21, optimize=False)
    assert {o.domain: o.version for o in onnx.load(str(path)).opset_import}[""] == 21
    assert check_onnx(model, path).ok


def test_bad_input_size_and_untraceable_model(tmp_path: Path) -> None:
    model = cnnlab.create_model("lenet5", num_classes=10)
    with pytest.raises(ConfigError, match=r"input_size must be \(C, H, W\)"):
        export_onnx(model, tmp_path / "m.onnx", (28, 28))
    # lenet5 takes exactly 28x28: its input check fires while tracing, as a ConfigError.
    with pytest.raises(ConfigError, match="could not export"):
        export_onnx(model, tmp_path / "m.onnx", (1, 32, 32), optimize=False)
    assert not (tmp_path / "m.onnx").exists()


def test_check_onnx_detects_a_mismatch(tmp_path: Path) -> None:
    model = cnnlab.create_model("lenet5", num_classes=10)
    path = export_onnx(model, tmp_path / "m.onnx", (1, 28, 28), optimize=False)
    assert check_onnx(model, path).ok
    with torch.no_grad():
        next(model.parameters()).add_(0.05)  # the file no longer matches the model
    report = check_onnx(model, path, batch_size=4)
    assert not report.ok
    assert report.max_abs_diff > 1e-3


def test_corrupt_or_missing_onnx_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        OnnxClassifier(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x80\x04not an onnx file at all" * 10)
    with pytest.raises(CheckpointError, match="not a valid ONNX file"):
        OnnxClassifier(bad)
    model = cnnlab.create_model("lenet5", num_classes=10)
    good = export_onnx(model, tmp_path / "m.onnx", (1, 28, 28), optimize=False)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError):
        OnnxClassifier(cut)
    with pytest.raises(CheckpointError, match="lacks the cnnlab metadata"):
        OnnxClassifier(good, require_meta=True)
    with pytest.raises(DataError, match="takes 1x28x28 input"):
        OnnxClassifier(good).logits(np.zeros((1, 1, 32, 32), np.float32))


def test_metadata_is_the_run_record_and_old_files_still_read(tmp_path: Path) -> None:
    model = cnnlab.create_model("lenet5", num_classes=3)
    # What `cnnlab export` wrote before the record existed: these keys and no others.
    old = {
        "model": "lenet5",
        "num_classes": 3,
        "in_channels": 1,
        "input_size": [1, 28, 28],
        "classes": ["a", "b", "c"],
        "mean": [0.5],
        "std": [0.25],
        "dataset": "toy",
    }
    path = export_onnx(model, tmp_path / "old.onnx", (1, 28, 28), metadata=old, optimize=False)
    meta = OnnxClassifier(path, require_meta=True).meta
    assert meta == RunMeta.from_dict(old)
    assert (meta.tta, meta.precision, meta.model_kwargs) == (False, "fp32", {})

    record = dataclasses.replace(meta, tta=True, seed=7, recipe="fast", test_top1=0.5)
    path = export_onnx(model, tmp_path / "new.onnx", (1, 28, 28), metadata=record, optimize=False)
    stored = read_metadata(path)
    assert {k: stored[k] for k in record.to_dict()} == record.to_dict()
    assert stored["opset"] == DEFAULT_OPSET
    assert OnnxClassifier(path).meta == record

    bare = export_onnx(model, tmp_path / "bare.onnx", (1, 28, 28), optimize=False)
    assert OnnxClassifier(bare).meta is None  # no run record: fine unless one is required
    damaged = {**old, "classes": ["a", "b"]}
    path = export_onnx(model, tmp_path / "bad.onnx", (1, 28, 28), metadata=damaged, optimize=False)
    with pytest.raises(CheckpointError, match="names 2 classes for 3 outputs"):
        OnnxClassifier(path)


def test_onnx_with_external_data_is_refused(tmp_path: Path) -> None:
    """A file whose weights point at another file (here: outside its directory) is refused."""
    from onnx import helper, numpy_helper

    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    weight = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "16")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Add", ["input", "w"], ["logits"])],
        "g",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 4])],
        [weight],
    )
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "evil.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    with pytest.raises(CheckpointError, match="external files"):
        OnnxClassifier(path)
