"""No code path in ``src/`` can unpickle: a static check of every call that could.

Forbidden: ``pickle.load``/``loads`` (and ``cPickle``, ``dill``, ``marshal``, ``shelve``,
``joblib``), ``torch.jit.load``, ``torch.load`` without ``weights_only=True``,
``numpy.load(..., allow_pickle=True)`` and ``pandas.read_pickle``. The check works on the syntax
tree, so comments and strings that mention these names do not count, and aliases
(``import pickle as p``; ``from torch import load``) are resolved.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# module -> functions that deserialize executable objects.
UNSAFE = {
    "pickle": {"load", "loads", "Unpickler"},
    "_pickle": {"load", "loads", "Unpickler"},
    "cPickle": {"load", "loads", "Unpickler"},
    "dill": {"load", "loads"},
    "cloudpickle": {"load", "loads"},
    "marshal": {"load", "loads"},
    "shelve": {"open"},
    "joblib": {"load"},
    "torch.jit": {"load"},
    "pandas": {"read_pickle"},
}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted name it stands for (``p`` -> ``pickle``, ``load`` -> ``torch.load``)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[(a.asname or a.name).split(".")[0]] = (
                    a.name if a.asname else a.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def violations(source: str, filename: str = "<src>") -> list[str]:
    """Every unsafe deserialisation call in ``source``, as ``file:line: call``."""
    tree = ast.parse(source, filename)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases)
        if name is None:
            continue
        module, _, func = name.rpartition(".")
        module = {"np": "numpy", "torch.jit._serialization": "torch.jit"}.get(module, module)
        bad = func in UNSAFE.get(module, set())
        if name == "torch.load":
            weights_only = _kw(node, "weights_only")
            bad = not (isinstance(weights_only, ast.Constant) and weights_only.value is True)
        if name in ("numpy.load", "np.load"):
            allow = _kw(node, "allow_pickle")
            bad = not (allow is None or (isinstance(allow, ast.Constant) and allow.value is False))
        if bad:
            found.append(f"{filename}:{node.lineno}: {name}(...)")
    return found


def test_no_unsafe_deserialisation_in_src() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20, "src/ not found or nearly empty"
    found = [v for f in files for v in violations(f.read_text(), str(f.relative_to(SRC)))]
    assert found == [], "unsafe loads in src/:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "code",
    [
        "import pickle\npickle.load(f)",
        "import pickle as p\np.loads(b)",
        "from pickle import loads\nloads(b)",
        "import torch\ntorch.load(path)",
        "import torch\ntorch.load(path, weights_only=False)",
        "from torch import load\nload(path)",
        "import torch\ntorch.jit.load(path)",
        "import numpy as np\nnp.load(path, allow_pickle=True)",
        "import marshal\nmarshal.loads(b)",
        "import shelve\nshelve.open(path)",
        "import pickle\npickle.Unpickler(f).load()",
    ],
)
def test_checker_catches(code: str) -> None:
    assert violations(code), f"the checker missed: {code!r}"


@pytest.mark.parametrize(
    "code",
    [
        "import torch\ntorch.load(path, weights_only=True)",
        "import numpy as np\nnp.load(path)",
        "import json\njson.loads(s)",
        "# pickle.load(f) in a comment\nx = 'torch.load(p)'",
        "from safetensors.torch import load_file\nload_file(p)",
    ],
)
def test_checker_allows(code: str) -> None:
    assert violations(code) == []
