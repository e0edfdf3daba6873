"""``cnnlab runs``: finished, interrupted and failed runs side by side, in every format."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from cnnlab.cli import main
from cnnlab.report.runs import find_runs, read_run, runs_table

STALLED = "training loss stayed at chance (2.30 >= ln 10) for 2 epochs: lower --lr"


@pytest.fixture
def three_runs(trained_run: Path, tmp_path: Path) -> Path:
    """runs/finished, runs/sweep/interrupted (no results.json) and runs/sweep/failed."""
    runs = tmp_path / "runs"
    shutil.copytree(trained_run, runs / "finished")
    interrupted = runs / "sweep" / "interrupted"
    shutil.copytree(trained_run, interrupted)
    (interrupted / "results.json").unlink()
    (interrupted / "model.safetensors").unlink()
    failed = runs / "sweep" / "failed"
    shutil.copytree(trained_run, failed)
    (failed / "results.json").write_text(json.dumps({"status": "failed", "reason": STALLED}))
    (runs / "notes").mkdir()  # not a run: skipped
    return runs


def test_statuses(three_runs: Path) -> None:
    found = {p.name: read_run(p) for p in find_runs([three_runs])}
    assert sorted(found) == ["failed", "finished", "interrupted"]
    assert found["finished"].status == "finished" and found["finished"].test_top1 is not None
    assert found["interrupted"].status == "interrupted" and found["interrupted"].reason == ""
    assert found["failed"].status == "failed" and found["failed"].reason == STALLED
    assert found["failed"].test_top1 is None and found["failed"].best_val_acc is not None
    assert all(r.model == "tinynet" and r.epochs_done == r.epochs == 2 for r in found.values())


def test_text_table_is_the_default_under_runs(three_runs: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(three_runs.parent)
    assert main(["runs"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["run", "model", "data", "recipe"]
    rows = {line.split()[0]: line.split()[-1] for line in out[1:4]}
    assert rows == {
        "runs/finished": "finished",
        "runs/sweep/failed": "failed",
        "runs/sweep/interrupted": "interrupted",
    }
    assert f"runs/sweep/failed: failed: {STALLED}" in out


def test_json_markdown_and_html(three_runs: Path, capsys) -> None:
    assert main(["runs", str(three_runs), "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {r["status"] for r in records} == {"finished", "interrupted", "failed"}
    assert set(records[0]) >= {"model", "best_val_acc", "final_val_acc", "test_top1", "seconds"}
    assert main(["runs", str(three_runs), "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("| run | model |") and "| failed |" in markdown
    assert main(["runs", str(three_runs), "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert page.startswith("<!DOCTYPE html>") and page.count('src="data:image/png;base64,') == 1
    import html5lib

    html5lib.HTMLParser(strict=True).parse(page)  # raises on any HTML parse error
    assert "<script" not in page and not re.search(r"(?:src|href)=\"(?!data:|#)", page)


def test_plot_overlays_the_curves(three_runs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "curves.png"
    assert main(["runs", str(three_runs), "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = runs_table([three_runs]).plot()
    assert [len(ax.get_lines()) for ax in fig.axes] == [3, 3]


def test_no_runs_and_damaged_runs(tmp_path: Path, capsys) -> None:
    assert main(["runs", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "no runs found"
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    (tmp_path / "early").mkdir()
    (tmp_path / "early" / "config.json").write_text(json.dumps({"model": "lenet5", "epochs": 3}))
    table = runs_table([tmp_path])
    assert [r.status for r in table.runs] == ["damaged", "interrupted"]
    assert "before its first checkpoint" in table.runs[1].reason
    assert "0/3" in table.to_text()


FAKE_REASON = "stalled\n\x1b[31mcnnlab: error: fake\x1b[0m\r\u202e"


def test_a_damaged_run_is_listed_as_such_and_the_others_still_are(three_runs: Path, capsys) -> None:
    nothing = three_runs / "sweep" / "null"
    shutil.copytree(three_runs / "finished", nothing)
    (nothing / "results.json").write_text("null")  # valid JSON, not a record: not "interrupted"
    ragged = three_runs / "ragged"
    shutil.copytree(three_runs / "finished", ragged)
    results = json.loads((ragged / "results.json").read_text())
    results["test"]["confusion"][3].pop()
    (ragged / "results.json").write_text(json.dumps(results))
    (three_runs / "sweep" / "failed" / "results.json").write_text(
        json.dumps({"status": "failed", "reason": FAKE_REASON})
    )
    assert main(["runs", str(three_runs), "--format", "json"]) == 0
    records = {Path(r["run"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert {name: r["status"] for name, r in records.items()} == {
        "finished": "finished",
        "interrupted": "interrupted",
        "failed": "failed",
        "null": "damaged",
        "ragged": "damaged",
    }
    assert records["null"]["reason"] == "results.json: the file must be a JSON object, not null"
    assert (
        records["ragged"]["reason"] == "results.json: test.confusion[3] must hold 10 values, not 9"
    )
    assert records["failed"]["reason"] == FAKE_REASON  # JSON keeps it, escaped by JSON itself
    for fmt in ("text", "markdown", "csv", "html"):
        assert main(["runs", str(three_runs), "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert not any(c in out for c in "\x1b\r\u202e"), fmt
        assert not any(line.startswith("cnnlab: error: fake") for line in out.splitlines())
        assert "stalled\\x0a\\x1b[31mcnnlab: error: fake" in out, fmt


def test_a_missing_folder_is_a_one_line_error(tmp_path: Path, monkeypatch, capsys) -> None:
    assert main(["runs", str(tmp_path / "nosuchdir")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nosuchdir does not exist" in err
    (tmp_path / "file").write_text("")
    assert main(["runs", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)  # no runs/ yet: nothing trained, nothing wrong
    assert main(["runs"]) == 0
    assert capsys.readouterr().out.strip() == "no runs found"


def test_an_experiment_folder_lists_its_runs(trained_run: Path, tmp_path: Path, capsys) -> None:
    """`cnnlab experiment run` writes OUT/experiment.json, OUT/results.json and OUT/runs/LABEL:
    the experiment's own results.json is no run."""
    experiment = tmp_path / "kernel-stacks"
    for label in ("stack3x3", "single7x7"):
        shutil.copytree(trained_run, experiment / "runs" / label)
    (experiment / "experiment.json").write_text(json.dumps({"experiment": "kernel-stacks"}))
    (experiment / "results.json").write_text(json.dumps({"experiment": "kernel-stacks"}))
    assert main(["runs", str(experiment), "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(Path(r["run"]).name for r in listed) == ["single7x7", "stack3x3"]
    assert all(r["status"] == "finished" and r["model"] for r in listed)
