"""Inspect: a run's top-5 classes for an image, and its explanations, as ``cnnlab`` computes them.

An image to inspect is an uploaded file or one of the run's test images. Either is kept as a
file under ``ROOT/.studio/images/`` (inside the first runs root, never elsewhere) and every
question about it goes through the same calls as the command line: ``Predictor.predict`` and
``top_k`` (``cnnlab predict IMAGE``) and :func:`cnnlab.seeing.show` (``cnnlab show``), whose
figure and faithfulness scores the page shows. A test image is written as a lossless PNG of its
stored pixels, so it reads back to the same tensor.

Uploads are refused before decoding when over :data:`MAX_UPLOAD_BYTES` or
:data:`MAX_PIXELS` (read from the header by :func:`cnnlab.data.images.image_header`), then
decoded by :func:`cnnlab.data.images.read_image` (regular files only, its own decompression-bomb
guard, one-line errors). Loaded models are kept for the last :data:`CACHED_RUNS` runs; PyTorch is
imported on the first question, not when the studio starts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from cnnlab.studio.security import Refused

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 40-megapixel photo; far past any model's input, bounded memory
CACHED_RUNS = 2  # loaded predictors kept (a ResNet-18 is ~45 MB)
KEPT_IMAGES = 64  # image files kept under .studio/images (oldest removed first)
TOP = 5
# The studio's explanation names -> ``cnnlab show --what`` views (cnnlab.seeing.views.VIEWS).
METHODS = {"gradcam": "gradcam", "saliency": "saliency", "occlusion": "occlusion",
           "features": "maps"}  # fmt: skip


class Inspector:
    """Loaded runs (an LRU of :data:`CACHED_RUNS`) and the images asked about."""

    def __init__(self, root: Path) -> None:
        self.folder = root / ".studio" / "images"
        self.runs: OrderedDict[Path, dict[str, Any]] = OrderedDict()
        self.images: OrderedDict[str, Path] = OrderedDict()
        self.lock = threading.RLock()  # one model computation at a time (torch is multi-threaded)

    # --- loading ----------------------------------------------------------------------------

    def loaded(self, run_dir: Path) -> dict[str, Any]:
        """``{"predictor", "test": (images, labels) or None, "logits"}`` of a run, cached."""
        with self.lock:
            if run_dir in self.runs:
                self.runs.move_to_end(run_dir)
                return self.runs[run_dir]
            import cnnlab

            entry = {"predictor": cnnlab.load(run_dir, device="cpu"), "test": None, "logits": None}
            self.runs[run_dir] = entry
            while len(self.runs) > CACHED_RUNS:
                self.runs.popitem(last=False)
            return entry

    def test_set(self, run_dir: Path) -> tuple[Any, Any, Any]:
        """The run's test images, labels and their logits (predicted once, as the report does)."""
        from cnnlab.run.data import load_run_split, record_sides
        from cnnlab.run.layout import RunFiles

        with self.lock:
            entry = self.loaded(run_dir)
            if entry["test"] is None:
                p = entry["predictor"]
                config = RunFiles(run_dir).read_config(resolved=True)
                x, y = load_run_split(config, "test", record_sides(p.meta))
                if config.limit_test is not None:  # the images the run's results counted
                    x, y = x[: config.limit_test], y[: config.limit_test]
                entry["test"] = (x, y)
                entry["logits"] = p.logits(x)
            x, y = entry["test"]
            return x, y, entry["logits"]

    # --- images -----------------------------------------------------------------------------

    def _keep(self, image_id: str, path: Path) -> str:
        self.images[image_id] = path
        while len(self.images) > KEPT_IMAGES:
            _, old = self.images.popitem(last=False)
            old.unlink(missing_ok=True)
        return image_id

    def add_upload(self, data: bytes, run_dir: Path) -> str:
        """Keep an uploaded image after checking its size, its pixels and that it decodes."""
        import hashlib

        from cnnlab.data.images import image_header, read_image
        from cnnlab.errors import DataError

        if len(data) > MAX_UPLOAD_BYTES:
            raise Refused(413, f"the image is {len(data):,} bytes, over the studio's limit of "
                          f"{MAX_UPLOAD_BYTES:,}: upload a smaller file")  # fmt: skip
        if not data:
            raise Refused(400, "the upload is empty: choose an image file (PNG, JPEG, ...)")
        image_id = "u" + hashlib.sha256(data).hexdigest()[:24]
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{image_id}.img"
        path.write_bytes(data)
        try:
            h, w, _ = image_header(path)
            if h * w > MAX_PIXELS:
                raise Refused(413, f"the image has {w}x{h} = {h * w:,} pixels, over the "
                              f"studio's limit of {MAX_PIXELS:,}: shrink it first")  # fmt: skip
            channels = self.loaded(run_dir)["predictor"].meta.in_channels
            read_image(path, channels=channels)  # decodes, or says what is wrong
        except DataError as err:
            path.unlink(missing_ok=True)
            text = str(err).replace(str(path), "the upload")
            raise Refused(400, text) from None
        except Refused:
            path.unlink(missing_ok=True)
            raise
        return self._keep(image_id, path)

    def add_test_image(self, run_dir: Path, index: Any) -> str:
        """Keep test image ``index`` of the run as a lossless PNG of its stored pixels."""
        from PIL import Image

        x, _, _ = self.test_set(run_dir)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(x):
            raise Refused(400, f"test_index must be an integer from 0 to {len(x) - 1}")
        image_id = f"t{abs(hash(run_dir)) % 10**8}-{index}"
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{image_id}.png"
        pixels = x[index].permute(1, 2, 0).numpy()
        Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(path)
        return self._keep(image_id, path)

    def image(self, image_id: Any) -> Path:
        if not isinstance(image_id, str) or image_id not in self.images:
            raise Refused(404, f"no image {image_id!r}: upload it or pick a test image again")
        return self.images[image_id]

    # --- questions --------------------------------------------------------------------------

    def top5(self, run_dir: Path, image_id: str) -> list[dict[str, Any]]:
        """The top classes, as ``cnnlab predict`` computes them (``predict`` and ``top_k``)."""
        with self.lock:
            p = self.loaded(run_dir)["predictor"]
            probs = p.predict([self.image(image_id)])
            return [
                {"class": t.name, "index": t.index, "probability": t.probability}
                for t in p.top_k(probs, TOP)[0]
            ]

    def explain(self, run_dir: Path, body: dict[str, Any]) -> dict[str, Any]:
        """One explanation picture (``cnnlab show``'s figure) and its faithfulness scores."""
        from cnnlab.errors import CnnlabError
        from cnnlab.report.html import figure_uri
        from cnnlab.seeing import show

        method = body.get("method", "gradcam")
        if method not in METHODS:
            raise Refused(400, f"unknown method {method!r}: pick one of {', '.join(METHODS)}")
        layer, target = body.get("layer"), body.get("class")
        if layer is not None and not isinstance(layer, str):
            raise Refused(400, "layer must be a layer name from /api/runs/ID/layers")
        if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
            raise Refused(400, "class must be a class index (an integer)")
        with self.lock:
            p = self.loaded(run_dir)["predictor"]
            if target is not None and not 0 <= target < len(p.classes):
                raise Refused(400, f"class must be from 0 to {len(p.classes) - 1}")
            path = self.image(body.get("image_id"))
            try:
                shown = show(p, [path], METHODS[method], layer=layer, target=target)
            except CnnlabError as err:
                raise Refused(400, str(err).replace(str(path), "the image")) from None
            explained = shown.explained or {}
            first = next(iter(explained.values()), None)
            cls = int(first.targets[0]) if first is not None else target
            if cls is None:
                cls = int(p.predict([path]).argmax(1)[0])
            return {
                "png": figure_uri(shown.figure),
                "layer": shown.layer,
                "class": cls,
                "class_name": p.classes[cls],
                "faithfulness": {m: e.to_dict(p.classes) for m, e in explained.items()} or None,
            }
