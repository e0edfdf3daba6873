"""cnnlab: convolutional networks from the convolution up.

Public interface::

    import cnnlab
    cnnlab.list_models("resnet*")
    cnnlab.model_info("vgg16")
    cnnlab.create_model("vgg16", num_classes=10, in_channels=1)
    cnnlab.analyze("alexnet", input_size=(3, 227, 227), batch_size=1)
    cnnlab.load_dataset("fashion-mnist", "train")
"""

from __future__ import annotations

from cnnlab.errors import CnnlabError
from cnnlab.lazy import lazy_exports
from cnnlab.registry import ModelInfo, create_model, list_models, model_info, register_model

__version__ = "0.1.0"

# Heavier parts load on first use, so `import cnnlab` and `cnnlab --help` stay fast: PyTorch is
# imported by the first call that builds or runs a model, not by listing the zoo (registry.py).
__all__ = [
    "CnnlabError",
    "ModelInfo",
    "Predictor",
    "__version__",
    "analyze",
    "create_model",
    "list_models",
    "load",
    "load_dataset",
    "model_info",
    "register_model",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "analyze": "cnnlab.analysis",
        "load_dataset": "cnnlab.data",
        "load": "cnnlab.predictor",
        "Predictor": "cnnlab.predictor",
        "models": "cnnlab.models",  # `cnnlab.models.vgg` after a bare `import cnnlab`
    },
)
