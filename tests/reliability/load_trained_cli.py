"""``cnnlab.run.load_trained(PATH)`` in a fresh process, with the CLI's error contract; a script.

Usage::

    python tests/reliability/load_trained_cli.py PATH

Exit status 0 when the model loads; 2 with one ``cnnlab: error:`` line when it is refused.
"""

from __future__ import annotations

import sys

from cnnlab.errors import CnnlabError
from cnnlab.run.load import load_trained


def main(path: str) -> int:
    try:
        load_trained(path)
    except CnnlabError as err:
        print(f"cnnlab: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
