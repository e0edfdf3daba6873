"""The pictures ``cnnlab show --what`` draws: one table, :data:`VIEWS`, one :class:`View` a row.

A row names the function that computes its picture (:mod:`cnnlab.seeing.methods`), the one
that draws it (:mod:`cnnlab.seeing.figures`), the rule that picks its default layer
(:mod:`cnnlab.seeing.layers`), the images it needs and its line of help. Everything that lists
the pictures reads this table: ``--what``'s choices and help (:mod:`cnnlab.cli.show`), the
dispatch of :func:`cnnlab.seeing.show.show`, :func:`cnnlab.seeing.layers.default_layer`, the
package's exports (:mod:`cnnlab.seeing`) and the tests every row gets
(``tests/test_seeing_views.py``, ``tests/test_seeing_cli.py``).

Functions are named, not imported: this module imports nothing heavy, so ``cnnlab show --help``
reads the table without PyTorch or matplotlib, and a row's functions load on first use.

A new picture is its method in ``methods.py``, its figure in ``figures.py``, one row here and
its section in ``docs/seeing.md`` (plus a rule in ``layers.py`` if no existing one fits).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cnnlab.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cnnlab.analysis.report import Report

# What a picture draws from: the weights alone ("none"), a few images each shown in full
# ("some"), or many images summarised in one figure ("dataset").
Images = Literal["none", "some", "dataset"]


@dataclass(frozen=True)
class View:
    """One picture of ``cnnlab show``.

    :func:`cnnlab.seeing.show.show` draws it as ``figure(model, images, layer=layer, **options)``:
    no images when ``images`` is ``"none"``, no layer when ``default_layer`` is None, and an
    option only when its value is not None (so the figure's own default applies).

    Attributes:
        name: its ``--what`` word.
        help: one line for ``cnnlab show --help``.
        methods: the functions of :mod:`cnnlab.seeing.methods` that compute it.
        figure: the function of :mod:`cnnlab.seeing.figures` that draws it.
        images: what it draws from (see :data:`Images`).
        default_layer: the function of :mod:`cnnlab.seeing.layers` that picks the layer it looks
            at when none is given (``report -> name``); None for a picture of the input or the
            logits, which takes no layer.
        limit: test images it uses when no image file and no ``--limit`` is given; None: all.
        labelled: it needs the true labels, so the run's test images rather than image files.
        options: the figure's other keywords that ``show`` fills from its arguments of the same
            name: ``target`` (a class index), ``labels`` (the test images' labels), ``unit``,
            ``window``, ``stride``, ``samples``, ``method``.
        explains: the explanations of :data:`cnnlab.seeing.faithfulness.MAPS` it draws, each
            measured (deletion, insertion, class sensitivity): ``show`` computes them once,
            hands them to the figure as ``explained`` and writes them as JSON beside it.
    """

    name: str
    help: str
    methods: tuple[str, ...]
    figure: str
    images: Images
    default_layer: str | None = None
    limit: int | None = None
    labelled: bool = False
    options: tuple[str, ...] = ()
    explains: tuple[str, ...] = ()

    def figure_function(self) -> Callable[..., Figure]:
        """The drawing function (imports PyTorch and matplotlib)."""
        return _function("figures", self.figure)

    def method_functions(self) -> tuple[Callable[..., Any], ...]:
        """The computing functions (imports PyTorch)."""
        return tuple(_function("methods", m) for m in self.methods)

    def default_layer_rule(self) -> Callable[[Report], str]:
        """The rule that names the default layer, given the analyzer's report of the model.

        Raises:
            ConfigError: the picture looks at no layer.
        """
        if self.default_layer is None:
            layered = ", ".join(v.name for v in VIEWS if v.default_layer is not None)
            raise ConfigError(
                f"{self.name!r} looks at no layer, so it has no default one: pick one of {layered}"
            )
        return _function("layers", self.default_layer)


def _function(module: str, name: str) -> Callable[..., Any]:
    return getattr(importlib.import_module(f"cnnlab.seeing.{module}"), name)


# In lecture order: weights, one image's activations, attributions, fields, the dataset.
VIEWS: tuple[View, ...] = (
    View(
        name="filters",
        help="a convolution's kernels (the first one's as small images)",
        methods=("filters",),
        figure="plot_filters",
        images="none",
        default_layer="first_conv",
    ),
    View(
        name="maps",
        help="one image's most active channels at a layer",
        methods=("feature_maps",),
        figure="plot_feature_maps",
        images="some",
        default_layer="first_block",
        limit=1,
    ),
    View(
        name="saliency",
        help="the class score's gradient per pixel, plain and SmoothGrad",
        methods=("saliency", "smoothgrad"),
        figure="plot_saliency",
        images="some",
        limit=4,
        options=("target", "samples"),
        explains=("saliency", "smoothgrad"),
    ),
    View(
        name="gradcam",
        help="Grad-CAM: where a layer's maps hold evidence for the class",
        methods=("gradcam",),
        figure="plot_gradcam",
        images="some",
        default_layer="measured_gradcam",
        limit=4,
        options=("target",),
        explains=("gradcam",),
    ),
    View(
        name="occlusion",
        help="how much the class loses as a grey square hides each part",
        methods=("occlusion",),
        figure="plot_occlusion",
        images="some",
        limit=4,
        options=("window", "stride", "target"),
        explains=("occlusion",),
    ),
    View(
        name="rf",
        help="a unit's theoretical and effective receptive field",
        methods=("receptive_box", "effective_rf"),
        figure="plot_receptive_field",
        images="some",
        default_layer="deepest_half_field",
        limit=1,
        options=("unit", "samples"),
    ),
    View(
        name="patches",
        help="the dataset patches that most activate each channel",
        methods=("top_patches",),
        figure="plot_top_patches",
        images="dataset",
        default_layer="deepest_half_field",
        limit=2000,
    ),
    View(
        name="errors",
        help="the most confident mistakes and the confusion matrix",
        methods=("mistakes",),
        figure="plot_mistakes",
        images="dataset",
        limit=None,  # all of them: a confusion matrix of the whole test split
        labelled=True,
        options=("labels",),
    ),
    View(
        name="embeddings",
        help="the penultimate features in 2-D (PCA or t-SNE)",
        methods=("embeddings", "project"),
        figure="plot_embeddings",
        images="dataset",
        default_layer="penultimate",
        limit=2000,
        options=("labels", "method"),
    ),
)

# The --what words, in the table's order.
WHAT: tuple[str, ...] = tuple(v.name for v in VIEWS)


def lookup(name: str) -> View:
    """The row called ``name``.

    Raises:
        ConfigError: no such picture; the one-line message lists them.
    """
    for view in VIEWS:
        if view.name == name:
            return view
    raise ConfigError(f"unknown --what {name!r}: pick one of {', '.join(WHAT)}")
