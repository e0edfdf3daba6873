"""The pictures' table, :data:`cnnlab.seeing.views.VIEWS`: each row's tests come from the row.

A row names functions by their names, so these tests check that each one exists and takes what
:func:`cnnlab.seeing.show.show` passes it, that its default layer exists in the zoo models, and
that the command's help and docs/seeing.md describe it. Drawing every row on six models and
through the command is ``tests/test_seeing_cli.py``.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab import seeing
from cnnlab.cli import build_parser
from cnnlab.errors import ConfigError
from cnnlab.registry import create_model
from cnnlab.seeing import figures, layers, methods
from cnnlab.seeing.views import VIEWS, WHAT, View, lookup

DOC = Path(__file__).resolve().parents[1] / "docs" / "seeing.md"
# Zoo models whose default layers every rule must find: a plain stack, LeNet-5's linear c5, a
# residual network, VGG, Inception's concatenations and DenseNet's functional top-level ReLU.
MODELS = {
    "fastnet": (1, 28, 28),
    "lenet5": (1, 28, 28),
    "resnet18": (3, 224, 224),
    "vgg11": (3, 32, 32),
    "googlenet": (3, 96, 96),
    "densenet121": (3, 64, 64),
}
WITH_LAYER = [v for v in VIEWS if v.default_layer is not None]


def test_names_are_unique_command_line_words() -> None:
    assert len(set(WHAT)) == len(WHAT)
    assert all(re.fullmatch(r"[a-z][a-z0-9_-]*", name) for name in WHAT)


def test_an_unknown_picture_is_a_one_line_error_listing_the_rows() -> None:
    with pytest.raises(ConfigError, match=r"unknown --what 'cam': pick one of filters, ") as err:
        lookup("cam")
    assert "\n" not in str(err.value) and all(name in str(err.value) for name in WHAT)
    with pytest.raises(ConfigError, match="unknown --what 'cam'"):
        seeing.show("unused.safetensors", what="cam")  # before anything is loaded


@pytest.mark.parametrize("view", VIEWS, ids=WHAT)
def test_row_names_functions_the_package_exports(view: View) -> None:
    assert view.figure_function() is getattr(figures, view.figure)
    assert view.method_functions() == tuple(getattr(methods, m) for m in view.methods)
    for module, names in ((methods, view.methods), (figures, (view.figure,))):
        for name in names:
            assert getattr(seeing, name) is getattr(module, name)
            assert name in seeing.__all__
    if view.default_layer is not None:
        assert view.default_layer_rule() is getattr(layers, view.default_layer)


@pytest.mark.parametrize("view", VIEWS, ids=WHAT)
def test_figure_takes_what_show_passes(view: View) -> None:
    """``figure(model, images, layer=..., **options)``: every keyword exists, and every
    parameter without a default is given."""
    params = inspect.signature(view.figure_function()).parameters
    names = list(params)
    given = {names[0], *view.options}  # the model, then the options
    if view.images != "none":
        given.add(names[1])  # the images, positionally
        assert names[1] in ("images", "image")
    if view.default_layer is not None:
        given.add("layer")
    assert set(view.options) <= set(params)
    assert ("layer" in params) == (view.default_layer is not None)
    required = {n for n, p in params.items() if p.default is inspect.Parameter.empty}
    assert required <= given
    assert view.labelled == ("labels" in required)


@pytest.mark.parametrize("view", VIEWS, ids=WHAT)
def test_row_says_how_many_test_images(view: View) -> None:
    if view.images == "some":
        assert view.limit is not None and 1 <= view.limit <= 16
    elif view.images == "none":
        assert view.limit is None and not view.labelled
    assert view.limit is None or view.limit >= 1
    assert not view.labelled or view.images == "dataset"


@pytest.mark.parametrize("view", WITH_LAYER, ids=[v.name for v in WITH_LAYER])
@pytest.mark.parametrize("model", list(MODELS))
def test_default_layer_exists_in_every_model(view: View, model: str) -> None:
    """The rule's layer is one ``--layer`` accepts (the analysis runs on the meta device, so
    this is cheap even for ResNet-18 at 224x224); a picture of no images draws a kernel."""
    with torch.device("meta"):
        net = create_model(model, in_channels=MODELS[model][0])
    size = MODELS[model]
    layer = layers.resolve(net, seeing.default_layer(net, size, view.name), size)
    if view.images == "none":
        assert isinstance(layer.module, torch.nn.Conv2d)


def test_a_picture_without_a_layer_has_no_default() -> None:
    without = [v for v in VIEWS if v.default_layer is None]
    for view in without:
        with pytest.raises(ConfigError, match="looks at no layer") as err:
            seeing.default_layer(create_model("fastnet"), (1, 28, 28), view.name)
        assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def show_help() -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        build_parser().parse_args(["show", "--help"])
    return out.getvalue()


@pytest.mark.parametrize("view", VIEWS, ids=WHAT)
def test_help_gives_each_picture_one_line(view: View, show_help: str) -> None:
    assert "\n" not in view.help and not view.help.endswith(".")
    line = next(ln for ln in show_help.splitlines() if ln.startswith(f"  {view.name} "))
    assert line.endswith(view.help) and len(line) <= 79
    if view.images != "none":  # --limit's default names it
        limit = "all" if view.limit is None else f"{view.limit:,}"
        text = " ".join(show_help.split())
        assert re.search(rf"\b{limit} for [a-z, ]*\b{view.name}\b", text)


@pytest.mark.parametrize("view", VIEWS, ids=WHAT)
def test_docs_have_a_section_naming_the_functions(view: View) -> None:
    """docs/seeing.md: a ``###`` section whose title carries ``--what NAME``, and that names
    the picture's functions."""
    sections = re.split(r"^### ", DOC.read_text(encoding="utf-8"), flags=re.M)[1:]
    mine = [s for s in sections if f"`--what {view.name}`" in s.splitlines()[0]]
    assert len(mine) == 1, f"docs/seeing.md needs one section titled with `--what {view.name}`"
    for name in (*view.methods, view.figure):
        assert f"`{name}`" in mine[0], name


def test_help_and_the_table_import_no_torch() -> None:
    code = (
        "import sys, contextlib, io\n"
        "import cnnlab.seeing\n"
        "from cnnlab.seeing import VIEWS, show\n"
        "from cnnlab.cli import build_parser\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    build_parser().parse_args(['show', '--help'])\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'numpy') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
