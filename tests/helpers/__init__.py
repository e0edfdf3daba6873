"""Shared test code: a tiny registered model, run arguments, payload files, subprocess runners.

Test modules import from here, never from each other. ``tests/conftest.py`` puts the ``tests``
directory on ``sys.path``; a subprocess that needs these modules gets the same path through
:func:`subprocess_env` (and is started as ``python -m helpers.<runner>``).
"""

from __future__ import annotations

import os
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1]
ROOT = TESTS_DIR.parent

# torchrun's variables: a test run inside a launcher must not make its subprocesses join it.
DIST_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child: ``tests/`` on ``PYTHONPATH``, fixed hash seed, ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in DIST_VARIABLES}
    path = [str(TESTS_DIR), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return env | {"PYTHONPATH": os.pathsep.join(path), "PYTHONHASHSEED": "0", **extra}
