"""See inside a trained network: filters, maps, saliency, Grad-CAM, occlusion, fields, patches.

The lectures show what a network computes -- first-layer filters, feature maps, Zeiler &
Fergus's occlusion maps and top-9 patches, "each unit of layer 3 sees a 5x5 grid of layer 1" --
and this package draws each of those pictures for any zoo model, trained by ``cnnlab train`` or
given as an ``nn.Module``::

    import cnnlab
    from cnnlab import seeing

    predictor = cnnlab.load("runs/demo")
    cam = seeing.gradcam(predictor, ["shoe.png"])          # (1, h, w) at the default layer
    seeing.plot_gradcam(predictor, ["shoe.png"], path="cam.png")

Tensors come from :mod:`cnnlab.seeing.methods`, figures (matplotlib ``Figure`` s, drawn through
:mod:`cnnlab.plotting`) from :mod:`cnnlab.seeing.figures`, and ``cnnlab show`` calls
:func:`cnnlab.seeing.show.show`. Layers are named as the analyzer names its rows
(:mod:`cnnlab.seeing.layers`); each method has a default layer, listed in
:func:`cnnlab.seeing.layers.default_row`.
"""

from __future__ import annotations

from cnnlab.seeing.figures import (
    plot_embeddings,
    plot_feature_maps,
    plot_filters,
    plot_gradcam,
    plot_mistakes,
    plot_occlusion,
    plot_receptive_field,
    plot_saliency,
    plot_top_patches,
)
from cnnlab.seeing.layers import default_layer, layer_names
from cnnlab.seeing.methods import (
    Box,
    Mistakes,
    TopPatches,
    effective_rf,
    embeddings,
    feature_maps,
    filters,
    gradcam,
    mistakes,
    occlusion,
    project,
    receptive_box,
    saliency,
    smoothgrad,
    top_patches,
)
from cnnlab.seeing.show import WHAT, show

__all__ = [
    "WHAT",
    "Box",
    "Mistakes",
    "TopPatches",
    "default_layer",
    "effective_rf",
    "embeddings",
    "feature_maps",
    "filters",
    "gradcam",
    "layer_names",
    "mistakes",
    "occlusion",
    "plot_embeddings",
    "plot_feature_maps",
    "plot_filters",
    "plot_gradcam",
    "plot_mistakes",
    "plot_occlusion",
    "plot_receptive_field",
    "plot_saliency",
    "plot_top_patches",
    "project",
    "receptive_box",
    "saliency",
    "show",
    "smoothgrad",
    "top_patches",
]
