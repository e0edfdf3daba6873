"""Figures go through matplotlib's object API: importing cnnlab or drawing never touches the
caller's backend, every figure function returns its Figure, and write errors are one ConfigError."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cnnlab
from cnnlab import plotting
from cnnlab.errors import ConfigError

PACKAGE = Path(cnnlab.__file__).parent
PNG = b"\x89PNG\r\n\x1a\n"


def test_no_matplotlib_use_or_pyplot_in_the_package() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        assert "matplotlib.use" not in text, f"{path.relative_to(PACKAGE)} switches the backend"
        for node in ast.walk(ast.parse(text)):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            assert "matplotlib.pyplot" not in names, f"{path.relative_to(PACKAGE)} uses pyplot"


# Run in a fresh interpreter, so that the backend it starts with is the one we set.
_DRAW_EVERYTHING = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    from pathlib import Path

    import cnnlab
    for m in pkgutil.walk_packages(cnnlab.__path__, "cnnlab."):
        if m.name != "cnnlab.__main__":  # that one runs the command line
            importlib.import_module(m.name)

    import numpy as np
    from matplotlib.figure import Figure
    from cnnlab.analysis import analyze
    from cnnlab.analysis.plots import Point, plot_comparison, plot_layers
    from cnnlab.scratch.plots import filter_grid
    from cnnlab.run.figures import plot_confusion, plot_curves

    out = Path(sys.argv[1])
    history = [
        {"epoch": e, "lr": 0.1 / e, "train_loss": 1 / e, "val_loss": 1.1 / e,
         "train_acc": 1 - 1 / (e + 1), "val_acc": 1 - 1.2 / (e + 1)}
        for e in (1, 2, 3)
    ]
    points = [Point("a", 10**6, 10**9, 70.0), Point("b", 10**7, 10**8, None)]
    image = (np.arange(24 * 32).reshape(24, 32) % 256).astype(np.uint8)
    figures = [
        plot_layers(analyze("lenet5"), out / "layers.png"),
        plot_layers(analyze("lenet5")),
        plot_comparison(points, out / "compare.png"),
        filter_grid(image, out / "grid.png"),
        *plot_curves(history, out / "run", "title"),
        plot_confusion([[3, 1], [0, 4]], ["x", "y"], out / "run" / "confusion.png", "title"),
        plot_confusion([[3, 1], [0, 4]], ["x", "y"]),
    ]
    assert all(isinstance(f, Figure) for f in figures), figures
    import matplotlib
    print(matplotlib.rcParams["backend"], "matplotlib.pyplot" in sys.modules)
    """
)


@pytest.mark.slow
def test_importing_and_drawing_leave_the_backend_alone(tmp_path: Path) -> None:
    env = {**os.environ, "MPLBACKEND": "svg"}
    done = subprocess.run(
        [sys.executable, "-c", _DRAW_EVERYTHING, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg", "False"]  # the backend we chose; pyplot never loaded
    written = ["layers.png", "compare.png", "grid.png", "run/loss.png", "run/accuracy.png"]
    for name in [*written, "run/confusion.png"]:
        assert (tmp_path / name).read_bytes()[:8] == PNG, name
    assert not list(tmp_path.rglob("*.tmp"))  # written atomically, nothing left behind


def test_save_creates_folders_and_names_the_fix(tmp_path: Path) -> None:
    fig = plotting.figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [1, 0])
    path = plotting.save(fig, tmp_path / "a" / "b" / "line.svg", dpi=50)
    assert path.read_text().lstrip().startswith("<?xml")
    # like Figure.savefig, no suffix means matplotlib's default format, with its extension
    assert plotting.save(fig, tmp_path / "plain", dpi=50) == tmp_path / "plain.png"
    assert (tmp_path / "plain.png").read_bytes()[:8] == PNG
    with pytest.raises(ConfigError, match=r"cannot write the figure to .*x\.notaformat.*\.png"):
        plotting.save(fig, tmp_path / "x.notaformat", dpi=50)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="writable path"):
        plotting.save(fig, blocker / "sub" / "y.png", dpi=50)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "file", "plain.png"]


def test_missing_matplotlib_is_one_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    with pytest.raises(ConfigError, match="pip install matplotlib"):
        plotting.figure()
