"""The README's tour, command by command, as a newcomer types it after ``make demo``.

The commands are read from README.md (the first ``bash`` block under "## A tour"), so the tour
cannot drift from what works. Two things are made small, and said so here rather than hidden:

* ``runs/demo``, which ``make demo`` trains for a minute, is trained by the fixture with the
  demo's own command on a few hundred images (:data:`TINY`);
* the tour's ``cnnlab train`` gets :data:`TINY` appended (argparse keeps a flag's last value),
  so its two epochs on 55,000 images become one on 512.

``python examples/lecture_tour.py`` is run by ``tests/test_examples.py``, which also checks the
figures it prints; here it is only checked to be that file. Everything else runs as written,
in-process through :func:`cnnlab.cli.main`, in a fresh working folder.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from helpers import ROOT
from helpers.datasets import needs_fashion_mnist
from helpers.optional import needs_onnx
from helpers.runs import SMALL

pytestmark = [needs_fashion_mnist, needs_onnx, pytest.mark.slow]

TINY = SMALL  # 512 training images, one epoch, one CPU thread, no stall guard
DEMO = ["train", "--data", "fashion-mnist", "--recipe", "fast", "--out", "runs/demo"]  # demo.sh
# Commands that run elsewhere, with where.
ELSEWHERE = {"python examples/lecture_tour.py": "tests/test_examples.py"}


def tour_commands(readme: Path = ROOT / "README.md") -> list[str]:
    """The tour's command lines: comments dropped, ``a && b`` split into ``a`` and ``b``."""
    section = readme.read_text().split("\n## A tour\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README.md's tour has no ```bash block"
    commands = []
    for line in block.group(1).splitlines():
        line = re.sub(r"\s+# .*$", "", line).strip()  # a comment: spaces, '#', a space
        commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


def argv_of(command: str) -> list[str]:
    """``cnnlab ARGS`` as the shell passes them: quotes removed, unquoted ``*`` globs expanded
    (the tour has no spaces inside quotes)."""
    words = command.split()
    assert words[0] == "cnnlab", command
    argv = []
    for word in words[1:]:
        if word[0] == word[-1] == "'":
            argv.append(word[1:-1])
        elif "*" in word:
            argv += sorted(glob.glob(word)) or [word]  # no match: the shell passes it as it is
        else:
            argv.append(word)
    return argv


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh folder after a (tiny) ``make demo``: ``runs/demo`` and nothing else."""
    where, before, threads = tmp_path_factory.mktemp("tour"), Path.cwd(), torch.get_num_threads()
    os.chdir(where)
    try:
        assert main([*DEMO, *TINY]) == 0
        yield where
    finally:
        os.chdir(before)
        torch.set_num_threads(threads)


def test_tour_lists_what_a_newcomer_can_run() -> None:
    commands = tour_commands()
    assert len(commands) >= 15
    assert all(c.startswith("cnnlab ") or c in ELSEWHERE for c in commands), commands
    assert all((ROOT / c.split()[1]).is_file() for c in ELSEWHERE if c in commands)
    # the files the tour uses are ones the tour (or make demo) makes
    assert "cnnlab data sample fashion-mnist -n 8 -o samples/" in commands


def test_every_tour_command_runs_as_written(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    threads = torch.get_num_threads()
    outputs = {}
    for command in tour_commands():
        if command in ELSEWHERE:
            continue
        argv = argv_of(command)
        if argv[0] == "train":
            argv += TINY
        status = main(argv)
        torch.set_num_threads(threads)  # eval and predict take every core; a test does not
        out, err = capsys.readouterr()
        assert status == 0, f"`{command}` exited {status}: {err}"
        outputs[command] = out
    names = sorted(p.name for p in (workdir / "samples").glob("*.png"))
    assert len(names) == 8 and names[0] == "0-ankle-boot.png"
    predicted = outputs["cnnlab predict runs/demo samples/*.png"]
    assert all(name in predicted for name in names)  # the glob reached every sample
    for made in ("vgg16.png", "cost.png", "edges.png", "all_kernels.png", "cam.png", "demo.html"):
        assert (workdir / made).stat().st_size > 0, made
    assert (workdir / "lenet5.onnx").is_file()
    listed = outputs["cnnlab runs"]
    assert "runs/demo" in listed and "runs/lenet5" in listed
