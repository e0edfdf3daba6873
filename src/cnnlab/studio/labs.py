"""The convolution lab and the filters lab: the lecture's sliding windows, computed by cnnlab.

Every number the two labs show comes from cnnlab's own code, through these routes:

* ``POST /api/labs/conv``: a convolution layer on a small input (seeded random integers, a typed
  grid, a crop of a photo, or the slides' box-filter example), by :mod:`cnnlab.scratch`: the
  border by :func:`~cnnlab.scratch.padding.pad2d` (zero, reflect, replicate, circular), the layer
  by :func:`cnnlab.scratch.fast.conv2d_forward` on the padded input, and the im2col matrix it
  multiplies. The output size is :mod:`cnnlab.geometry`'s formula; a window that does not fit
  is refused with cnnlab's own geometry message, and one that does not tile the input carries
  the analyzer's note (:func:`cnnlab.analysis.analyze` of the same layer, the words
  ``cnnlab analyze`` prints). The page steps through the output cells with a JavaScript twin of
  the per-cell sum (tests/test_studio_labs.py proves its displayed values equal scratch's).
* ``POST /api/labs/pool``: max or average pooling and its backward pass
  (:mod:`cnnlab.scratch.layers`), with where max pooling routes each gradient.
* ``GET /api/labs/box``: the slides' box-filter example (lecture 001, slides 8-15, S. Seitz),
  ``g = f ★ box`` by :func:`cnnlab.scratch.correlate.correlate2d`.
* ``POST /api/labs/photo``, ``POST /api/labs/filter``: the classical kernels
  (:data:`cnnlab.scratch.filters.FILTERS`, ``cnnlab filter``'s) on an uploaded photo or the
  shipped sample, through :func:`~cnnlab.scratch.filters.apply_filter` (named kernels) or
  the same ``correlate2d`` + ``to_display`` (a Gaussian of any sigma, the Sobel magnitude, a
  typed kernel). ``GET /api/labs`` gives both forms their choices and ranges.
* ``GET /api/labs/receptive``: stacked 3x3 layers' receptive field beside one 5x5 and one 7x7, by
  the analyzer's arithmetic (:func:`cnnlab.analysis.arith.receptive_field`, ``conv_params``).

Uploads are refused before decoding over the Inspect limits (:data:`MAX_UPLOAD_BYTES`,
:data:`MAX_PIXELS`, read from the header), decoded by cnnlab's one image reader
(:func:`cnnlab.data.images.read_image`: regular files, its own decompression-bomb guard) and
shrunk to :data:`PHOTO_SIDE` on the longer side, which bounds every filter's time and memory.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import Route

from cnnlab.studio.api import JSONResponse, json_body
from cnnlab.studio.inspect import MAX_PIXELS, MAX_UPLOAD_BYTES
from cnnlab.studio.security import Refused

if TYPE_CHECKING:  # NumPy is imported on a lab's first request: the studio starts without it
    import numpy as np

SAMPLES = Path(__file__).parent / "static" / "samples"  # MANIFEST.json lists them, with licences
SAMPLE = "astronaut.jpg"
PHOTO_SIDE = 1024  # a photo's longer side in the filters lab (larger uploads are shrunk to it)
CROP_SIDE = 128  # the conv lab crops from the photo shrunk to this longer side
KEPT_PHOTOS = 4  # decoded uploads kept in memory (3 MB each at most)
FILTER_LOCK = threading.Lock()  # one filter at a time: see run_filter

# The conv lab's settings: name -> (lowest, highest, default). Bounds keep a step instant and the
# page legible: a 40x40 input with 6 pixels of border is a 52x52 grid per channel. The default is
# the cs231n demo's configuration: 5x5x3 input, two 3x3 filters, stride 2, padding 1.
CONV_SETTINGS = {
    "h": (1, 40, 5), "w": (1, 40, 5), "channels": (1, 4, 3), "kernel": (1, 9, 3),
    "filters": (1, 8, 2), "stride": (1, 8, 2), "padding": (0, 6, 1), "dilation": (1, 4, 1),
    "seed": (0, 2**31 - 1, 0), "crop_x": (0, CROP_SIDE - 1, 40), "crop_y": (0, CROP_SIDE - 1, 20),
}  # fmt: skip
POOL_SETTINGS = {"size": (1, 9, 2), "stride": (1, 8, 2), "padding": (0, 4, 0),
                 "seed": (0, 2**31 - 1, 0)}  # fmt: skip
# Seeded random integers, inclusive ranges: small, so every product and sum reads at a glance.
RANDOM = {"x": (0, 9), "w": (-2, 2), "b": (-2, 2), "dout": (1, 9)}
SOURCES = ("random", "grid", "photo", "slides")
TYPED = {"x": "input", "w": "weights", "b": "bias"}  # the body's fields for typed values
POOL_KINDS = ("max", "avg")
IM2COL_CELLS = 6000  # the im2col matrix is sent (and drawn) up to this many entries
MAX_VALUE = 1e6  # a typed grid's values: finite and at most this in magnitude
CUSTOM_SIDE = 15  # a typed filter kernel: at most 15x15
SIGMA = (0.1, 10.0)
GAUSS_SIZE = (1, 31)
RF_LAYERS = (1, 8)

# The slides' box-filter example (lecture 001, slides 8-15, S. Seitz): f, 10x10 of 0s and 90s
# with one dark pixel inside the square and one stray bright pixel; f ★ box(3), without padding,
# is the 8x8 g printed on slide 15 (0 10 20 30 30 30 20 10 / 0 20 40 60 ...).
SLIDE_F = (
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    (0, 0, 0, 90, 90, 90, 90, 90, 0, 0),
    (0, 0, 0, 90, 90, 90, 90, 90, 0, 0),
    (0, 0, 0, 90, 90, 90, 90, 90, 0, 0),
    (0, 0, 0, 90, 0, 90, 90, 90, 0, 0),
    (0, 0, 0, 90, 90, 90, 90, 90, 0, 0),
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    (0, 0, 90, 0, 0, 0, 0, 0, 0, 0),
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
)
SLIDE_SOURCE = "lecture 001, slides 8-15 (S. Seitz): f ★ (1/9)·ones(3x3), no padding"

# The filters lab's kernels beyond cnnlab filter's named ones: name -> (title, note).
EXTRA_KERNELS = {
    "gaussian_sigma": ("Gaussian, chosen sigma",
                       "sampled Gaussian of the chosen sigma and odd size, normalised to sum 1"),
    "sobel_magnitude": ("Sobel magnitude", "sqrt(sobel_x² + sobel_y²): edges in every direction"),
    "custom": ("Typed-in kernel", "your own weights, one row per line"),
}  # fmt: skip


# --- parsing -------------------------------------------------------------------------------------


def _setting(body: dict[str, Any], name: str, table: dict[str, tuple[int, int, int]]) -> int:
    low, high, default = table[name]
    value = body.get(name, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refused(400, f"{name} must be an integer from {low} to {high}, not {value!r}")
    return value


def _choice(body: dict[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = body.get(name, default)
    if value not in choices:
        raise Refused(400, f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _grid(value: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A typed array of numbers of exactly ``shape`` (nested lists), as float64."""
    import numpy as np

    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise Refused(400, f"{name} must be nested lists of numbers of shape {shape}") from None
    if array.shape != shape:
        raise Refused(400, f"{name} has shape {array.shape}; the settings need {shape}: edit the "
                      "grid or the settings so they agree")  # fmt: skip
    if not np.isfinite(array).all() or np.abs(array).max(initial=0) > MAX_VALUE:
        raise Refused(400, f"{name} must hold finite numbers of at most {MAX_VALUE:g} in size")
    return array


def _geometry_refused(err: Exception) -> Refused:
    """cnnlab's own geometry message (``cnnlab.geometry``, ``pad2d``), as a 400."""
    return Refused(400, str(err))


# --- photos --------------------------------------------------------------------------------------


class Photos:
    """The sample and the last :data:`KEPT_PHOTOS` uploads, decoded, (H, W, 3) uint8."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kept: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, photo: Any) -> np.ndarray:
        if photo in (None, "sample", SAMPLE):
            return self._sample()
        with self.lock:
            if not isinstance(photo, str) or photo not in self.kept:
                raise Refused(404, f"no photo {photo!r}: upload it again, or use the sample")
            self.kept.move_to_end(photo)
            return self.kept[photo]

    def _sample(self) -> np.ndarray:
        with self.lock:
            if SAMPLE not in self.kept:
                self.kept[SAMPLE] = decode(SAMPLES / SAMPLE)
            return self.kept[SAMPLE]  # never evicted: see add

    def add(self, data: bytes) -> tuple[str, np.ndarray, str]:
        """Check, decode and keep an upload; ``(photo id, pixels, note on shrinking)``."""
        if len(data) > MAX_UPLOAD_BYTES:
            raise Refused(413, f"the image is {len(data):,} bytes, over the studio's limit of "
                          f"{MAX_UPLOAD_BYTES:,}: upload a smaller file")  # fmt: skip
        if not data:
            raise Refused(400, "the upload is empty: choose an image file (PNG, JPEG, ...)")
        with tempfile.TemporaryDirectory(prefix="cnnlab-lab-") as folder:
            path = Path(folder) / "upload"
            path.write_bytes(data)
            pixels, note = decode_checked(path)
        photo = "p" + hashlib.sha256(data).hexdigest()[:24]
        with self.lock:
            self.kept[photo] = pixels
            uploads = [k for k in self.kept if k != SAMPLE]
            for old in uploads[: max(0, len(uploads) - KEPT_PHOTOS)]:
                del self.kept[old]
        return photo, pixels, note


def decode_checked(path: Path) -> tuple[np.ndarray, str]:
    """An upload's pixels after the Inspect limits, shrunk to :data:`PHOTO_SIDE`; a note."""
    from cnnlab.data.images import image_header
    from cnnlab.errors import DataError

    try:
        h, w, _ = image_header(path)
        if h * w > MAX_PIXELS:
            raise Refused(413, f"the image has {w}x{h} = {h * w:,} pixels, over the studio's "
                          f"limit of {MAX_PIXELS:,}: shrink it first")  # fmt: skip
        pixels = decode(path, (h, w))
    except DataError as err:
        raise Refused(400, str(err).replace(str(path), "the upload")) from None
    shown = pixels.shape[:2]
    note = ""
    if shown != (h, w):
        note = f"shrunk from {w}x{h} to {shown[1]}x{shown[0]} (the lab's limit: {PHOTO_SIDE} px)"
    return pixels, note


def decode(path: Path, header: tuple[int, int] | None = None) -> np.ndarray:
    """``read_image`` as RGB, shrunk so the longer side is at most :data:`PHOTO_SIDE`."""
    from cnnlab.data.images import image_header, read_image

    h, w = header or image_header(path)[:2]
    scale = min(1.0, PHOTO_SIDE / max(h, w))
    size = None if scale == 1.0 else (max(1, round(h * scale)), max(1, round(w * scale)))
    return read_image(path, channels=3, size=size).numpy().transpose(1, 2, 0).copy()


def photos(request: Request) -> Photos:
    state = request.app.state
    with _STATE_LOCK:
        if not hasattr(state, "lab_photos"):
            state.lab_photos = Photos()
        return state.lab_photos


_STATE_LOCK = threading.Lock()


def png_uri(image: np.ndarray) -> str:
    """A uint8 (H, W) or (H, W, 3) image as a lossless PNG data URI, stored uncompressed: on
    the loopback the bytes cost less than zlib (1 MP RGB: 58 ms at level 0, 126 ms at 1)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=0)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def gray(image: np.ndarray) -> np.ndarray:
    """Pillow's ITU-R 601 luma of an RGB image (what ``read_image(channels=1)`` makes)."""
    import numpy as np
    from PIL import Image

    return np.asarray(Image.fromarray(image).convert("L"))


# --- the convolution lab -------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvSettings:
    """One configuration of the conv lab (ranges: :data:`CONV_SETTINGS`)."""

    h: int
    w: int
    channels: int
    kernel: int
    filters: int
    stride: int
    padding: int
    dilation: int
    mode: str
    seed: int


def conv_settings(body: dict[str, Any]) -> tuple[ConvSettings, str]:
    """The settings and the value source of a conv-lab request."""
    source = _choice(body, "source", SOURCES, "random")
    values = {name: _setting(body, name, CONV_SETTINGS) for name in ConvSettings.__annotations__
              if name != "mode"}  # fmt: skip
    if source == "slides":  # the example fixes its own: one 10x10 channel, one 3x3 box, valid
        values |= {"h": len(SLIDE_F), "w": len(SLIDE_F[0]), "channels": 1, "kernel": 3,
                   "filters": 1, "stride": 1, "padding": 0, "dilation": 1}  # fmt: skip
    from cnnlab.choices import PAD_MODES

    mode = _choice(body, "mode", PAD_MODES, "zero")
    return ConvSettings(mode=mode, **values), source


def conv_values(
    s: ConvSettings, source: str, body: dict[str, Any], photo: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The input (C, H, W), weights (K, C, k, k) and bias (K,) of a configuration.

    Random integers are drawn in a fixed order (input, weights, bias) from ``seed``, so typing a
    grid or cropping a photo keeps the same weights. ``input``, ``weights`` or ``bias`` in the
    body replace the drawn ones (typed grids).
    """
    import numpy as np

    rng = np.random.default_rng(s.seed)
    shapes = {"x": (s.channels, s.h, s.w), "w": (s.filters, s.channels, s.kernel, s.kernel),
              "b": (s.filters,)}  # fmt: skip
    drawn = {name: rng.integers(RANDOM[name][0], RANDOM[name][1] + 1, shape).astype(np.float64)
             for name, shape in shapes.items()}  # fmt: skip
    if source == "slides":
        from cnnlab.scratch.filters import FILTERS

        drawn = {"x": np.array(SLIDE_F, dtype=np.float64)[None],
                 "w": FILTERS["box"].kernel[None, None].copy(), "b": np.zeros(1)}  # fmt: skip
    elif source == "photo":
        if s.channels not in (1, 3):
            raise Refused(400, f"a photo crop has 1 (gray) or 3 (RGB) channels, not "
                          f"{s.channels}: set channels to 1 or 3")  # fmt: skip
        drawn["x"] = crop(photo, s, body)
    elif source == "grid" and body.get("input") is None:
        raise Refused(400, "source grid needs the typed input as input: [[[...]]] (C, H, W)")
    for name, shape in shapes.items():
        field = TYPED[name]
        if source != "slides" and body.get(field) is not None:
            drawn[name] = _grid(body[field], field, shape)
    return drawn["x"], drawn["w"], drawn["b"]


def crop(photo: np.ndarray, s: ConvSettings, body: dict[str, Any]) -> np.ndarray:
    """An (C, H, W) crop of the photo shrunk to :data:`CROP_SIDE` on its longer side."""
    import numpy as np
    from PIL import Image

    image = Image.fromarray(photo)
    scale = CROP_SIDE / max(image.size)
    small = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.Resampling.BILINEAR)  # fmt: skip
    if s.channels == 1:
        small = small.convert("L")
    pixels = np.asarray(small, dtype=np.float64)
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    x0, y0 = (_setting(body, name, CONV_SETTINGS) for name in ("crop_x", "crop_y"))
    if y0 + s.h > pixels.shape[1] or x0 + s.w > pixels.shape[2]:
        raise Refused(400, f"a {s.h}x{s.w} crop at ({x0}, {y0}) leaves the {pixels.shape[2]}x"
                      f"{pixels.shape[1]} photo: move the crop up or left")  # fmt: skip
    return pixels[:, y0 : y0 + s.h, x0 : x0 + s.w]


def axis_formula(size: int, s: ConvSettings) -> dict[str, Any]:
    """The slides' output size along one axis, ``(W - F + 2P)/S + 1``, with the numbers in."""
    from cnnlab import geometry

    extent = geometry.window_extent(s.kernel, s.dilation)
    exact = geometry.exact_output_size(size, s.kernel, s.stride, s.padding, s.padding, s.dilation)
    out = geometry.output_size(size, s.kernel, s.stride, s.padding, s.padding, s.dilation)
    value = str(exact.numerator) if exact.denominator == 1 else f"{float(exact):.2f}"
    text = f"({size} − {extent} + 2·{s.padding})/{s.stride} + 1 = {value}"
    if exact.denominator != 1:
        text += f", floored to {out}"
    return {"size": size, "extent": extent, "exact": float(exact), "out": out, "text": text,
            "fits": exact.denominator == 1}  # fmt: skip


def analyzer_note(s: ConvSettings) -> list[str]:
    """What ``cnnlab analyze`` says about this layer when its windows do not tile the input.

    The analyzer traces a real ``nn.Conv2d`` (imported only here: a configuration that tiles
    needs no PyTorch). The border mode does not change the geometry, so zeros stand for all.
    """
    import torch
    from torch import nn

    from cnnlab.analysis import analyze

    torch.manual_seed(0)
    layer = nn.Conv2d(s.channels, s.filters, s.kernel, stride=s.stride, padding=s.padding,
                      dilation=s.dilation)  # fmt: skip
    report = analyze(layer, input_size=(s.channels, s.h, s.w))
    return [note for row in report.rows for note in row.notes]


def conv_lab(x: np.ndarray, w: np.ndarray, b: np.ndarray, s: ConvSettings) -> dict[str, Any]:
    """Everything the conv lab draws for one configuration, from :mod:`cnnlab.scratch`.

    Args:
        x: input, (C, H, W).
        w: weights, (K, C, k, k); b: bias, (K,).
        s: stride, padding (and its mode) and dilation.

    Returns:
        ``x``, the padded ``xp`` (C, H + 2P, W + 2P), ``w``, ``b``, ``out`` (K, Ho, Wo),
        ``col`` (C*k*k, Ho*Wo, or None when over :data:`IM2COL_CELLS`), the formulas per axis.
    """
    from cnnlab.errors import CnnlabError
    from cnnlab.scratch import fast
    from cnnlab.scratch.padding import pad2d
    from cnnlab.scratch.windows import window_geometry

    try:
        window_geometry(x.shape[1:], s.kernel, s.stride, s.padding, s.dilation)  # fits at all?
        pads = (s.padding,) * 4
        xp = pad2d(x[None], pads, s.mode)  # (1, C, Hp, Wp): the border filled by the mode
        out, cache = fast.conv2d_forward(xp, w, b, stride=s.stride, dilation=s.dilation)
    except CnnlabError as err:
        raise _geometry_refused(err) from None
    rows, cols = axis_formula(s.h, s), axis_formula(s.w, s)
    col = cache.col if cache.col.size <= IM2COL_CELLS else None  # (C*k*k, Ho*Wo)
    return {
        "settings": vars(s),
        "x": x.tolist(), "xp": xp[0].tolist(), "w": w.tolist(), "b": b.tolist(),
        "out": out[0].tolist(), "out_size": list(out.shape[2:]),
        "col": None if col is None else col.tolist(),
        "col_shape": list(cache.col.shape), "im2col_limit": IM2COL_CELLS,
        "formula": {"rows": rows, "cols": cols},
        "notes": [] if rows["fits"] and cols["fits"] else analyzer_note(s),
    }  # fmt: skip


async def conv(request: Request) -> JSONResponse:
    from starlette.concurrency import run_in_threadpool

    body = await json_body(request)
    settings, source = conv_settings(body)
    photo = None
    if source == "photo":
        photo = await run_in_threadpool(photos(request).get, body.get("photo"))

    def compute() -> dict[str, Any]:
        x, w, b = conv_values(settings, source, body, photo)
        return conv_lab(x, w, b, settings) | {"source": source, "random": RANDOM}

    return JSONResponse(await run_in_threadpool(compute))


# --- pooling -------------------------------------------------------------------------------------


def pool_lab(x: np.ndarray, kind: str, size: int, stride: int, padding: int, seed: int):
    """Pooling of ``x`` (C, H, W) forward, and backward of seeded upstream gradients.

    Returns:
        ``out`` and ``dout`` (C, Ho, Wo), ``dx`` (C, H, W), and for max pooling ``argmax``: each
        output cell's chosen input pixel as (row, col) in the *padded* input, (C, Ho, Wo, 2).
    """
    import numpy as np

    from cnnlab.errors import CnnlabError
    from cnnlab.scratch import layers

    forward = {"max": layers.max_pool2d_forward, "avg": layers.avg_pool2d_forward}[kind]
    backward = {"max": layers.max_pool2d_backward, "avg": layers.avg_pool2d_backward}[kind]
    try:
        out, cache = forward(x[None], size, stride, padding)
    except CnnlabError as err:
        raise _geometry_refused(err) from None
    rng = np.random.default_rng(seed)
    low, high = RANDOM["dout"]
    dout = rng.integers(low, high + 1, out.shape).astype(np.float64)
    dx = backward(dout, cache)
    result = {"out": out[0].tolist(), "dout": dout[0].tolist(), "dx": dx[0].tolist(),
              "pads": list(cache.geom.pads), "out_size": list(out.shape[2:])}  # fmt: skip
    if kind == "max":
        kw = cache.geom.kernel[1]
        i, j = np.indices(out.shape[2:])
        rows = i * stride + cache.argmax[0] // kw  # (C, Ho, Wo): the window's start + the tap
        cols = j * stride + cache.argmax[0] % kw
        result["argmax"] = np.stack([rows, cols], -1).tolist()
    return result


async def pool(request: Request) -> JSONResponse:
    from starlette.concurrency import run_in_threadpool

    body = await json_body(request)
    kind = _choice(body, "kind", POOL_KINDS, "max")
    size, stride, padding, seed = (_setting(body, n, POOL_SETTINGS) for n in POOL_SETTINGS)
    value = body.get("x")
    if not isinstance(value, list) or not value or not isinstance(value[0], list):
        raise Refused(400, "send the input as x: [[[...]]] (C, H, W), as /api/labs/conv returns")
    shape = (len(value), len(value[0]), len(value[0][0]) if value[0] else 0)
    c_max, h_max = CONV_SETTINGS["channels"][1], CONV_SETTINGS["h"][1]
    if not (1 <= shape[0] <= c_max and 1 <= shape[1] <= h_max and 1 <= shape[2] <= h_max):
        raise Refused(400, f"x must be (C, H, W) with C up to {c_max} and H, W up to {h_max}")
    x = _grid(value, "x", shape)
    answer = await run_in_threadpool(pool_lab, x, kind, size, stride, padding, seed)
    return JSONResponse(answer | {"kind": kind, "size": size, "stride": stride,
                                  "padding": padding, "seed": seed})  # fmt: skip


# --- the filters lab -----------------------------------------------------------------------------


def box_example() -> dict[str, Any]:
    """The slides' f, the box kernel, and ``g = f ★ box`` without padding (8x8)."""
    import numpy as np

    from cnnlab.scratch.correlate import correlate2d
    from cnnlab.scratch.filters import FILTERS

    f = np.array(SLIDE_F, dtype=np.float64)
    kernel = FILTERS["box"].kernel
    return {"f": f.tolist(), "kernel": kernel.tolist(), "g": correlate2d(f, kernel).tolist(),
            "source": SLIDE_SOURCE}  # fmt: skip


def box(request: Request) -> JSONResponse:
    return JSONResponse(box_example())


def constants(request: Request) -> JSONResponse:
    """What both labs' forms offer: the settings' ranges, the sources, the border modes, the
    kernels (``cnnlab filter``'s, then the lab's own three) and the sample photo."""
    from cnnlab.choices import PAD_MODES
    from cnnlab.scratch.filters import FILTERS

    named = [{"name": f.name, "title": f.name.replace("_", " "), "note": f.note,
              "display": f.display, "kernel": f.kernel.tolist()}
             for f in FILTERS.values()]  # fmt: skip
    extra = [{"name": name, "title": title, "note": note, "display": None, "kernel": None}
             for name, (title, note) in EXTRA_KERNELS.items()]  # fmt: skip
    return JSONResponse({
        "conv": CONV_SETTINGS, "pool": POOL_SETTINGS, "random": RANDOM, "sources": SOURCES,
        "pool_kinds": POOL_KINDS, "modes": list(PAD_MODES), "kernels": named + extra,
        "sigma": list(SIGMA), "gauss_size": list(GAUSS_SIZE), "custom_side": CUSTOM_SIDE,
        "rf_layers": list(RF_LAYERS), "sample": SAMPLE, "photo_side": PHOTO_SIDE,
        "crop_side": CROP_SIDE,
    })  # fmt: skip


@dataclass(frozen=True)
class FilterRequest:
    """What to run: a kernel name (``FILTERS`` or :data:`EXTRA_KERNELS`) and its options."""

    kernel: str
    mode: str
    sigma: float = 1.0
    size: int = 5
    values: tuple[tuple[float, ...], ...] | None = None


def filter_request(body: dict[str, Any]) -> FilterRequest:
    from cnnlab.choices import PAD_MODES
    from cnnlab.scratch.filters import FILTERS

    name = _choice(body, "kernel", (*FILTERS, *EXTRA_KERNELS), "box")
    mode = _choice(body, "mode", PAD_MODES, "reflect")
    sigma, size, values = 1.0, 5, None
    if name == "gaussian_sigma":
        sigma = body.get("sigma", 1.0)
        if (
            isinstance(sigma, bool)
            or not isinstance(sigma, (int, float))
            or not (SIGMA[0] <= sigma <= SIGMA[1])
        ):
            raise Refused(400, f"sigma must be a number from {SIGMA[0]} to {SIGMA[1]}")
        size = body.get("size", 2 * math.ceil(3 * sigma) + 1)  # 99.7% of the mass
        if (isinstance(size, bool) or not isinstance(size, int)
                or not GAUSS_SIZE[0] <= size <= GAUSS_SIZE[1] or size % 2 == 0):  # fmt: skip
            raise Refused(400, f"size must be odd, from {GAUSS_SIZE[0]} to {GAUSS_SIZE[1]}")
    if name == "custom":
        rows = body.get("values")
        if not isinstance(rows, list) or not rows or not isinstance(rows[0], list):
            raise Refused(400, "a typed kernel is values: [[...], ...], one list per row")
        shape = (len(rows), len(rows[0]))
        if max(shape) > CUSTOM_SIDE:
            raise Refused(400, f"a typed kernel is at most {CUSTOM_SIDE}x{CUSTOM_SIDE}")
        values = tuple(map(tuple, _grid(rows, "values", shape).tolist()))
    return FilterRequest(name, mode, float(sigma), size, values)


def run_filter(image: np.ndarray, f: FilterRequest) -> tuple[np.ndarray, np.ndarray, str]:
    """``(shown uint8 image, kernel, display)``: ``apply_filter`` for a named kernel, else the
    same two steps it takes (``correlate2d`` with "same" padding, then ``to_display``).

    One filter runs at a time (:data:`FILTER_LOCK`): the from-scratch correlation unfolds the
    image by im2col, about 8·k² bytes per pixel and channel (230 MB for a 3x3 kernel on a
    1-megapixel RGB photo), so parallel requests would add up.

    Shape:
        image (H, W) or (H, W, 3) uint8 -> the same shape, uint8.
    """
    import numpy as np

    from cnnlab.scratch.correlate import correlate2d
    from cnnlab.scratch.filters import FILTERS, apply_filter, gaussian, to_display

    if f.kernel in FILTERS:
        named = FILTERS[f.kernel]
        return apply_filter(image, f.kernel, f.mode), named.kernel, named.display
    if f.kernel == "sobel_magnitude":
        gx, gy = (correlate2d(image, FILTERS[n].kernel, padding="same", mode=f.mode)
                  for n in ("sobel_x", "sobel_y"))  # fmt: skip
        return to_display(np.hypot(gx, gy), "abs"), FILTERS["sobel_x"].kernel, "abs"
    if f.kernel == "gaussian_sigma":
        # The Gaussian is separable (gaussian() builds it as an outer product): two 1-D passes of
        # the same correlate2d read 2k taps per pixel instead of k², and im2col holds k rows, not
        # k² (a 13x13 kernel on the 512x512 sample: 4.5 s and 1 GB as one 2-D pass). Equal to
        # the 2-D kernel up to float rounding (tests/test_studio_labs.py bounds the difference).
        kernel = gaussian(f.size, f.sigma)
        taps = kernel.sum(axis=1)  # the normalised 1-D Gaussian: outer(taps, taps) == kernel
        rows = correlate2d(image, taps[None, :], padding="same", mode=f.mode)
        both = correlate2d(rows, taps[:, None], padding="same", mode=f.mode)
        return to_display(both, "clip"), kernel, "clip"
    kernel = np.array(f.values)
    # A kernel summing to 0 answers edges with signed values: shown as magnitude, as Sobel is.
    display = "abs" if abs(kernel.sum()) < 1e-9 else "clip"
    filtered = correlate2d(image, kernel, padding="same", mode=f.mode)
    return to_display(filtered, display), kernel, display


async def upload_photo(request: Request) -> JSONResponse:
    """A photo for both labs: a multipart upload named ``image``, or ``{"sample": true}``."""
    from starlette.concurrency import run_in_threadpool

    store = photos(request)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form(
            max_files=1, max_fields=2, max_part_size=MAX_UPLOAD_BYTES + 1
        ) as form:
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                raise Refused(400, "send the image as the multipart field 'image'")
            data = await upload.read(MAX_UPLOAD_BYTES + 1)
        photo, pixels, note = await run_in_threadpool(store.add, data)
    else:
        await json_body(request)
        photo, note = "sample", f"{SAMPLE}: NASA, public domain (static/samples/MANIFEST.json)"
        pixels = await run_in_threadpool(store.get, photo)
    uri = await run_in_threadpool(png_uri, pixels)
    return JSONResponse({"photo": photo, "width": pixels.shape[1], "height": pixels.shape[0],
                         "png": uri, "note": note})  # fmt: skip


async def apply(request: Request) -> JSONResponse:
    """One kernel on one photo; the server's time (filter and PNG) comes back with it."""
    from starlette.concurrency import run_in_threadpool

    body = await json_body(request)
    f = filter_request(body)
    use_gray = body.get("gray", False)
    if not isinstance(use_gray, bool):
        raise Refused(400, "gray must be true or false")
    store = photos(request)

    def compute() -> dict[str, Any]:
        start = time.perf_counter()
        image = store.get(body.get("photo"))
        image = gray(image) if use_gray else image
        with FILTER_LOCK:
            shown, kernel, display = run_filter(image, f)
        filtered_s = time.perf_counter() - start
        uri = png_uri(shown)
        return {"png": uri, "kernel": kernel.tolist(), "display": display, "mode": f.mode,
                "width": shown.shape[1], "height": shown.shape[0], "filter_ms": 1000 * filtered_s,
                "server_ms": 1000 * (time.perf_counter() - start)}  # fmt: skip

    return JSONResponse(await run_in_threadpool(compute))


# --- the receptive field -------------------------------------------------------------------------


def receptive_table(layers: int, channels: int) -> dict[str, Any]:
    """Stacked 3x3 stride-1 layers' receptive field, layer by layer, beside one 5x5 and one
    7x7 (the analyzer's ``r_out = r_in + (k - 1)·d·j_in``); weights per C -> C layer stack."""
    from cnnlab.analysis import arith

    stacked, r, j = [], 1, 1
    for layer in range(1, layers + 1):
        r, j = arith.receptive_field(r, j, 3)
        stacked.append({"layer": layer, "rf": r, "jump": j,
                        "weights": layer * arith.conv_params(channels, channels, (3, 3),
                                                             bias=False)})  # fmt: skip
    single = [{"kernel": k, "rf": arith.receptive_field(1, 1, k)[0],
               "weights": arith.conv_params(channels, channels, (k, k), bias=False)}
              for k in (5, 7)]  # fmt: skip
    return {"channels": channels, "stacked": stacked, "single": single}


def receptive(request: Request) -> JSONResponse:
    query = request.query_params
    layers = _setting(dict(query), "layers", {"layers": (*RF_LAYERS, 3)})
    channels = _setting(dict(query), "channels", {"channels": (1, 4096, 64)})
    return JSONResponse(receptive_table(layers, channels))


ROUTES = [
    Route("/api/labs/conv", conv, methods=["POST"]),
    Route("/api/labs/pool", pool, methods=["POST"]),
    Route("/api/labs/box", box),
    Route("/api/labs", constants),
    Route("/api/labs/photo", upload_photo, methods=["POST"]),
    Route("/api/labs/filter", apply, methods=["POST"]),
    Route("/api/labs/receptive", receptive),
]

__all__ = ["ROUTES", "box_example", "conv_lab", "pool_lab", "receptive_table", "run_filter"]
