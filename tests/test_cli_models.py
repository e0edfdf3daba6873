"""`cnnlab models`: the zoo table, its JSON and its errors."""

from __future__ import annotations

import json

import pytest

import cnnlab
from cnnlab.cli import main


def test_json_lists_every_match_with_params_and_macs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "resnet1*", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == cnnlab.list_models("resnet1*")
    by_name = {r["name"]: r for r in rows}
    # REFERENCE.md, torchvision table: resnet18 11,689,512 params, 1.814 GMACs.
    assert by_name["resnet18"]["params"] == 11_689_512
    assert round(by_name["resnet18"]["macs"] / 1e9, 3) == 1.814
    assert by_name["resnet18"]["torchvision"] == "resnet18"


def test_text_table_states_its_conventions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "alexnet*"]) == 0
    out = capsys.readouterr().out
    assert "60,965,224" in out and "61,100,840" in out and "714.19 M" in out
    assert "biases included" in out and "multiply-adds" in out


def test_no_match_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "nonesuch*", "--no-macs"]) == 1
    assert "no model matches" in capsys.readouterr().out


def test_unknown_model_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnet-18"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "did you mean" in err
