"""The errata: every claim of the slides is recomputed, and no verdict may change silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.analysis import errata

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def verdicts() -> list[errata.Verdict]:
    return errata.check_all()


def test_no_verdict_changed(verdicts: list[errata.Verdict]) -> None:
    changed = [
        f"{v.claim.source}: {v.claim.claim!r} expected "
        f"{'holds' if v.claim.expect else 'fails'}, got {v.correct}"
        for v in verdicts
        if v.holds != v.claim.expect
    ]
    assert not changed, "\n".join(changed)


def test_every_failing_claim_says_why(verdicts: list[errata.Verdict]) -> None:
    assert all(v.claim.reason for v in verdicts if not v.holds)
    assert len(verdicts) >= 150
    assert sum(not v.holds for v in verdicts) >= 20


def test_docs_errata_is_up_to_date(verdicts: list[errata.Verdict]) -> None:
    path = ROOT / "docs" / "errata.md"
    assert path.read_text() == errata.render(verdicts), (
        "docs/errata.md is stale: run `python -m cnnlab.analysis.errata`"
    )


def test_known_slips(verdicts: list[errata.Verdict]) -> None:
    by_claim = {(v.claim.source, v.claim.claim): v for v in verdicts}
    table = errata.cite("{002}, AlexNet table")
    assert by_claim[(table, "conv4 flop (M)")].correct == 149_520_384
    assert not by_claim[(table, "conv4 flop (M)")].holds
    fc = by_claim[(table, "FC params = 9216*4096 + 4096 = 37,725,832")]
    assert (fc.correct, fc.holds) == (37_752_832, False)
    conv1 = by_claim[(table, "conv1 flop (64*56*56)*(3*11*11) = 72,855,552")]
    assert (conv1.correct, conv1.holds) == (72_855_552, True)


@pytest.mark.parametrize(
    ("value", "scale", "got", "ok"),
    [
        ("800", 1e3, 802_816, True),  # trailing zeros are not significant
        ("150", 1e3, 150_528, True),
        ("145", 1e6, 149_520_384, False),
        ("182.25", 1024, 186_624, True),
        ("3.6", 1e9, 3.664e9, False),  # 3.66 rounds to 3.7
        ("0", 1e6, 419_904, True),  # the slide's 0 MFLOP for a pooling layer
        ("55x55x96", 1, "55x55x96", True),
    ],
)
def test_rounding_rule(value: str, scale: float, got: float | str, ok: bool) -> None:
    unused = errata.Quantity("product", {"factors": [1]})
    claim = errata.Claim("src", "c", value, unused, "how", ok, scale=scale)
    assert errata.holds(claim, got) is ok


def test_check_mode(tmp_path: Path) -> None:
    out = tmp_path / "errata.md"
    assert errata.main(["-o", str(out), "--check"]) == 1  # missing file
    assert errata.main(["-o", str(out)]) == 0
    assert errata.main(["-o", str(out), "--check"]) == 0
