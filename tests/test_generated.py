"""Generated files: each equals what its generator produces now, and a stale one never passes.

The table is :data:`cnnlab.dev.generate.GENERATED`; a row added there is tested here. The facts
file's freshness is a hash of the zoo's syntax trees, so comments can change without it.
"""

from __future__ import annotations

import ast
import difflib
import json
import shutil
import warnings
from pathlib import Path

import pytest

from cnnlab.dev import generate
from cnnlab.registry import (
    FACTS_PATH,
    GENERATE,
    ZOO_DIR,
    StaleFactsWarning,
    read_facts,
    source_tree,
    zoo_sha256,
)


def _name(path: Path) -> str:
    return path.relative_to(generate.ROOT).as_posix()


@pytest.mark.parametrize("path", list(generate.GENERATED), ids=_name)
def test_generated_file_is_up_to_date(path: Path) -> None:
    """Traces the zoo for facts.json and recomputes the errata: seconds each."""
    text = generate.GENERATED[path]()
    if generate.stale({path: text}):
        committed = path.read_text(encoding="utf-8") if path.exists() else ""
        diff = difflib.unified_diff(
            committed.splitlines(keepends=True), text.splitlines(keepends=True), "committed", "now"
        )
        pytest.fail(
            f"{_name(path)} is out of date: run `{GENERATE}` (or `make generate`)\n"
            + "".join(list(diff)[:30])
        )


def test_write_rewrites_the_stale_files_only(tmp_path: Path) -> None:
    fresh, old, missing = tmp_path / "fresh.md", tmp_path / "old.md", tmp_path / "docs/missing.md"
    fresh.write_text("same\n")
    old.write_text("before\n")
    texts = {fresh: "same\n", old: "after\n", missing: "new\n"}
    assert generate.stale(texts) == [old, missing]
    assert generate.write(texts) == [old, missing]
    assert (old.read_text(), missing.read_text()) == ("after\n", "new\n")
    assert generate.stale(texts) == []


def test_the_zoo_does_not_import_the_analyzer_or_the_dev_tools() -> None:
    for path in sorted(ZOO_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [a.name for a in node.names]
                assert not [n for n in names if n.startswith(("cnnlab.analysis", "cnnlab.dev"))], (
                    f"{path.name} imports {names}: the zoo must not depend on the analyzer"
                )


# -- the facts file's hash ---------------------------------------------------------------------


def test_source_tree_ignores_comments_and_layout_but_not_code_or_docstrings() -> None:
    source = 'def f():\n    """Doc."""\n    return 1\n'
    assert source_tree(source) == source_tree(
        '# a comment\n\ndef f():  # another\n    """Doc."""\n\n    return (1)\n'
    )
    assert source_tree(source) != source_tree(source.replace("1", "2"))
    assert source_tree(source) != source_tree(source.replace("Doc.", "Other doc."))


def test_the_zoo_hash_ignores_a_comment_but_not_a_code_change(tmp_path: Path) -> None:
    zoo = tmp_path / "models"
    shutil.copytree(ZOO_DIR, zoo, ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    assert zoo_sha256(zoo) == zoo_sha256()
    vgg = zoo / "vgg.py"
    source = vgg.read_text(encoding="utf-8")
    vgg.write_text("# a new comment\n\n" + source.replace("\n\n\n", "\n\n\n# and one more\n", 1))
    assert zoo_sha256(zoo) == zoo_sha256()
    vgg.write_text(source.replace("512", "511", 1))
    assert zoo_sha256(zoo) != zoo_sha256()
    vgg.write_text(source)
    (zoo / "extra.py").write_text("X = 1\n")  # a new module is a change too
    assert zoo_sha256(zoo) != zoo_sha256()


def test_a_stale_or_missing_facts_file_warns_naming_the_command(tmp_path: Path) -> None:
    stale = json.loads(FACTS_PATH.read_text(encoding="utf-8"))
    stale["zoo_sha256"] = stale["zoo_bytes_sha256"] = "0" * 64  # as after an edit to a model
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(stale))
    with pytest.warns(StaleFactsWarning, match=GENERATE):
        assert read_facts(path) == {}
    with pytest.warns(StaleFactsWarning, match="cannot be read"):
        assert read_facts(tmp_path / "missing.json") == {}


def test_files_that_differ_only_in_bytes_keep_facts_fresh_through_their_syntax(
    tmp_path: Path,
) -> None:
    """The fast check (bytes) failing, as after a comment edit, falls back to the syntax trees."""
    edited = json.loads(FACTS_PATH.read_text(encoding="utf-8"))
    edited["zoo_bytes_sha256"] = "0" * 64
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(edited))
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleFactsWarning)
        assert read_facts(path) == edited["models"]
