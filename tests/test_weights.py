"""Pretrained weights: download against a local HTTP server, import, loading into a model.

Nothing touches the network: torchvision's published address is replaced by a local server
(``$CNNLAB_WEIGHTS_URL``) serving files generated here, named with the hash prefix of their own
SHA-256 where the test wants them accepted. The pickle payloads are the reliability suite's
(``tests/reliability/harness.py``): each would create a marker file if anything unpickled it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

import pytest
import torch
import torchvision

import cnnlab.weights as weights_mod
from cnnlab.analysis.trace import on_meta
from cnnlab.cli import main
from cnnlab.errors import CheckpointError, ConfigError
from cnnlab.registry import create_model
from cnnlab.weights import (
    apply_weights,
    convert_pth,
    fetch_imagenet,
    load_pth,
    published,
    read_weights,
)
from helpers.http_server import Server
from reliability.harness import pickle_bytes, torch_save_bytes

MODEL = "resnet18"


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).state_dict()


@pytest.fixture(scope="module")
def pth_bytes(state) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNLAB_WEIGHTS_URL", raising=False)
    return tmp_path / "cache" / "cnnlab" / "weights"


def serve_as_published(monkeypatch, server: Server, body: bytes, prefix: str | None = None) -> str:
    """Serve ``body`` under a file name carrying ``prefix`` (default: its own SHA-256's)."""
    prefix = prefix or hashlib.sha256(body).hexdigest()[:8]
    name = f"resnet18-{prefix}.pth"
    real = published(MODEL)

    def fake(model: str) -> weights_mod.Published:
        return dataclasses.replace(real, model=model, file_name=name, hash_prefix=prefix)

    monkeypatch.setattr(weights_mod, "published", fake)
    monkeypatch.setenv("CNNLAB_WEIGHTS_URL", server.url + "/w")
    server.routes[f"/w/{name}"] = (body, "ok")
    return name


def test_published_comes_from_torchvision() -> None:
    pub = published("resnet50")
    enum = torchvision.models.get_model_weights("resnet50").DEFAULT
    assert pub.url == enum.url and pub.hash_prefix in pub.file_name
    assert len(pub.categories) == 1000 and pub.preprocessing.crop == 224
    assert published("googlenet").preprocessing.mean == (0.5, 0.5, 0.5)  # transform_input
    for name in ("vgg11_cifar", "lenet5"):
        with pytest.raises(ConfigError, match="no published ImageNet weights"):
            published(name)


def test_right_hash_downloads_converts_and_caches(cache, server, monkeypatch, pth_bytes, state):
    serve_as_published(monkeypatch, server, pth_bytes)
    path = fetch_imagenet(MODEL, progress=False)
    assert path.suffix == ".safetensors" and not list(cache.glob("*.pth"))
    got = read_weights("imagenet", MODEL)
    assert all(torch.equal(got.state[k], v) for k, v in state.items())
    assert len(got.classes) == 1000 and got.preprocessing.resize == 256
    hits = len(server.hits)
    fetch_imagenet(MODEL, progress=False)  # cached: no second download
    assert len(server.hits) == hits


@pytest.mark.parametrize("case", ["wrong hash", "truncated", "pickle", "torch.save pickle"])
def test_bad_downloads_are_refused_and_never_run(
    case, cache, server, monkeypatch, pth_bytes, tmp_path
):
    marker = tmp_path / "ran"
    if case == "wrong hash":
        serve_as_published(monkeypatch, server, pth_bytes, prefix="00000000")
    elif case == "truncated":
        name = serve_as_published(monkeypatch, server, pth_bytes)
        server.routes[f"/w/{name}"] = (pth_bytes, "truncate")
    else:  # the right hash for a malicious file: torch.load(weights_only=True) must refuse it
        body = pickle_bytes(marker) if case == "pickle" else torch_save_bytes(marker, True)
        serve_as_published(monkeypatch, server, body)
    with pytest.raises(Exception) as err:
        fetch_imagenet(MODEL, progress=False)
    assert "\n" not in str(err.value) and type(err.value).__name__ in (
        "CheckpointError",
        "DataError",
    )
    assert not marker.exists()  # nothing in the file ran
    assert not list(cache.glob("*")) if cache.exists() else True  # nothing left behind


def test_import_then_weights_equals_torchvision(tmp_path: Path, pth_bytes, state) -> None:
    """The acceptance: `cnnlab weights import` + --weights file == torchvision with the dict."""
    src = tmp_path / "mine.pth"
    src.write_bytes(pth_bytes)
    out = tmp_path / "mine.safetensors"
    assert main(["weights", "import", str(src), "--model", MODEL, "-o", str(out)]) == 0
    source = read_weights(str(out), MODEL)
    ours = create_model(MODEL)
    apply_weights(ours, source, source.classes, 3)
    reference = torchvision.models.resnet18(weights=None)
    reference.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        diff = (ours.eval()(x) - reference.eval()(x)).abs().max().item()
    assert diff <= 1e-5


def test_import_checks_every_key_and_shape(tmp_path: Path, state) -> None:
    bad = dict(state)
    bad.pop("fc.bias")
    bad["extra"] = torch.zeros(1)
    bad["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(CheckpointError, match=r"1 missing: fc.bias; 1 unexpected: extra; 1 wrong"):
        convert_pth(path, MODEL, tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="not a state dict of vgg11"):
        convert_pth(path, "vgg11", tmp_path / "bad.safetensors")


@pytest.mark.parametrize("name", ["pickle", "torch.save zip", "legacy torch.save"])
def test_import_refuses_pickle_payloads(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "ran"
    blob = {
        "pickle": lambda: pickle_bytes(marker),
        "torch.save zip": lambda: torch_save_bytes(marker, True),
        "legacy torch.save": lambda: torch_save_bytes(marker, False),
    }[name]()
    path = tmp_path / "evil.pth"
    path.write_bytes(blob)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_pth(path)
    assert main(["weights", "import", str(path), "--model", MODEL]) == 2
    assert not marker.exists()
    # --weights never unpickles at all: a .pth is sent to `cnnlab weights import`.
    with pytest.raises(CheckpointError, match="weights import"):
        read_weights(str(path), MODEL)
    assert not marker.exists()


def test_head_replaced_and_one_channel_stem(tmp_path: Path, pth_bytes, state) -> None:
    src = tmp_path / "w.pth"
    src.write_bytes(pth_bytes)
    out = convert_pth(src, MODEL, tmp_path / "w.safetensors")
    source = read_weights(str(out), MODEL)
    torch.manual_seed(1)
    net = create_model(MODEL, num_classes=3, in_channels=1)
    fresh_fc = net.fc.weight.detach().clone()
    record = apply_weights(net, source, ("a", "b", "c"), 1)
    assert record.head == {"fc.weight", "fc.bias"} and record.head_reset
    assert torch.equal(net.fc.weight, fresh_fc)  # the new head keeps its initialisation
    assert torch.equal(net.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(net.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    grey = torch.rand(1, 1, 64, 64)
    rgb_net = create_model(MODEL, num_classes=3)
    apply_weights(rgb_net, source, ("a", "b", "c"), 3)
    rgb_net.fc.load_state_dict(net.fc.state_dict())
    with torch.no_grad():  # a grey image as three equal channels: the same features
        a, b = net.eval()(grey), rgb_net.eval()(grey.expand(1, 3, 64, 64))
    assert (a - b).abs().max().item() < 1e-4


def test_finetune_param_groups_scale_the_backbone(tmp_path: Path, pth_bytes) -> None:
    from cnnlab.run.config import TrainConfig
    from cnnlab.train.finetune import finetune_optimizer
    from cnnlab.weights import load_for_training

    def load(net, config, classes):
        return load_for_training(
            net, model=config.model, weights=config.weights, finetune=config.finetune,
            classes=classes, in_channels=3,
        )  # fmt: skip

    src = tmp_path / "w.pth"
    src.write_bytes(pth_bytes)
    out = convert_pth(src, MODEL, tmp_path / "w.safetensors")
    config = TrainConfig(
        model=MODEL, weights=str(out), optimizer="sgd", lr=0.1, momentum=0.0, nesterov=False,
        weight_decay=0.0, backbone_lr=0.1,
    )  # fmt: skip
    net = create_model(MODEL, num_classes=2)
    load(net, config, ("a", "b"))
    opt = finetune_optimizer(config, net)
    assert sorted(g["lr_scale"] for g in opt.param_groups) == [0.1, 1.0]
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    assert all(g["lr"] == 0.1 for g in opt.param_groups)  # the schedule's lr is left as it was
    assert torch.allclose(before["fc.bias"] - net.fc.bias, torch.full((2,), 0.1))
    assert torch.allclose(before["conv1.weight"] - net.conv1.weight, torch.tensor(0.01))

    probe = create_model(MODEL, num_classes=2)
    load(probe, dataclasses.replace(config, finetune="head"), ("a", "b"))
    trainable = {n for n, p in probe.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    probe.train()
    stats = probe.bn1.running_mean.clone()
    probe(torch.randn(2, 3, 64, 64))
    assert torch.equal(probe.bn1.running_mean, stats)  # frozen batch norm: statistics kept
    with pytest.raises(ConfigError, match="needs pretrained weights"):
        load(create_model(MODEL), TrainConfig(model=MODEL, finetune="head"), ())


def test_weights_of_a_cnnlab_run_and_imagenet_end_to_end(
    tmp_path: Path, cache, server, monkeypatch
) -> None:
    """--weights imagenet through `fit`, against the local server, on a tiny image folder."""
    from PIL import Image

    from cnnlab.train import TrainConfig, fit

    torch.manual_seed(0)
    small = torchvision.models.resnet18(weights=None).state_dict()
    buf = io.BytesIO()
    torch.save(small, buf)
    serve_as_published(monkeypatch, server, buf.getvalue())
    g = torch.Generator().manual_seed(0)
    for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(6):
            pixels = torch.tensor(colour) + torch.randint(0, 30, (40, 48, 3), generator=g)
            image = Image.fromarray(pixels.clamp(0, 255).to(torch.uint8).numpy())
            image.save(tmp_path / "data" / name / f"{i}.jpg")
    config = TrainConfig(
        model=MODEL, data=str(tmp_path / "data"), weights="imagenet", finetune="head",
        epochs=1, image_size=32, out=str(tmp_path / "run"), progress=False, stall_patience=0,
    )  # fmt: skip
    result = fit(config, quiet=True)
    from cnnlab.run.load import load_trained

    meta = load_trained(result.run_dir).meta
    assert meta.weights.endswith(".pth") and meta.mean == published(MODEL).preprocessing.mean
    assert meta.classes == ("blue", "red") and meta.image_size == (32, 32)
    again = read_weights(str(result.run_dir), MODEL)  # a run directory as --weights
    assert again.classes == ("blue", "red") and again.preprocessing.crop == 32


def test_check_weights_converts_floats_and_refuses_what_would_be_converted_silently(state):
    from cnnlab.run.tensorfile import check_weights

    with on_meta():
        expected = create_model(MODEL).state_dict()
    half = {k: v.half() if v.is_floating_point() else v.int() for k, v in state.items()}
    got = check_weights(half, expected, "w.pth", model=MODEL)
    assert all(got[k].dtype == v.dtype for k, v in expected.items())  # explicitly converted
    assert list(got) == list(expected)
    for bad, match in (
        (state["conv1.weight"].to(torch.int64), "int64 values where resnet18 has floating"),
        (state["conv1.weight"].to(torch.complex64), "complex64 values"),
        (state["conv1.weight"] > 0, "bool values"),
        (torch.full_like(state["conv1.weight"], float("nan")), "NaN values"),
        (state["conv1.weight"].double() * 1e300, r"infinite values \(as float32\)"),
    ):
        with pytest.raises(CheckpointError, match=match):
            check_weights({**state, "conv1.weight": bad}, expected, "w.pth", model=MODEL)
    buffer = "bn1.num_batches_tracked"
    with pytest.raises(CheckpointError, match="float32 values where resnet18 has integer ones"):
        check_weights({**state, buffer: state[buffer].float()}, expected, "w.pth", model=MODEL)


def test_a_cache_entry_that_is_not_a_file_is_refused_not_replaced(cache) -> None:
    cache.mkdir(parents=True)
    (cache / published(MODEL).cache_name).mkdir()
    with pytest.raises(CheckpointError, match="not a file cnnlab wrote: delete it"):
        fetch_imagenet(MODEL, progress=False)


def test_weights_pth_is_sent_to_import_before_any_data_is_read(tmp_path: Path, pth_bytes) -> None:
    from cnnlab.weights import preprocessing_for

    src = tmp_path / "mine.pth"
    src.write_bytes(pth_bytes)
    with pytest.raises(CheckpointError, match="weights import"):
        preprocessing_for(str(src), MODEL)
