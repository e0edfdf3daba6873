"""The registry: no model imported at import time, yet every public call sees the whole zoo.

Listing reads ``models/facts.json`` (neither PyTorch nor the zoo is imported); building imports
the zoo. The file is ignored, with a warning, once the zoo's code changes, so these tests also
check the fall-back and a model registered by the user's own code. That the file equals a fresh
registration and trace is checked with the other generated files, in ``test_generated.py``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import cnnlab
import cnnlab.registry
from cnnlab.registry import FACTS_PATH, GENERATE, list_models, model_info


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter; its stdout (a failure shows its stderr)."""
    return run_python_process(code).stdout


def run_python_process(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter; the finished process (a failure shows its stderr)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


def zoo_models() -> list[str]:
    """The package's own models (a test module may register one of its own)."""
    return [n for n in list_models() if model_info(n).builder.__module__.startswith("cnnlab.")]


def test_registry_does_not_import_the_models() -> None:
    tree = ast.parse(Path(cnnlab.registry.__file__).read_text())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported += [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
    assert not [n for n in imported if n == "cnnlab.models" or n.startswith("cnnlab.models.")]


def test_every_family_is_registered_after_importing_the_package_or_the_registry() -> None:
    program = (
        "import {module}\n"
        "assert {call}('lenet5').cnnlab_info.family == 'lenet'\n"
        "assert len(cnnlab.registry.list_models()) > 30\n"
    )
    for module, call in (
        ("cnnlab", "cnnlab.create_model"),
        ("cnnlab.registry", "cnnlab.registry.create_model"),
    ):
        code = program.format(module=module, call=call)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, (module, done.stderr)


def test_facts_file_lists_every_zoo_model() -> None:
    recorded = json.loads(FACTS_PATH.read_text(encoding="utf-8"))
    assert sorted(recorded["models"]) == zoo_models(), f"run `{GENERATE}`"


def test_listing_and_reading_facts_import_neither_torch_nor_the_zoo() -> None:
    code = (
        "import json, sys, cnnlab\n"
        "from cnnlab.registry import recorded_macs\n"
        "names = cnnlab.list_models()\n"
        "rows = [[repr(cnnlab.model_info(n)), recorded_macs(n)] for n in names]\n"
        "assert 'torch' not in sys.modules and 'cnnlab.models' not in sys.modules\n"
        "print(json.dumps(rows))\n"
    )
    rows = json.loads(run_python(code))
    recorded = json.loads(FACTS_PATH.read_text(encoding="utf-8"))["models"]
    assert rows == [[repr(model_info(n)), recorded[n]["macs"]] for n in zoo_models()]


def test_a_zoo_changed_since_the_file_was_written_is_imported_instead(tmp_path: Path) -> None:
    stale = json.loads(FACTS_PATH.read_text(encoding="utf-8"))
    stale["zoo_sha256"] = stale["zoo_bytes_sha256"] = "0" * 64  # as after an edit to a model
    stale["models"]["vgg16"]["num_params"] = 1  # a figure that must not be believed
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(stale))
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "import cnnlab.registry as r\n"
        f"r.FACTS_PATH = Path({str(path)!r})\n"
        "names = r.list_models()\n"
        "print(json.dumps([names, r.model_info('vgg16').num_params, r.recorded_macs('vgg16'),\n"
        "                  'cnnlab.models' in sys.modules]))\n"
    )
    done = run_python_process(code)
    names, params, macs, zoo_imported = json.loads(done.stdout)
    assert names == zoo_models()
    assert params == model_info("vgg16").num_params and macs is None and zoo_imported
    # Never silent: one warning, naming the command that regenerates the file.
    assert done.stderr.count("StaleFactsWarning") == 1 and GENERATE in done.stderr


YOUR_MODEL = '''
import json, sys
from torch import nn
import cnnlab
from cnnlab.cli import main
from cnnlab.errors import DuplicateModelError

@cnnlab.register_model(family="mine", paper="-", input_size=(1, 8, 8), min_input_size=(8, 8),
                       num_params=8 * 9 + 8 + 8 * 3 + 3, num_classes=3)
def mynet(*, num_classes, in_channels):
    """A 3x3 convolution, global pooling and a linear layer."""
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, num_classes))

assert "cnnlab.models" not in sys.modules  # the name was checked against facts.json
try:
    @cnnlab.register_model(family="mine", paper="-", input_size=(1, 8, 8),
                           min_input_size=(8, 8), num_params=0)
    def vgg16(*, num_classes, in_channels):
        raise AssertionError("never built")
except DuplicateModelError as err:
    print(err)
assert "mynet" in cnnlab.list_models("m*") and len(cnnlab.list_models()) > 30
main(["models", "mynet", "--format", "json"])
'''


def test_your_own_model_is_listed_traced_and_cannot_take_a_zoo_name() -> None:
    error, listing = run_python(YOUR_MODEL).split("\n", 1)
    assert "'vgg16' is already registered (by cnnlab.models.vgg)" in error
    (row,) = json.loads(listing)
    assert row["description"] == "A 3x3 convolution, global pooling and a linear layer."
    assert row["macs"] == 8 * 9 * 36 + 8 * 3  # conv: 8 filters x 9 taps x 6x6 outputs; linear
