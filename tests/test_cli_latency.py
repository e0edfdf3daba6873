"""The command line answers at once: no PyTorch (nor NumPy) for help or for listing the zoo.

``benchmarks/cli_latency.py`` measures the times; these tests pin down why they are short.
Timing itself is not asserted (the machine is shared); what is imported is.
"""

from __future__ import annotations

import json
import subprocess
import sys

import cnnlab.export
from cnnlab.cli import COMMANDS
from cnnlab.cli import export as export_cli
from cnnlab.cli import filter as filter_cli
from cnnlab.cli import show as show_cli
from cnnlab.scratch.padding import PAD_MODES
from cnnlab.seeing.show import WHAT

HELP_AND_LIST = """
import contextlib, io, json, sys
from cnnlab.cli import COMMANDS, build_parser, main

parser = build_parser()
pages = {}
for argv in [["--help"]] + [[c, "--help"] for c in COMMANDS]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            parser.parse_args(argv)
        except SystemExit as done:
            assert done.code == 0, argv
    pages[" ".join(argv)] = out.getvalue()
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["models"]) == 0
heavy = [m for m in ("torch", "numpy", "cnnlab.models", "cnnlab.analysis") if m in sys.modules]
print(json.dumps({"pages": pages, "heavy": heavy}))
"""


def test_help_of_every_command_and_the_zoo_listing_import_no_torch() -> None:
    done = subprocess.run([sys.executable, "-c", HELP_AND_LIST], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["heavy"] == []
    assert len(result["pages"]) == 1 + len(COMMANDS)
    for argv, page in result["pages"].items():
        assert page.startswith("usage: cnnlab"), argv


def test_the_command_line_copies_of_library_choices_are_exact() -> None:
    """The command line and the library read the same lists (cnnlab.choices, which imports
    nothing heavy, so help needs no PyTorch)."""
    assert show_cli.WHAT == WHAT
    assert filter_cli.PAD_MODES == PAD_MODES
    opsets = ("DEFAULT_OPSET", "MIN_OPSET", "MAX_OPSET")
    assert [getattr(export_cli, n) for n in opsets] == [getattr(cnnlab.export, n) for n in opsets]
