"""The errata: every claim of the slides is recomputed, and no verdict may change silently."""

from __future__ import annotations

import tomllib
from importlib import resources
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


# -- the data file --------------------------------------------------------------------------


def _kinds(q: errata.Quantity) -> list[str]:
    nested = [v for v in q.params.values() if isinstance(v, errata.Quantity)]
    return [q.kind, *(k for n in nested for k in _kinds(n))]


def test_every_claim_has_a_known_kind_and_every_kind_is_used() -> None:
    used = {k for c in errata.claims() for k in _kinds(c.quantity)}
    assert used == set(errata.KINDS)


def test_claims_file_is_package_data() -> None:
    """Read through importlib (as from a wheel), and listed in pyproject so wheels ship it."""
    assert resources.files("cnnlab.analysis").joinpath(errata.DATA).is_file()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert errata.DATA in pyproject["tool"]["setuptools"]["package-data"]["cnnlab.analysis"]


HEAD = """
[decks]
"001" = "deck one"

[[section]]
source = "{001} slide 1"

[[section.claim]]
claim = "the example"
value = "5"
expect = true
how = "by hand"
"""
ONE = HEAD + 'kind = "output_size"\nsize = 7\nkernel = 3\nstride = 1\n'
TOY = HEAD + (
    'kind = "total"\nof = "params"\ninput = [3, 32, 32]\n'
    'toy = [{ layer = "Conv2d", args = [3, 6, 5] }]\n'
)


def test_a_claim_is_a_row() -> None:
    (one,) = errata.parse(ONE).claims
    assert (one.source, one.value, one.scale, one.reason) == ("deck one slide 1", "5", 1, "")
    assert errata.recompute(one) == "5"
    (toy,) = errata.parse(
        TOY.replace("[[section.claim]]", "[[section.claim]]\nsource = '{001}'")
    ).claims
    assert toy.source == "deck one"  # a claim's own field overrides its section's
    assert errata.recompute(toy) == 6 * 3 * 5 * 5 + 6


@pytest.mark.parametrize(
    ("text", "old", "new", "message"),
    [
        (
            ONE,
            '"output_size"',
            '"output_sise"',
            "claim 1 ('the example'): unknown kind 'output_sise' (did you mean 'output_size'?)",
        ),
        (ONE, 'value = "5"\n', "", "missing value"),
        (ONE, 'value = "5"', "value = 5", 'value = "5"'),
        (ONE, "expect = true", 'expect = "yes"', "expect is true"),
        (ONE, 'value = "5"', 'value = "5"\nscale = "k"', "unknown scale 'k'"),
        (ONE, "{001}", "{009}", "unknown deck {009}"),
        (ONE, "stride = 1", "strides = 1", "takes size, kernel, stride, padding"),
        (ONE, "size = 7", 'size = 7\nmodel = "vgg16"', "analyses no network"),
        (ONE, "size = 7", "size = [7", "not valid TOML"),
        (ONE, "[[section.claim]]", "[[claim]]", "unknown top-level"),
        (TOY, "toy =", 'model = "lenet5"\ntoy =', "model = a zoo name, or toy"),
        (TOY, "Conv2d", "Conv3d", "layer one of Conv2d, Linear, Flatten"),
        (TOY, "input = [3, 32, 32]", "", "needs input"),
        (TOY, "input =", 'count = "macs"\ninput =', "count is one of"),
        (TOY, 'of = "params"', 'off = "params"', "takes of, per and a network"),
    ],
)
def test_a_malformed_claim_is_refused(text: str, old: str, new: str, message: str) -> None:
    assert old in text
    with pytest.raises(errata.ClaimError) as err:
        errata.parse(text.replace(old, new))
    assert message in str(err.value)


def test_a_failed_recomputation_names_the_claim() -> None:
    (claim,) = errata.parse(TOY.replace('of = "params"', 'of = "colour"')).claims
    with pytest.raises(errata.ClaimError, match="unknown total 'colour'") as err:
        errata.recompute(claim)
    assert "deck one slide 1: 'the example'" in str(err.value)
