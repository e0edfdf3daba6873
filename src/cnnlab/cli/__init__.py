"""The ``cnnlab`` command-line tool.

Each subcommand lives in its own small module of this package and exposes
``add_parser(subparsers)``, which registers its flags and sets ``run`` to a function
``run(args) -> int``. The modules only parse, call the library and print; a
:class:`~cnnlab.errors.CnnlabError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cnnlab import __version__
from cnnlab.errors import CnnlabError
from cnnlab.formats import printable

# Subcommands in the order `cnnlab --help` lists them (lecture order: mechanics, zoo, analysis,
# data, training and use).
ERROR_CHARS = 2000  # an error message is one line; past this, a file's text is cut
COMMANDS = (
    "models",
    "filter",
    "summary",
    "compare",
    "data",
    "train",
    "eval",
    "predict",
    "export",
    "weights",
    "show",
    "report",
    "runs",
    "experiment",
    "studio",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="Convolutional networks from the convolution up: from-scratch mechanics, "
        "the classic architecture zoo, a per-layer analyzer, training and export.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"cnnlab.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except CnnlabError as err:
        # Messages quote names read from files: escaped, so a crafted one cannot add a line
        print(f"cnnlab: error: {printable(str(err), ERROR_CHARS)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `cnnlab models | head`
        return 0
    except OSError as err:  # the file system refused (a directory in the way, a full disk)
        path = err.filename2 or err.filename  # a rename's target, else the file
        where = f"{path}: " if path else ""
        reason = (err.strerror or str(err)).lower()
        message = f"{where}{reason}: check the path, its permissions and free space"
        print(f"cnnlab: error: {printable(message, ERROR_CHARS)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130
