"""See inside a trained network: filters, feature maps, Grad-CAM and the other pictures.

The lectures show what a network computes -- first-layer filters, feature maps, Zeiler &
Fergus's occlusion maps and top-9 patches, "each unit of layer 3 sees a 5x5 grid of layer 1" --
and this package draws each of those pictures for any zoo model, trained by ``cnnlab train`` or
given as an ``nn.Module``::

    import cnnlab
    from cnnlab import seeing

    predictor = cnnlab.load("runs/demo")
    cam = seeing.gradcam(predictor, ["shoe.png"])          # (1, h, w) at the default layer
    seeing.plot_gradcam(predictor, ["shoe.png"], path="cam.png")

The pictures are the rows of one table, :data:`cnnlab.seeing.views.VIEWS`: each names its
tensors' function in :mod:`cnnlab.seeing.methods`, its figure's (a matplotlib ``Figure``,
drawn through :mod:`cnnlab.plotting`) in :mod:`cnnlab.seeing.figures`, and its default-layer
rule in :mod:`cnnlab.seeing.layers`; ``cnnlab show`` calls :func:`cnnlab.seeing.show.show`,
which draws any row. Layers are named as the analyzer names its rows;
:func:`~cnnlab.seeing.layers.default_layer` gives a picture's default one.

This package exports every row's functions, read from the table; they load on first use, so
``import cnnlab.seeing`` (and ``cnnlab show --help``) imports no PyTorch.
"""

from __future__ import annotations

from cnnlab.lazy import lazy_exports
from cnnlab.seeing.show import show  # imports PyTorch on first call only
from cnnlab.seeing.views import VIEWS, WHAT, View

_METHODS = "cnnlab.seeing.methods"
_FIGURES = "cnnlab.seeing.figures"
_LAYERS = "cnnlab.seeing.layers"
_FAITH = "cnnlab.seeing.faithfulness"

# Public name -> the module that defines it: every row's functions, read from the table.
_EXPORTS = {
    **{name: _METHODS for view in VIEWS for name in view.methods},
    **{view.figure: _FIGURES for view in VIEWS},
    "Box": _METHODS,  # what rf's, patches' and errors' methods return
    "TopPatches": _METHODS,
    "Mistakes": _METHODS,
    "default_layer": _LAYERS,
    "explain": _FAITH,  # a map with its deletion, insertion and class sensitivity
    "Explanation": _FAITH,
    "Faithfulness": _FAITH,
    "layer_names": _LAYERS,
}

__all__ = ["VIEWS", "WHAT", "View", "show", *sorted(_EXPORTS)]

# The submodules too, so that `seeing.methods` works after a bare `import cnnlab.seeing`.
__getattr__ = lazy_exports(
    __name__,
    {
        **_EXPORTS,
        "faithfulness": _FAITH,
        "figures": _FIGURES,
        "layers": _LAYERS,
        "methods": _METHODS,
    },
)
