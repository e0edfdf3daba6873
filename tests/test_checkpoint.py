"""Checkpoint and model files: round trips of the training state, damage, foreign files.

The whole-process crash tests (SIGKILL mid-step or mid-save, full disk) are in
``tests/reliability/``; the exact resume of a killed run in ``test_train_resume.py``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import helpers.models  # noqa: F401  (registers tinynet)
from cnnlab.errors import CheckpointError
from cnnlab.files import remove_temporaries
from cnnlab.registry import create_model
from cnnlab.run.checkpoints import latest_valid_checkpoint, list_checkpoints, validate_checkpoint
from cnnlab.run.load import load_trained
from cnnlab.run.tensorfile import read_header, read_tensors
from cnnlab.train import checkpoint as ckpt
from helpers.foreign_files import KINDS, plant
from helpers.sealing import sealed_record


def test_optimizer_state_round_trips_through_safetensors_and_json(tmp_path: Path) -> None:
    for make in (
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        lambda p: torch.optim.AdamW(p, lr=0.01),
    ):
        model = torch.nn.Linear(3, 2)
        opt = make(model.parameters())
        for _ in range(2):
            model(torch.randn(4, 3)).sum().backward()
            opt.step()
        tensors, data = ckpt.optimizer_state_to_files(opt)
        save_file(tensors, str(tmp_path / "o.safetensors"))
        data = json.loads(json.dumps(data))
        back = read_tensors(tmp_path / "o.safetensors")
        fresh = make(model.parameters())
        fresh.load_state_dict(ckpt.optimizer_state_from_files(back, data))
        a, b = opt.state_dict(), fresh.state_dict()
        assert a["param_groups"] == b["param_groups"]
        for i in a["state"]:
            for k, v in a["state"][i].items():
                assert torch.equal(v, b["state"][i][k])


def test_rng_states_round_trip() -> None:
    tensors, scalars = ckpt.capture_rng()
    scalars = json.loads(json.dumps(scalars))
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    ckpt.restore_rng(tensors, scalars)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
    assert tensors["torch"].dtype == torch.uint8


def _write_pair(directory: Path, step: int, on_phase=None) -> Path:
    """A pair of weights only (no training state), as tools other than training write."""
    return ckpt.save_checkpoint(
        directory,
        step,
        {"model.w": torch.full((3,), float(step))},
        {},
        {"model": "tinynet"},
        on_phase=on_phase,
    )


def test_checkpoints_keep_two_and_fall_back_past_damage(tmp_path: Path) -> None:
    for step in (5, 10, 15):
        _write_pair(tmp_path, step)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "step-00000010.json",
        "step-00000015.json",
    ]
    leftover = tmp_path / ".step-00000020.safetensors.tmp"  # a write the crash interrupted
    leftover.write_bytes(b"half a write")
    newest = tmp_path / "step-00000015.safetensors"
    newest.write_bytes(newest.read_bytes()[:-4])  # truncated
    latest, rejected = latest_valid_checkpoint(tmp_path)
    assert latest.name == "step-00000010.json" and "step-00000015" in rejected[0]
    assert remove_temporaries(tmp_path) == [leftover] and not leftover.exists()
    (tmp_path / "step-00000010.json").write_text("{not json")
    assert latest_valid_checkpoint(tmp_path)[0] is None
    _write_pair(tmp_path, 30)
    record = json.loads((tmp_path / "step-00000030.json").read_text())
    record["step"] = 31
    (tmp_path / "step-00000030.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="record was changed after it was written"):
        validate_checkpoint(tmp_path / "step-00000030.json")
    (tmp_path / "step-00000030.json").write_text(json.dumps(sealed_record(record)))  # crafted
    with pytest.raises(CheckpointError, match="records step 31, not 30"):
        validate_checkpoint(tmp_path / "step-00000030.json")
    record["step"], record["tensors_bytes"] = 30, "36664"  # edited: a string where a count goes
    (tmp_path / "step-00000030.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="tensors_bytes must be an integer, not a string"):
        validate_checkpoint(tmp_path / "step-00000030.json")


def test_save_phases_are_the_crash_points_in_order(tmp_path: Path) -> None:
    """What each phase leaves on disk: the states the reliability harness kills a run in."""
    for step in (1, 2):
        _write_pair(tmp_path, step)
    seen: list[tuple[str, Path, set[str], int | None]] = []

    def on_phase(phase: str, path: Path) -> None:
        complete = None  # the step a complete temporary file records
        if phase == "tensors-written":
            complete = read_header(path)["step"]
        elif phase == "record-written":
            complete = json.loads(path.read_text())["step"]
        seen.append((phase, path, {p.name for p in tmp_path.iterdir()}, complete))

    _write_pair(tmp_path, 3, on_phase)
    assert [phase for phase, *_ in seen] == [
        "tensors-written",
        "record-written",
        "committed",
        "pruned-tensors",
    ]
    (_, tensors_tmp, files, complete), (_, record_tmp, files2, complete2) = seen[:2]
    # Both halves are complete temporary files before they are committed.
    assert tensors_tmp.name.startswith(".step-00000003.safetensors.") and complete == 3
    assert "step-00000003.safetensors" not in files
    assert record_tmp.name.startswith(".step-00000003.json.") and complete2 == 3
    assert "step-00000003.safetensors" in files2 and "step-00000003.json" not in files2
    assert seen[2][1].name == "step-00000003.json"
    # pruned-tensors: the old record outlives its tensors for a moment (validation rejects it).
    _, old, files4, _ = seen[3]
    assert old.name == "step-00000001.json"
    assert "step-00000001.json" in files4 and "step-00000001.safetensors" not in files4
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "step-00000002.json",
        "step-00000003.json",
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_load_trained_refuses_files_cnnlab_did_not_write(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "payload-ran"
    target = plant(kind, tmp_path / "run", marker)
    with pytest.raises(CheckpointError):
        load_trained(target)
    assert not marker.exists(), "the payload ran"


def test_load_trained_refuses_weights_of_another_architecture(tmp_path: Path) -> None:
    model = create_model("tinynet", num_classes=10, in_channels=1)
    meta = {
        "model": "tinynet",
        "num_classes": 5,
        "in_channels": 1,
        "input_size": [1, 28, 28],
        "classes": list("abcde"),
        "mean": [0.5],
        "std": [0.5],
    }
    ckpt.save_model(tmp_path / "m.safetensors", model, meta)
    with pytest.raises(CheckpointError, match="not a state dict of tinynet"):
        load_trained(tmp_path / "m.safetensors")
    ckpt.save_model(tmp_path / "m.safetensors", model, {**meta, "model": "nonet"})
    with pytest.raises(CheckpointError, match="unknown model 'nonet'"):
        load_trained(tmp_path / "m.safetensors")
    partial = {k: v for k, v in meta.items() if k != "classes"}
    ckpt.save_model(tmp_path / "m.safetensors", model, {**partial, "num_classes": 10})
    with pytest.raises(CheckpointError, match="lacks classes"):
        load_trained(tmp_path / "m.safetensors")


def _epoch(epoch: int, step: int, val_acc: float) -> dict[str, float]:
    """One line of metrics.jsonl."""
    return {"epoch": epoch, "step": step, "train_loss": 2.0, "train_acc": 0.3, "val_loss": 1.9,
            "val_acc": val_acc, "lr": 0.1, "seconds": 1.5, "images_per_s": 300.0}  # fmt: skip


def _training_state(watch: ckpt.EpochWatch) -> ckpt.TrainingState:
    model = create_model("tinynet", num_classes=10, in_channels=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max")
    rng_tensors, rng_scalars = ckpt.capture_rng()
    return ckpt.TrainingState(
        step=7,
        epoch=2,
        batch=0,
        history=[_epoch(1, 4, 0.5), _epoch(2, 7, 0.4)],
        epoch_sums=[0.0, 0.0, 0.0],
        model=model.state_dict(),
        optimizer=optimizer.state_dict(),
        plateau=plateau.state_dict(),
        rank_rng=[rng_tensors],
        rng_scalars=rng_scalars,
        order_rng=torch.Generator().get_state(),
        augment_rng=torch.Generator().get_state(),
        world_size=1,
        threads=1,
        config={"model": "tinynet"},
        watch=watch,
    )


def _meta():
    from cnnlab.runmeta import RunMeta

    return RunMeta(
        model="tinynet",
        num_classes=10,
        in_channels=1,
        input_size=(1, 28, 28),
        classes=tuple("0123456789"),
        mean=(0.5,),
        std=(0.25,),
    )


def test_the_best_epoch_and_stopping_counters_round_trip_in_the_checkpoint(tmp_path: Path) -> None:
    watch = ckpt.EpochWatch(
        best_val_acc=0.5, best_epoch=1, epochs_since_best=1, stalled_epochs=2, stopped_early=True
    )
    state = _training_state(watch)
    path = ckpt.save_training_state(tmp_path, state, _meta())
    assert json.loads(path.read_text())["watch"]["best_val_acc"] == 0.5
    loaded = ckpt.load_training_state(path)
    assert loaded.watch == watch
    assert loaded.history == state.history and loaded.plateau == state.plateau
    assert (loaded.step, loaded.epoch, loaded.batch, loaded.threads) == (7, 2, 0, 1)
    # A checkpoint written before the watch (and the record's digest) existed loads with the
    # fresh counters.
    record = json.loads(path.read_text())
    del record["watch"], record["record_sha256"]
    path.write_text(json.dumps(record))
    assert ckpt.load_training_state(path).watch == ckpt.EpochWatch()


# One edit per field load_training_state reads: the wrong type, range, or a value that
# disagrees with the rest of the record (the position with the history).
EDITS = {
    "epoch": "2",
    "batch": -1,
    "world_size": 0,
    "threads": 0,
    "history": [{"epoch": 1}],
    "epoch_sums": [0.0, 0.0],
    "plateau": {"optimizer": None},
    "rng": {"numpy": {"kind": "MT19937"}},
    "optimizer": {"param_groups": [], "state_scalars": {}},
    "config": {"epochs": "three"},
    "watch": {"best_epoch": 1},
}


@pytest.mark.parametrize("field", sorted(EDITS))
def test_an_edited_record_is_refused_like_a_torn_one(tmp_path: Path, field: str) -> None:
    path = ckpt.save_training_state(tmp_path, _training_state(ckpt.EpochWatch()), _meta())
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, field: EDITS[field]}))
    with pytest.raises(CheckpointError, match=f"{field}") as refused:
        validate_checkpoint(path)
    assert "\n" not in str(refused.value) and "step-00000007.json" in str(refused.value)
    assert latest_valid_checkpoint(tmp_path) == (None, [str(refused.value)])


def test_a_record_whose_position_disagrees_with_its_history_is_refused(tmp_path: Path) -> None:
    path = ckpt.save_training_state(tmp_path, _training_state(ckpt.EpochWatch()), _meta())
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "epoch": 1}))
    with pytest.raises(CheckpointError, match="epoch is 1 but history holds 2 epochs"):
        validate_checkpoint(path)
    path.write_text(json.dumps({**record, "batch": 3}))
    with pytest.raises(CheckpointError, match="step 7 is not the 7 steps"):
        validate_checkpoint(path)
