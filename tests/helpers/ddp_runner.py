"""``cnnlab train`` for ``tests/test_ddp.py``, recording what each rank writes in the run directory.

Usage (under ``torchrun``, or plainly for a single-process reference)::

    python tests/helpers/ddp_runner.py TRAIN-FLAGS...

Every file-system change Python makes under ``$CNNLAB_TEST_WATCH`` (open for writing,
rename/replace, mkdir, remove) is recorded by an audit hook and written as JSON to
``$CNNLAB_TEST_LOG.<rank>`` (``.single`` outside torchrun) when the run ends. safetensors writes
its temporary file from Rust, but cnnlab commits every file with ``os.replace``, which is audited.

With ``$CNNLAB_TEST_SLOW_RANK1`` set to a number of seconds, rank 1 waits that long at the
start of set-up (:meth:`Callback.on_setup`), so rank 0 reaches the run directory long before it.
Errors end the process the way the ``cnnlab`` command does: one line, exit status 2.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from cnnlab.cli.train import parse
from cnnlab.errors import CnnlabError
from cnnlab.train import Callback, fit


class WriteAudit:
    """Records file-system changes under one directory (a ``sys.addaudithook`` hook)."""

    def __init__(self, directory: str) -> None:
        self.watch = os.path.realpath(directory)
        self.log: list[list[str]] = []

    def inside(self, path: Any) -> bool:
        try:
            path = os.path.realpath(os.fsdecode(path))
        except Exception:
            return False
        return path == self.watch or path.startswith(self.watch + os.sep)

    def __call__(self, event: str, args: tuple) -> None:
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            mode = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            writing = any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR)
            if writing and self.inside(args[0]):
                self.log.append([event, os.fsdecode(args[0])])
        elif event == "os.rename" and self.inside(args[1]):  # os.replace raises "os.rename" too
            self.log.append([event, os.fsdecode(args[1])])
        elif event in ("os.mkdir", "os.remove", "os.rmdir") and self.inside(args[0]):
            self.log.append([event, os.fsdecode(args[0])])


class SlowRank1(Callback):
    """Rank 1 sleeps at the start of set-up, before it judges the run directory."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_setup(self, trainer: Any) -> None:
        if os.environ.get("RANK") == "1":  # set by torchrun
            time.sleep(self.seconds)


def main(argv: list[str]) -> int:
    audit = WriteAudit(os.environ["CNNLAB_TEST_WATCH"])
    sys.addaudithook(audit)
    slow = float(os.environ.get("CNNLAB_TEST_SLOW_RANK1", "0"))
    try:
        config, given = parse(argv)
        fit(config, given=given, callbacks=[SlowRank1(slow)] if slow else [])
        return 0
    except CnnlabError as err:
        print(f"cnnlab: error: {err}", file=sys.stderr)
        return 2
    finally:
        rank = os.environ.get("RANK", "single")
        with open(f"{os.environ['CNNLAB_TEST_LOG']}.{rank}", "w") as f:
            json.dump(audit.log, f)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
