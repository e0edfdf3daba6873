"""``cnnlab train`` with one fault injected through the trainer's callbacks; a script.

Usage::

    CNNLAB_FAULT=SPEC CNNLAB_LOSSES=FILE python tests/reliability/fault_runner.py TRAIN-FLAGS...

``TRAIN-FLAGS`` are the flags of ``cnnlab train`` (parsed by :func:`cnnlab.cli.train.parse`); the
run is :func:`cnnlab.train.fit` with a :class:`FaultInjector`, and errors end the process as the
command does (one ``cnnlab: error:`` line, exit status 2). ``SPEC`` (empty: no fault) is one of

* ``forward:K`` -- SIGKILL inside the forward pass of step K (0-based), in the model's third
  leaf module;
* ``backward:K`` -- SIGKILL inside the backward pass of step K, in a parameter's gradient hook;
* ``save:N:PHASE`` -- SIGKILL when the N-th checkpoint save of this process reaches ``PHASE``,
  one of :data:`SAVE_PHASES` (see :func:`cnnlab.train.checkpoint.save_checkpoint`);
* ``fill:K:DIR`` -- fill the file system holding ``DIR`` to the last byte before step K;
* ``nan:K`` -- NaN logits from the forward pass of step K (1-based, as cnnlab's error counts).

With ``CNNLAB_LOSSES`` set, every step's loss is appended to that file as
``"<0-based step> <float.hex()>"``, one write per line, so a SIGKILL loses nothing logged.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import IO, Any

import torch

from cnnlab.train import Callback

FAULT_ENV, LOSSES_ENV = "CNNLAB_FAULT", "CNNLAB_LOSSES"
# What a checkpoint write has done when the trainer reports each phase.
SAVE_PHASES = ("tensors-written", "record-written", "committed", "pruned-tensors")


def die() -> None:
    """End this process the way a crash or the OOM killer does: no clean-up of any kind."""
    os.kill(os.getpid(), signal.SIGKILL)


def fill(directory: Path) -> None:
    """Fill the file system holding ``directory`` to the last byte (real ENOSPC afterwards)."""
    with open(directory / "filler", "wb", buffering=0) as f:
        block = b"\0" * 65536
        while True:
            try:
                f.write(block)
            except OSError:
                break
        while True:
            try:
                f.write(b"\0")
            except OSError:
                break


class FaultInjector(Callback):
    """Injects the fault ``spec`` (see the module docstring) and logs each step's loss."""

    def __init__(self, spec: str, losses: str | os.PathLike | None = None) -> None:
        self.kind, *self.args = spec.split(":") if spec else ("",)
        self.running: int | None = None  # 0-based index of the step in progress
        self.saves = 0  # checkpoint saves begun by this process
        # Open for the whole run (which may end by SIGKILL); line-buffered, one write per line.
        self.losses: IO[str] | None = (
            open(losses, "a", buffering=1) if losses else None  # noqa: SIM115
        )

    def on_train_start(self, trainer: Any) -> None:
        model = trainer.model
        if self.kind == "forward":
            leaves = [m for m in model.modules() if not any(m.children())]
            leaves[2].register_forward_pre_hook(self._kill_in_forward)
        elif self.kind == "backward":
            params = [p for p in model.parameters() if p.requires_grad]
            params[len(params) // 2].register_hook(self._kill_in_backward)
        elif self.kind == "nan":
            model.register_forward_hook(self._nan_logits)

    def on_step_start(self, trainer: Any) -> None:
        self.running = trainer.progress.step
        if self.kind == "fill" and self.running == int(self.args[0]):
            fill(Path(self.args[1]))

    def on_step_end(self, trainer: Any, result: Any) -> None:
        if self.losses is not None:
            self.losses.write(f"{self.running} {result.loss.hex()}\n")
        self.running = None

    def on_checkpoint_phase(self, trainer: Any, phase: str, path: Path) -> None:
        if phase == SAVE_PHASES[0]:
            self.saves += 1
        if self.kind == "save" and self.saves == int(self.args[0]) and phase == self.args[1]:
            die()

    def _kill_in_forward(self, module: torch.nn.Module, inputs: Any) -> None:
        if module.training and self.running == int(self.args[0]):
            die()

    def _kill_in_backward(self, grad: torch.Tensor) -> torch.Tensor:
        if self.running == int(self.args[0]):
            die()
        return grad

    def _nan_logits(self, module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> Any:
        if module.training and self.running == int(self.args[0]) - 1:
            return output * float("nan")
        return None


def main(argv: list[str]) -> int:
    from cnnlab.cli.train import parse
    from cnnlab.errors import CnnlabError
    from cnnlab.train import fit

    injector = FaultInjector(os.environ.get(FAULT_ENV, ""), os.environ.get(LOSSES_ENV) or None)
    try:
        config, given = parse(argv)
        fit(config, given=given, callbacks=[injector])
    except CnnlabError as err:
        print(f"cnnlab: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
