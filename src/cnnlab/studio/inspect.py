"""Inspect: a run's top-5 classes for an image, and its explanations, as ``cnnlab`` computes them.

An image to inspect is an uploaded file or one of the run's test images. Either is kept as a
file under ``ROOT/.studio/images/`` (inside the first runs root, never elsewhere) and every
question about it goes through the same calls as the command line: ``Predictor.predict`` and
``top_k`` (``cnnlab predict IMAGE``), and the maps and faithfulness scores of
:mod:`cnnlab.seeing` that ``cnnlab show`` draws. A test image is written as a lossless PNG of its
stored pixels, so it reads back to the same tensor.

Speed (the issue's goal: a new map within 100 ms for a Fashion-MNIST network, 300 ms for a
ResNet-18 at 224x224): the loaded network, each image's input tensor and logits, and its
random-order faithfulness areas are kept; a map is one call of the method and a small PNG drawn
with PIL (no matplotlib figure); the faithfulness scores, a hundred or more forward passes, are
asked for separately (``"faithfulness": false`` leaves them out).

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
KEPT_INPUTS = 8  # per loaded run: images kept as input tensors with their logits
TOP = 5
MAP_SIDE = 224  # a map is enlarged by whole pixels to at least this side (28 px stays legible)
PNG_LEVEL = 1  # zlib level of the maps' PNGs: 5x faster than the default, a little larger
FEATURE_TILES = 16  # feature maps: the most active channels shown (as ``cnnlab show``)
OVERLAID = ("gradcam", "occlusion")  # maps drawn over the image; saliency is drawn alone
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
        """One explanation map and, unless ``"faithfulness": false``, its faithfulness scores.

        The map is :data:`cnnlab.seeing.faithfulness.MAPS`' (what ``cnnlab show`` draws), or
        :func:`cnnlab.seeing.methods.feature_maps`' most active channels, drawn as a small PNG
        (:func:`picture`) rather than a matplotlib figure: switching the layer or the class costs
        one map. The scores (:func:`cnnlab.seeing.explain`: a hundred or more forward passes)
        come with the map by default; a page asks for the map first (``false``), then again for
        the scores, and the random orders' areas are computed once per image and class.
        """
        from cnnlab.errors import CnnlabError

        method = body.get("method", "gradcam")
        if method not in METHODS:
            raise Refused(400, f"unknown method {method!r}: pick one of {', '.join(METHODS)}")
        layer, target = body.get("layer"), body.get("class")
        measure = body.get("faithfulness", True)
        if layer is not None and not isinstance(layer, str):
            raise Refused(400, "layer must be a layer name from /api/runs/ID/layers")
        if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
            raise Refused(400, "class must be a class index (an integer)")
        if not isinstance(measure, bool):
            raise Refused(400, "faithfulness must be true or false")
        with self.lock:
            entry = self.loaded(run_dir)
            p = entry["predictor"]
            if target is not None and not 0 <= target < len(p.classes):
                raise Refused(400, f"class must be from 0 to {len(p.classes) - 1}")
            try:
                return self._explain(entry, body.get("image_id"), method, layer, target, measure)
            except CnnlabError as err:
                path = str(self.image(body.get("image_id")))
                raise Refused(400, str(err).replace(path, "the image")) from None

    def _input(self, entry: dict[str, Any], image_id: Any) -> dict[str, Any]:
        """The image as the network's input, its logits and its random-order areas, cached."""
        import torch

        from cnnlab.seeing import methods as M

        inputs = entry.setdefault("inputs", OrderedDict())
        if image_id in inputs:
            inputs.move_to_end(image_id)
            return inputs[image_id]
        p = entry["predictor"]
        x = M.as_input(p, [self.image(image_id)])
        net = M.model_of(p)
        with M.fp32_eval(net) as work, torch.inference_mode():
            logits = M.batched_logits(work, x).cpu()
        inputs[image_id] = {"x": x, "logits": logits, "random": {}}
        while len(inputs) > KEPT_INPUTS:
            inputs.popitem(last=False)
        return inputs[image_id]

    def _explain(
        self,
        entry: dict[str, Any],
        image_id: Any,
        method: str,
        layer: str | None,
        target: int | None,
        measure: bool,
    ) -> dict[str, Any]:
        import torch

        from cnnlab.seeing import faithfulness as F
        from cnnlab.seeing import layers as L
        from cnnlab.seeing import methods as M

        p = entry["predictor"]
        cached = self._input(entry, image_id)
        x, logits = cached["x"], cached["logits"]
        cls = int(logits.argmax(1)[0]) if target is None else target
        size = tuple(x.shape[1:])
        net = M.model_of(p)
        pixels = _display(p, x)
        if method == "features":
            layer = layer or L.default_layer(net, size, "maps")
            maps = M.feature_maps(p, x, layer)[0]
            png, shown = feature_picture(maps), _most_active(maps)
            return {"png": png, "layer": layer, "class": cls, "class_name": p.classes[cls],
                    "channels": shown, "faithfulness": None}  # fmt: skip
        # Saliency and occlusion look at the input, whatever layer the page has chosen.
        layer = (layer or L.default_layer(net, size, "gradcam")) if method == "gradcam" else None
        t = torch.tensor([cls])
        scores = None
        if measure:
            random = cached["random"].get(cls)
            e = F.explain(p, x, method, t, layer=layer, random=random)
            if random is None:
                cached["random"][cls] = (
                    torch.tensor([s.deletion_random for s in e.scores]),
                    torch.tensor([s.insertion_random for s in e.scores]),
                )
            maps, scores = e.maps, {method: e.to_dict(p.classes)}
        else:
            maps = F.MAPS[method](p, x, t, layer=layer).float().cpu()
        png = picture(pixels[0], maps[0], overlay=method in OVERLAID)
        return {"png": png, "layer": layer, "class": cls, "class_name": p.classes[cls],
                "faithfulness": scores}  # fmt: skip


# --- pictures ----------------------------------------------------------------------------------


def _display(p: Any, x: Any) -> Any:
    from cnnlab.seeing.figures import display

    return display(p, x)


def _png(rgb: Any) -> str:
    """``(H, W, 3)`` uint8 pixels as a ``data:image/png`` URI, enlarged to :data:`MAP_SIDE`
    by whole pixels (a 28x28 image stays sharp), fast zlib level."""
    import base64
    import io

    from PIL import Image

    image = Image.fromarray(rgb)
    scale = max(1, MAP_SIDE // max(image.size))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=PNG_LEVEL)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _colour(values: Any, cmap: str) -> Any:
    """[0, 1] values ``(H, W)`` -> ``(H, W, 3)`` floats in [0, 1] through a matplotlib map."""
    from matplotlib import colormaps

    return colormaps[cmap](values.clamp(0, 1).numpy())[..., :3]


def picture(pixels: Any, heat: Any, *, overlay: bool) -> str:
    """A map as ``cnnlab show`` colours it: over the image in grey at half opacity (Grad-CAM,
    occlusion: where), or alone scaled to its 99th percentile (saliency: which pixels).

    Args:
        pixels: ``(H, W, C)`` displayable image in [0, 1] (NaN outside it).
        heat: ``(H, W)`` map, or ``(C, H, W)`` of which the channels' maximum is shown.
    """
    import numpy as np
    import torch

    from cnnlab.seeing.figures import HEAT, MISSING

    heat = heat.float()
    if heat.dim() == 3:
        heat = heat.abs().amax(0)
    heat = torch.nan_to_num(heat)
    if overlay:
        heat = heat.clamp_min(0) / heat.max().clamp_min(1e-30)
        grey = torch.nan_to_num(pixels, nan=MISSING).mean(-1).clamp(0, 1).numpy()[..., None]
        rgb = 0.5 * grey + 0.5 * _colour(heat, HEAT)
    else:
        top = heat.flatten().quantile(0.99).clamp_min(1e-30)
        rgb = np.repeat((heat / top).clamp(0, 1).numpy()[..., None], 3, axis=-1)
    return _png((rgb * 255).round().astype(np.uint8))


def _most_active(maps: Any) -> list[int]:
    """Channels by mean response, largest first (``plot_feature_maps``' choice), at most
    :data:`FEATURE_TILES`; a vector layer's units in order."""
    if maps.dim() == 1:
        return list(range(len(maps)))
    return maps.flatten(1).mean(1).argsort(descending=True)[:FEATURE_TILES].tolist()


def feature_picture(maps: Any) -> str:
    """A layer's output for one image: the most active channels as tiles, each on its own
    viridis scale (dark is low), or a vector layer's units as one grid of cells."""
    import math

    import numpy as np
    import torch

    if maps.dim() == 1:  # a vector: its units in rows, on one scale
        side = math.ceil(math.sqrt(len(maps)))
        grid = torch.full((side * side,), float("nan"))
        grid[: len(maps)] = maps
        lo, hi = maps.min(), maps.max()
        values = ((grid - lo) / (hi - lo).clamp_min(1e-30)).view(side, side)
        rgb = _colour(torch.nan_to_num(values, nan=0.0), "viridis")
        return _png((rgb * 255).round().astype(np.uint8))
    tiles = maps[_most_active(maps)]
    n, h, w = tiles.shape
    cols = min(4, n)
    rows = math.ceil(n / cols)
    gap = max(1, h // 14)
    canvas = np.ones((rows * (h + gap) - gap, cols * (w + gap) - gap, 3))
    for i, tile in enumerate(tiles):
        lo, hi = tile.min(), tile.max()
        rgb = _colour((tile - lo) / (hi - lo).clamp_min(1e-30), "viridis")
        r, c = divmod(i, cols)
        canvas[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = rgb
    return _png((canvas * 255).round().astype(np.uint8))
