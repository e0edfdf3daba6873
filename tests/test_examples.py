"""The lecture tour example runs and prints the lectures' figures (checked against the slides)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_lecture_tour_prints_the_slides_figures(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLES / "lecture_tour.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "W=227 F=11 S=4 P=0: 55" in out  # seeds/000: (227 - 11) / 4 + 1 = 55
    assert "exact value 2.33" in out  # the slides' 7x7 input, 3x3 filter, stride 3
    assert "output volume 55x55x96, parameters 34,944" in out  # (11*11*3 + 1) * 96
    assert "110,592 weights = 27 C^2" in out and "200,704 weights = 49 C^2" in out
    assert "ResNet-50  v1  3.858 G" in out  # REFERENCE.md: the paper's 3.8
