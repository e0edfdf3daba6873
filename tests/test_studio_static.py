"""The studio's front end as files: no build step, nothing fetched from elsewhere, vendored code
pinned and checked.

* every vendored file is listed in ``static/vendor/MANIFEST.json`` with its npm package, version,
  licence file and sha256, and the sums match the bytes shipped;
* every ES module imports only other modules of the page, by relative path, and they exist;
* no ``http://`` or ``https://`` address appears in any static file outside comments (the SVG
  namespace name, which browsers never fetch, is the one allowed string);
* the wheel ships every static file (``[tool.setuptools.package-data]`` covers them).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "src" / "cnnlab" / "studio" / "static"
VENDOR = STATIC / "vendor"
MANIFEST = VENDOR / "MANIFEST.json"
MODULES = sorted(p for p in STATIC.rglob("*.js") if VENDOR not in p.parents)
TEXT_SUFFIXES = {".html", ".js", ".mjs", ".css", ".json", ".svg"}
# XML namespace names are identifiers, never requested (createElementNS needs the SVG one).
NAMESPACES = {"http://www.w3.org/2000/svg"}
URL = re.compile(r"https?://[^\s\"'`)<>]*")
# import x from "./a.js"; import "./a.js"; export {x} from "./a.js"; import("./a.js")
IMPORT = re.compile(
    r"""(?:^|[;\s])(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']"""
    r"""|(?:^|[;\s])import\s*["']([^"']+)["']"""
    r"""|\bimport\s*\(\s*["'`]([^"'`]+)["'`]\s*\)""",
    re.MULTILINE,
)
MANIFEST_KEYS = {"package", "version", "license_file", "sha256"}


def test_the_page_and_its_views_are_there() -> None:
    names = {p.name for p in STATIC.iterdir()}
    assert {"index.html", "app.js", "style.css", "api.js", "chart.js"} <= names
    assert {"runs.js", "run.js", "jobs.js", "inspect.js"} <= names  # one module per view
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    for ref in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert (STATIC / ref.removeprefix("/static/")).is_file(), ref


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_vendored_files_match_their_manifest() -> None:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(manifest, dict)
    shipped = {
        p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file() and p != MANIFEST
    }
    licences = {entry.get("license_file") for entry in manifest.values()}
    assert shipped - set(manifest) - licences == set(), "vendored files missing from MANIFEST.json"
    for name, entry in manifest.items():
        assert set(entry) == MANIFEST_KEYS, f"{name}: manifest keys {sorted(entry)}"
        assert re.fullmatch(r"\d+\.\d+\.\d+", entry["version"]), f"{name}: pin an exact version"
        assert (VENDOR / name).is_file(), f"{name} listed but not shipped"
        assert sha256(VENDOR / name) == entry["sha256"], f"{name}: sha256 differs from MANIFEST"
        licence = VENDOR / entry["license_file"]
        assert licence.is_file() and licence.stat().st_size > 100, f"{name}: licence missing"


def imports(source: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in IMPORT.finditer(code_only(source))]


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_modules_import_only_relative_modules_that_exist(module: Path) -> None:
    for spec in imports(module.read_text(encoding="utf-8")):
        assert spec.startswith(("./", "../")), (
            f"{module.name} imports {spec!r}: use a relative path"
        )
        target = (module.parent / spec).resolve()
        assert target.is_file() and STATIC in target.parents, f"{module.name}: {spec} not found"


def test_the_import_pattern_sees_every_form() -> None:
    source = (
        'import { a } from "./a.js";\nimport "./b.js";\nexport { c } from "../c.js";\n'
        'const m = () => import("./d.js");\n// import { e } from "https://cdn/e.js";\n'
        'import {\n  f,\n} from "f";\n'
    )
    assert imports(source) == ["./a.js", "./b.js", "../c.js", "./d.js", "f"]


def code_only(text: str) -> str:
    """JavaScript or CSS with its comments blanked (strings kept), lines kept in place.

    A small scanner, not a parser: it tracks quotes and comments, which is all the address check
    needs (a ``//`` inside a string such as ``"http://..."`` is not a comment).
    """
    out, i, n = [], 0, len(text)
    quote = None
    while i < n:
        c = text[i]
        if quote:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
            out.append(c)
        elif text.startswith("//", i) and (i == 0 or text[i - 1] != ":"):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            block = text[i : n if end < 0 else end + 2]
            out.append(re.sub(r"[^\n]", " ", block))
            i += len(block)
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def without_comments(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".html":
        return re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    return code_only(text) if path.suffix in {".js", ".mjs", ".css"} else text


def test_the_comment_scanner_keeps_strings_and_drops_comments() -> None:
    source = 'const a = "http://x/y"; // see https://example.org\n/* https://z */ b("//c")'
    kept = code_only(source)
    assert "http://x/y" in kept and "example.org" not in kept and "https://z" not in kept
    assert '"//c"' in kept and kept.count("\n") == 1


def test_no_address_outside_the_studio_in_any_static_file() -> None:
    files = [p for p in STATIC.rglob("*") if p.suffix in TEXT_SUFFIXES and p.parent != VENDOR]
    assert len(files) >= 8
    found = {
        f"{p.relative_to(STATIC)}: {url}"
        for p in files
        for url in URL.findall(without_comments(p))
        if url not in NAMESPACES
    }
    assert found == set()


def test_the_wheel_ships_every_static_file() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = data["tool"]["setuptools"].get("package-data", {}).get("cnnlab.studio", [])
    package = STATIC.parent
    missing = [
        p.relative_to(package).as_posix()
        for p in STATIC.rglob("*")
        if p.is_file()
        and not any(fnmatch.fnmatch(p.relative_to(package).as_posix(), pat) for pat in patterns)
    ]
    assert missing == [], 'add "cnnlab.studio" = ["static/*", "static/vendor/*"] to package-data'
