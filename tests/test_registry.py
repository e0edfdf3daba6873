"""The registry imports no model (no import cycle); the package registers them all."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import cnnlab
import cnnlab.registry


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
