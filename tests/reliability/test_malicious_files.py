"""Malicious files: pickle payloads disguised as cnnlab files are refused by every loader.

Each payload would write a marker file if it were ever unpickled; the harness first shows that
it does (unpickling it the unsafe way in a subprocess), then feeds it to ``load_trained`` and to
the CLI commands that load files (in this process, so the suite stays fast; the benchmark runs
them as subprocesses).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reliability import harness

pytestmark = [pytest.mark.needs_fashion_mnist, pytest.mark.slow]


def test_at_least_eight_payloads() -> None:
    assert len(harness.all_payloads()) >= 8


def test_every_payload_refused_by_load_trained_and_eval(work: Path) -> None:
    result = harness.malicious_trials(work, ("load_trained()", "eval"), in_process=True)
    bad = [d for d in result.details if not d["refused"]]
    assert not bad, json.dumps(bad, indent=1)
    assert not any(d["executed"] for d in result.details)
    assert all(d["live"] for d in result.details), "a payload did not run even when unpickled"
    assert all(d["message"].startswith("cnnlab: error:") for d in result.details)


def test_payloads_refused_by_resume_predict_and_export(work: Path) -> None:
    chosen = [
        "torch.save zip archive as model.safetensors",
        "pickle as checkpoint tensors, record with matching size and SHA-256",
        "checkpoint JSON naming a pickle outside the run directory",
        "pickle named model.onnx",
    ]
    result = harness.malicious_trials(
        work, ("train --resume", "predict", "export"), in_process=True, payloads=chosen
    )
    bad = [d for d in result.details if not d["refused"]]
    assert not bad, json.dumps(bad, indent=1)
    assert result.count == 12
