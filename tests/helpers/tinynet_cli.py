"""The ``cnnlab`` command with ``tinynet`` registered: ``python -m helpers.tinynet_cli ARGS``.

Start it with :func:`helpers.subprocess_env` so that ``helpers`` is importable.
"""

from __future__ import annotations

import sys

import helpers.models  # noqa: F401  (registers tinynet)
from cnnlab.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
