"""``python -m cnnlab.dev generate [--check]``: rewrite, or check, every generated file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnnlab.dev import generate
from cnnlab.registry import GENERATE


def main(argv: list[str] | None = None) -> int:
    """Parse, generate and print; returns the exit status (1: ``--check`` found stale files)."""
    parser = argparse.ArgumentParser(
        prog="python -m cnnlab.dev", description="Tools for working on cnnlab from its source."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    g = sub.add_parser(
        "generate",
        help="rewrite every generated file: " + ", ".join(p.name for p in generate.GENERATED),
        description="Rewrite the generated files that differ from what their generators "
        "produce now (see cnnlab/dev/generate.py for the table).",
    )
    g.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 naming the stale files"
    )
    args = parser.parse_args(argv)
    if not (generate.ROOT / "pyproject.toml").is_file():
        parser.error(
            f"{generate.ROOT} is not a cnnlab checkout: run this from a clone installed with "
            "`pip install -e .`"
        )
    texts = generate.compute()
    if args.check:
        out_of_date = generate.stale(texts)
        for path in out_of_date:
            print(
                f"{_shown(path)} is out of date: run `{GENERATE}` (or `make generate`)",
                file=sys.stderr,
            )
        return 1 if out_of_date else 0
    written = generate.write(texts)
    for path in texts:
        print(f"{'wrote' if path in written else 'unchanged'} {_shown(path)}")
    return 0


def _shown(path: Path) -> str:
    """``path`` relative to the checkout, as the Makefile and the docs name it."""
    return path.relative_to(generate.ROOT).as_posix()


if __name__ == "__main__":
    sys.exit(main())
