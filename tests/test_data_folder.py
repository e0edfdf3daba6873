"""Image folders as people keep them: split folders or stratified fractions, reduced-size decoding,
random-resized crops, batch capping, bad folders, and a small end-to-end run with predict."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli import main
from cnnlab.data import crops
from cnnlab.data.folder import decode_files, inspect_folder, split_folder
from cnnlab.data.images import read_image
from cnnlab.errors import DataError
from cnnlab.run.config import TrainConfig
from cnnlab.run.data import Augmenter, fit_config_to_data, load_run_data
from helpers.datasets import photos


def test_stratified_fractions_fixed_by_the_seed(tmp_path: Path) -> None:
    photos(tmp_path, per_class=25)
    photos(tmp_path, per_class=3, classes=("green",))
    s = split_folder(tmp_path, seed=0)
    assert s.classes == ("blue", "green", "red") and set(s.origin.values()) == {"fraction"}
    per = {split: np.bincount([y for _, y in getattr(s, split)], minlength=3) for split in
           ("train", "val", "test")}  # fmt: skip
    assert per["test"].tolist() == [2, 1, 2] and per["val"].tolist() == [2, 1, 2]  # >= 1 each
    assert per["train"].tolist() == [21, 1, 21]
    files = [p for split in ("train", "val", "test") for p, _ in getattr(s, split)]
    assert len(files) == len(set(files)) == 53
    assert split_folder(tmp_path, seed=0) == s
    assert split_folder(tmp_path, seed=1).test != s.test
    record = s.to_dict()
    assert record["test"][0][0].endswith(".jpg") and not record["test"][0][0].startswith("/")


def test_split_folders_used_when_present(tmp_path: Path) -> None:
    photos(tmp_path / "train", per_class=6)
    photos(tmp_path / "val", per_class=2)
    s = split_folder(tmp_path)
    assert s.origin == {"train": "folder", "val": "folder", "test": "fraction"}
    assert len(s.val) == 4 and all("/val/" in str(p) for p, _ in s.val)
    assert len(s.test) == 2 and all("/train/" in str(p) for p, _ in s.test)
    assert len(s.train) == 10


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda r: r.mkdir(), "no class sub-folders"),
        (lambda r: photos(r, classes=("red",)), "only one class"),
        (lambda r: (photos(r), (r / "empty").mkdir()), "holds no images"),
        (lambda r: photos(r, per_class=2), "cannot be split"),
    ],
)
def test_bad_folders_are_one_line_errors(tmp_path: Path, make, message: str) -> None:
    root = tmp_path / "f"
    make(root)
    with pytest.raises(DataError, match=message) as err:
        split_folder(root)
    assert "\n" not in str(err.value)


def test_unreadable_files_skipped_and_counted(tmp_path: Path) -> None:
    photos(tmp_path, per_class=8)
    (tmp_path / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    s = split_folder(tmp_path)
    everything = s.train + s.val + s.test
    x, y, skipped = decode_files(everything, 3, (16, 16), shorter_side=16, skip_unreadable=True)
    assert len(x) == len(y) == len(everything) - 1 and skipped[0][0].name == "broken.jpg"
    with pytest.raises(DataError, match=r"broken\.jpg"):
        decode_files(everything, 3, (16, 16))
    for f in (tmp_path / "blue").iterdir():  # a class with nothing readable left
        f.write_bytes(b"not an image")
    config = TrainConfig(model="resnet18", data=str(tmp_path), image_size=32)
    with pytest.raises(DataError, match="'blue' has no readable training image"):
        load_run_data(config)


def test_reduced_size_decode_resize_shorter_side_and_centre_crop(tmp_path: Path) -> None:
    left_right = np.zeros((300, 400, 3), np.uint8)
    left_right[:, :50] = 255  # a white band only at the left edge: the centre crop drops it
    Image.fromarray(left_right).save(tmp_path / "a.jpg", quality=95)
    x = read_image(tmp_path / "a.jpg", 3, (64, 64), shorter_side=64)
    assert x.shape == (3, 64, 64) and x.float().mean() < 20
    stretched = read_image(tmp_path / "a.jpg", 3, (64, 64))
    assert stretched[:, :, :4].float().mean() > 200  # resized without the crop keeps the band


def test_run_data_geometry_and_augmenter(tmp_path: Path) -> None:
    photos(tmp_path, per_class=12, size=(60, 80))
    config = TrainConfig(model="resnet18", data=str(tmp_path), image_size=32, augment="flip")
    data = load_run_data(config)
    assert data.image_size == (32, 32) and data.resize == 37  # 32 x 256/224
    assert data.train_x.shape[1:] == (3, 37, 37) and data.test_x.shape[1:] == (3, 32, 32)
    assert data.info.classes == ("blue", "red") and len(data.test_x) == 2
    aug = Augmenter.for_run(config, data)
    g = torch.Generator().manual_seed(0)
    out = aug(data.train_x[:4], g)
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.uint8
    none = Augmenter.for_run(TrainConfig(model="resnet18", augment="none"), data)
    assert torch.equal(none(data.train_x[:2], g), crops.center_crop(data.train_x[:2], (32, 32)))


def test_random_resized_crop_of_the_whole_image_is_the_resize() -> None:
    x = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    same = crops.random_resized_crop(x, (8, 8), g, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.equal(same, x)
    flipped = crops.random_resized_crop(x, (8, 8), g, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=True)
    assert all(
        torch.equal(f, i) or torch.equal(f, i.flip(-1)) for f, i in zip(flipped, x, strict=True)
    )


def test_batch_capped_to_the_data_with_a_note(tmp_path: Path) -> None:
    photos(tmp_path, per_class=12)
    config = TrainConfig(model="resnet18", data=str(tmp_path), image_size=32)
    data = load_run_data(config)
    capped, notes = fit_config_to_data(TrainConfig(model="resnet18", batch_size=256, lr=0.2), data)
    assert capped.batch_size == 4 and capped.lr == pytest.approx(0.2 * 4 / 256)
    assert "more than half" in notes[0]
    kept, notes = fit_config_to_data(TrainConfig(model="resnet18", batch_size=8, lr=0.2), data)
    assert kept.batch_size == 8 and not notes


def test_train_with_no_flags_then_predict_names_the_folders(tmp_path: Path, capsys) -> None:
    """The issue's acceptance in small: a folder, default settings but a small image size."""
    data = photos(tmp_path / "photos", per_class=12, size=(48, 64))
    run = tmp_path / "run"
    argv = ["train", "resnet18", "--data", str(data), "--out", str(run), "--image-size", "32"]
    assert main([*argv, "--epochs", "2", "--no-progress", "--stall-patience", "0"]) == 0
    splits = json.loads((run / "splits.json").read_text())
    assert splits["classes"] == ["blue", "red"] and len(splits["test"]) == 2
    capsys.readouterr()
    assert main(["predict", str(run), str(data / "red" / "red0.jpg"), "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "red" in out and "blue" in out
    from cnnlab.run.load import load_trained

    meta = load_trained(run).meta
    assert meta.classes == ("blue", "red") and meta.resize == 37 and meta.image_size == (32, 32)


def test_listing_skips_special_files_and_confines_symlinks(tmp_path: Path) -> None:
    """Only regular files inside their class folder count, each once; the rest is one note."""
    photos(tmp_path, per_class=5)
    os.mkfifo(tmp_path / "red" / "pipe.png")  # reading it would block forever
    (tmp_path / "red" / "up").symlink_to("..")  # would pull blue/* in labelled red
    (tmp_path / "red" / "blue.jpg").symlink_to("../blue/blue0.jpg")
    (tmp_path / "red" / "loop").symlink_to(".")  # walked once: nothing new, no note
    (tmp_path / "red" / "red9.jpg").symlink_to("red0.jpg")  # counted once (the first path)
    (tmp_path / "red" / "gone.jpg").symlink_to("nowhere.jpg")
    s = split_folder(tmp_path)
    red = [p for split in ("train", "val", "test") for p, y in getattr(s, split) if y == 1]
    assert sorted(p.name for p in red) == [f"red{i}.jpg" for i in range(5)]
    kinds = {x.path.name: x.kind for x in s.skipped}
    assert kinds == {
        "blue.jpg": "outside",
        "gone.jpg": "broken",
        "pipe.png": "special",
        "red9.jpg": "duplicate",
        "up": "outside",
    }
    (note,) = s.notes()
    assert "skipped 5 file(s)" in note and "outside its class folder: 2" in note
    assert "not a regular file (FIFO, device, socket): 1" in note and "\n" not in note
    assert sorted(f for f, _ in s.to_dict()["skipped"]) == sorted(
        f"red/{n}" for n in ("blue.jpg", "gone.jpg", "pipe.png", "red9.jpg", "up")
    )


@pytest.mark.parametrize(
    "val, message",
    [
        (("red",), r"val lacks the training class 'blue'.*add .*val/blue/.*or remove .*val/"),
        (("blue", "green", "red"), "'green' is not among the training classes"),
    ],
)
def test_split_folders_hold_exactly_the_training_classes(
    tmp_path: Path, val: tuple[str, ...], message: str
) -> None:
    photos(tmp_path / "train", per_class=4, classes=("blue", "red"))
    photos(tmp_path / "val", per_class=1, classes=val)
    with pytest.raises(DataError, match=message) as err:
        split_folder(tmp_path)
    assert "\n" not in str(err.value)


def test_overlapping_class_folders_are_an_error(tmp_path: Path) -> None:
    photos(tmp_path, per_class=5)
    (tmp_path / "green").symlink_to("red")  # every red file would be labelled twice
    with pytest.raises(DataError, match="same folder"):
        split_folder(tmp_path)
    (tmp_path / "green").unlink()
    (tmp_path / "red" / "sub").mkdir()
    (tmp_path / "green").symlink_to("red/sub")
    with pytest.raises(DataError, match="one holds the other"):
        split_folder(tmp_path)


def test_data_info_and_training_skip_the_same_files(tmp_path: Path) -> None:
    """One rule (decode_splits): the same unreadable files, the same note lines."""
    photos(tmp_path, per_class=8, size=(20, 24))
    (tmp_path / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (tmp_path / "blue" / "empty.png").write_bytes(b"")
    os.mkfifo(tmp_path / "blue" / "pipe.jpg")
    report = inspect_folder(tmp_path)
    data = load_run_data(TrainConfig(model="resnet18", data=str(tmp_path), image_size=32))
    decode_notes = [n for n in report.notes() if "unreadable" in n]
    assert len(decode_notes) >= 1 and set(decode_notes) <= set(data.notes)
    skipped = {p.name for bad in report.decoded.unreadable.values() for p, _ in bad}
    assert skipped == {"broken.jpg", "empty.png"}
    assert [s.path.name for s in report.decoded.splits.skipped] == ["pipe.jpg"]
    assert report.info.num_train + report.info.num_test == 16
