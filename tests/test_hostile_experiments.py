"""``cnnlab experiment run --resume`` on damaged experiment folders: one line or a note, never a
traceback or a hang.

One finished ``tiny-test`` experiment is made per module; each case copies it, damages one file
(valid JSON of the wrong type, garbage, a FIFO, a directory, a symlink loop...) and resumes it
through the command. A damaged measurement is measured again with a note; a damaged record of
what was asked or of the time spent is refused with ``damaged experiment DIR: FILE: ...``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import helpers.tiny_experiment as tiny
from cnnlab.cli import main
from cnnlab.experiments import run_experiment
from helpers.datasets import needs_fashion_mnist

pytestmark = needs_fashion_mnist

Damage = Callable[[Path], None]


def _write(text: str | bytes) -> Damage:
    def damage(path: Path) -> None:
        path.unlink(missing_ok=True)
        path.write_bytes(text.encode() if isinstance(text, str) else text)

    return damage


def _fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def _directory(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.mkdir()


def _loop(path: Path) -> None:
    path.unlink(missing_ok=True)
    other = path.with_name(path.name + ".other")
    path.symlink_to(other)
    other.symlink_to(path)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


COMMON: dict[str, Damage] = {
    "null": _write("null"),
    "list": _write("[1, 2, 3]"),
    "string": _write('"experiment"'),
    "number": _write("42"),
    "garbage": _write(b"\x00\xff\xfe garbage \x1b[31m"),
    "truncated": _truncate,
    "deep": _write("[" * 50_000),
    "fifo": _fifo,
    "directory": _directory,
    "loop": _loop,
}
REQUEST = {
    **COMMON,
    "empty object": _write("{}"),
    "experiment is a number": _write(
        '{"experiment": 5, "tier": "smoke", "data": "fashion-mnist", "seed": 0}'
    ),
    "settings is a list": _write(
        json.dumps(
            {
                "experiment": tiny.NAME,
                "tier": "smoke",
                "data": "fashion-mnist",
                "seed": 0,
                "settings": [],
            }
        )
    ),
}
CLOCK = {
    **COMMON,
    "seconds is a string": _write('{"seconds": "soon"}'),
    "seconds negative": _write('{"seconds": -5}'),
    "seconds huge": _write('{"seconds": 1e308}'),
    "seconds is true": _write('{"seconds": true}'),
    "no seconds": _write("{}"),
}
# (An edited measurement that is still a JSON object is trusted, as an edited results file is.)
MEASUREMENT = COMMON
CASES = [
    *[("experiment.json", name, damage) for name, damage in REQUEST.items()],
    *[("time.json", name, damage) for name, damage in CLOCK.items()],
    *[("measurements/count.json", name, damage) for name, damage in MEASUREMENT.items()],
    *[("results.json", name, damage) for name, damage in COMMON.items()],
    *[("summary.md", name, damage) for name, damage in (("garbage", COMMON["garbage"]),)],
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hostile-experiment") / "tiny"
    run_experiment(tiny.NAME, tier="smoke", out=out, threads=1, quiet=True)
    return out


@pytest.mark.hostile("experiment folders")
@pytest.mark.parametrize(("file", "name", "damage"), CASES, ids=[f"{f}:{n}" for f, n, _ in CASES])
def test_a_damaged_experiment_resumes_or_says_why_in_one_line(
    finished: Path, tmp_path: Path, capsys, file: str, name: str, damage: Damage
) -> None:
    out = tmp_path / "tiny"
    shutil.copytree(finished, out, symlinks=True)
    damage(out / file)
    argv = ["experiment", "run", tiny.NAME, "--tier", "smoke", "--threads", "1"]
    code = main([*argv, "--out", str(out), "--resume", "--quiet"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("cnnlab: error: "), err
        assert str(out) in lines[0] and "\x1b" not in lines[0]
    else:
        assert code == 0, err
        # recomputed from what is intact: the experiment's results are whole again
        results = json.loads((out / "results.json").read_text())
        assert results["runs"] == ["first", "second"] and results["measured"]["runs"] == 2
        if file.startswith("measurements/"):
            assert "measuring it again" in err or "measuring it again" in str(results["notes"])
    assert file != "experiment.json" or name not in ("null", "list", "fifo") or code == 2


def test_a_folder_with_other_files_is_not_called_an_experiment(tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    argv = ["experiment", "run", tiny.NAME, "--tier", "smoke", "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holds 'notes.txt' and no experiment" in err and "already holds" not in err


def test_resuming_with_another_tier_names_the_tier_not_a_version(finished: Path, capsys) -> None:
    argv = ["experiment", "run", tiny.NAME, "--tier", "quick", "--out", str(finished)]
    assert main([*argv, "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "tier: 'smoke' there, 'quick' now" in err and "cnnlab version" not in err
