"""Crashes: SIGKILL mid-forward / mid-backward / mid-save and during checkpoint writes, a full
disk, and a NaN loss. Small counts of the trials in ``harness.py`` (``benchmarks/reliability.py``
runs 20 kill/resume trials and 50 write kills for the table in ``docs/shipping.md``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reliability import harness

pytestmark = [pytest.mark.needs_fashion_mnist, pytest.mark.slow]


def _explain(result) -> str:
    bad = [d for d in result.details if d.get("problems")]
    return f"{result.outcome}\n" + json.dumps(bad, indent=1, default=str)[:4000]


def test_kill_mid_forward_backward_save_then_resume_is_bitwise_exact(work: Path) -> None:
    result = harness.kill_resume_trials(work, 3, seed=1)  # one forward, one backward, one save
    assert [d["fault"].split(":")[0] for d in result.details] == ["forward", "backward", "save"]
    assert all(d["killed"] for d in result.details), _explain(result)
    assert result.ok, _explain(result)


def test_sigkill_during_checkpoint_writes_never_loads_a_partial_file(work: Path) -> None:
    result = harness.write_kill_trials(work, 4, seed=2)
    assert result.ok, _explain(result)
    assert all(d["loaded"] and d["loaded"] >= d["committed"] for d in result.details)


@pytest.fixture(scope="module")
def full_disk(work: Path):
    """One full-disk trial (ENOSPC at the save after step 4), shared by the tests below."""
    return harness.full_disk_trials(work, steps=(4,))


def test_full_disk_keeps_the_previous_checkpoint_and_resumes_exactly(full_disk) -> None:
    result = full_disk
    if result.count == 0:
        pytest.skip(result.outcome)
    assert result.ok, _explain(result)
    row = result.details[0]
    assert row["survivor"] == "step-00000003.json"  # the save at step 6 hit ENOSPC


def test_nan_at_step_k_stops_there_and_keeps_the_last_good_checkpoint(work: Path) -> None:
    result = harness.nan_trials(work, steps=(8,))
    assert result.ok, _explain(result)
    assert "at step 8 " in result.details[0]["message"]


def test_full_disk_is_a_one_line_error(full_disk) -> None:
    result = full_disk
    if result.count == 0:
        pytest.skip(result.outcome)
    row = result.details[0]
    assert row["one_line_error"] and row["exit"] == 2, row["message"]
