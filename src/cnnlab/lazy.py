"""One way for a package to export names that load on first use.

``import cnnlab`` and ``cnnlab --help`` must not import PyTorch, so packages whose public names
live in torch-using modules export them lazily: ``__getattr__ = lazy_exports(__name__, {...})``
(PEP 562). The table says which module holds each name; nothing is imported until it is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``where[name]`` on first access and returns the name.

    Args:
        package: the exporting package's ``__name__`` (for the error message).
        where: public name -> the module that defines it; a submodule maps to itself
            (``{"augment": "cnnlab.data.augment"}``), so ``package.augment`` works after a
            bare ``import package``.
    """

    def __getattr__(name: str) -> Any:
        if name in where:
            module = importlib.import_module(where[name])
            return module if module.__name__ == f"{package}.{name}" else getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
