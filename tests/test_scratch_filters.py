"""Image filtering from scratch: the lecture's worked example, the properties of convolution and
the classical kernels on real photographs (the ``cnnlab filter`` command: ``test_cli.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import skimage.data
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cnnlab.errors import ConfigError, GeometryError, InputSizeError
from cnnlab.scratch.correlate import convolve2d, correlate2d
from cnnlab.scratch.filters import FILTERS, apply_filter, gaussian, get_filter, to_display

SETTINGS = settings(max_examples=25, deadline=None)

# Lecture 001, slides 8-15 (S. Seitz): f, the 10x10 image of 90s with one dark pixel inside the
# square and one stray bright pixel, and g = f ★ (1/9)·ones(3x3) without padding, 8x8, exactly
# as printed on slide 15.
SLIDE_F = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 90, 90, 90, 90, 90, 0, 0],
        [0, 0, 0, 90, 90, 90, 90, 90, 0, 0],
        [0, 0, 0, 90, 90, 90, 90, 90, 0, 0],
        [0, 0, 0, 90, 0, 90, 90, 90, 0, 0],
        [0, 0, 0, 90, 90, 90, 90, 90, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 90, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ]
)
SLIDE_G = np.array(
    [
        [0, 10, 20, 30, 30, 30, 20, 10],
        [0, 20, 40, 60, 60, 60, 40, 20],
        [0, 30, 60, 90, 90, 90, 60, 30],
        [0, 30, 50, 80, 80, 90, 60, 30],
        [0, 30, 50, 80, 80, 90, 60, 30],
        [0, 20, 30, 50, 50, 60, 40, 20],
        [10, 20, 30, 30, 30, 30, 20, 10],
        [10, 10, 10, 0, 0, 0, 0, 0],
    ]
)


def test_mean_filter_reproduces_the_slide_digit_for_digit() -> None:
    g = correlate2d(SLIDE_F, get_filter("box").kernel)  # valid: 10x10 -> 8x8
    assert g.shape == (8, 8)
    np.testing.assert_allclose(g, SLIDE_G, atol=1e-12)
    assert np.array_equal(np.rint(g).astype(int), SLIDE_G)
    # Each printed digit string, e.g. "0 10 20 30 30 30 20 10" for the first row.
    printed = [" ".join(str(int(v)) for v in row) for row in np.rint(g)]
    assert printed[3] == "0 30 50 80 80 90 60 30"


# ---------------------------------------------------------------------------------------------
# Against independent references


@pytest.mark.parametrize("mode", ["zero", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", ["same", 2, (1, 0)])
def test_correlate2d_matches_torch_for_every_border(mode, padding) -> None:
    rng = np.random.default_rng(0)
    image, kernel = rng.standard_normal((9, 11, 3)), rng.standard_normal((3, 4))
    out = correlate2d(image, kernel, padding=padding, mode=mode, stride=(1, 2))
    if padding == "same":
        pads = (1, 2, 1, 1)  # (left, right, top, bottom) as F.pad wants: even width -> extra right
    else:
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        pads = (pw, pw, ph, ph)
    torch_mode = {"zero": "constant"}.get(mode, mode)
    x = torch.tensor(np.moveaxis(image, -1, 0)[:, None])  # (C, 1, H, W)
    ref = F.conv2d(F.pad(x, pads, mode=torch_mode), torch.tensor(kernel)[None, None], stride=(1, 2))
    np.testing.assert_allclose(out, np.moveaxis(ref[:, 0].numpy(), 0, -1), atol=1e-12)


@pytest.mark.parametrize("padding", ["full", "same", "valid"])
def test_convolve2d_matches_scipy(padding) -> None:
    rng = np.random.default_rng(1)
    image, kernel = rng.standard_normal((8, 7)), rng.standard_normal((3, 3))
    ref = scipy.signal.convolve2d(image, kernel, mode=padding)
    np.testing.assert_allclose(convolve2d(image, kernel, padding=padding), ref, atol=1e-12)
    ref_corr = scipy.signal.correlate2d(image, kernel, mode=padding)
    np.testing.assert_allclose(correlate2d(image, kernel, padding=padding), ref_corr, atol=1e-12)


def test_convolution_is_correlation_with_the_kernel_flipped() -> None:
    rng = np.random.default_rng(2)
    image, kernel = rng.standard_normal((6, 6)), rng.standard_normal((3, 2))
    np.testing.assert_array_equal(
        convolve2d(image, kernel, "same"), correlate2d(image, kernel[::-1, ::-1], "same")
    )
    assert not np.allclose(convolve2d(image, kernel), correlate2d(image, kernel))


# ---------------------------------------------------------------------------------------------
# Properties of convolution (lecture 001, slides 28-29)

small = st.integers(1, 6)
img = st.tuples(small, small).flatmap(
    lambda s: arrays(np.float64, s, elements=st.floats(-10, 10, allow_subnormal=False))
)
ker = st.tuples(st.integers(1, 3), st.integers(1, 3)).flatmap(
    lambda s: arrays(np.float64, s, elements=st.floats(-10, 10, allow_subnormal=False))
)


def full(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return convolve2d(a, b, padding="full")


@SETTINGS
@given(img, img.map(lambda a: a * 0.5 + 1), ker, st.floats(-3, 3))
def test_linearity(f1, f2, h, k) -> None:
    f2 = np.resize(f2, f1.shape)
    np.testing.assert_allclose(full(f1 + f2, h), full(f1, h) + full(f2, h), atol=1e-9)
    np.testing.assert_allclose(full(k * f1, h), k * full(f1, h), atol=1e-9)  # scalars factor out
    np.testing.assert_allclose(full(f1, k * h), k * full(f1, h), atol=1e-9)


@SETTINGS
@given(img, ker, st.integers(-5, 5), st.integers(-5, 5))
def test_shift_invariance(f, h, dy, dx) -> None:
    # On a circular image, filter(shift(f)) == shift(filter(f)) exactly, at every shift.
    def filt(a: np.ndarray) -> np.ndarray:
        return correlate2d(a, h, padding="same", mode="circular")

    if max(h.shape) > min(f.shape):  # circular 'same' needs the kernel to fit the image
        f = np.resize(f, (h.shape[0] + 2, h.shape[1] + 2))
    shift = (dy, dx)
    np.testing.assert_allclose(
        filt(np.roll(f, shift, axis=(0, 1))), np.roll(filt(f), shift, axis=(0, 1)), atol=1e-9
    )


@SETTINGS
@given(img, img)
def test_commutativity(a, b) -> None:
    np.testing.assert_allclose(full(a, b), full(b, a), atol=1e-9)


@SETTINGS
@given(img, ker, ker)
def test_associativity(a, b, c) -> None:
    np.testing.assert_allclose(full(full(a, b), c), full(a, full(b, c)), atol=1e-8)


@SETTINGS
@given(img, ker, ker)
def test_distributes_over_addition(a, b, c) -> None:
    c = np.resize(c, b.shape)
    np.testing.assert_allclose(full(a, b + c), full(a, b) + full(a, c), atol=1e-9)


@SETTINGS
@given(img, st.sampled_from(["zero", "reflect", "replicate", "circular"]))
def test_identity_kernel(a, mode) -> None:
    e = get_filter("identity").kernel
    if mode == "reflect" and min(a.shape) < 2:
        a = np.resize(a, (2, 2))
    np.testing.assert_array_equal(correlate2d(a, e, "same", mode), a)
    np.testing.assert_array_equal(full(a, np.ones((1, 1))), a)  # the 1x1 unit impulse


# ---------------------------------------------------------------------------------------------
# The kernels on real photographs (scikit-image's test images)


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return skimage.data.camera()  # 512x512 uint8 grayscale


@pytest.mark.parametrize(
    ("name", "moved"),
    [
        ("shift_left", lambda f, g: (g[:, :-1], f[:, 1:])),  # g(i, j) = f(i, j+1)
        ("shift_right", lambda f, g: (g[:, 1:], f[:, :-1])),
        ("shift_up", lambda f, g: (g[:-1], f[1:])),
        ("shift_down", lambda f, g: (g[1:], f[:-1])),
    ],
)
def test_shift_kernels_move_the_photo_one_pixel(camera, name, moved) -> None:
    g = correlate2d(camera, get_filter(name).kernel, padding="same")
    a, b = moved(camera, g)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(g, camera)


def test_sobel_finds_vertical_and_horizontal_edges(camera) -> None:
    # Checkerboard test image: squares of 25 px with 3-px soft transitions (columns 23-25,
    # 48-50, ...). sobel_x answers only at vertical edges (column bands), sobel_y only at
    # horizontal ones (row bands); inside the squares both are exactly 0.
    board = skimage.data.checkerboard().astype(float)
    gx = correlate2d(board, get_filter("sobel_x").kernel, "same", "replicate")
    gy = correlate2d(board, get_filter("sobel_y").kernel, "same", "replicate")
    cols = np.unique(np.nonzero(gx)[1])
    rows = np.unique(np.nonzero(gy)[0])
    bands = {c for b in range(25, 200, 25) for c in range(b - 3, b + 3)}
    assert set(cols) <= bands and set(rows) <= bands
    assert len(cols) > 0 and len(rows) > 0
    # Slide 24's kernel is [1 0 -1]: dark-to-bright from left to right gives a negative response.
    step = np.tile(np.r_[np.zeros(5), np.full(5, 100.0)], (6, 1))
    assert correlate2d(step, get_filter("sobel_x").kernel)[:, 3].max() < 0
    # On the photo: sobel_y of the transposed image is the transpose of sobel_x.
    np.testing.assert_allclose(
        correlate2d(camera.T, get_filter("sobel_y").kernel, "same", "reflect"),
        correlate2d(camera, get_filter("sobel_x").kernel, "same", "reflect").T,
    )
    # ... and the photographer's tripod legs (near-vertical, around column 300, rows 250-420)
    # are much stronger in sobel_x than in sobel_y.
    gx_c = np.abs(correlate2d(camera, get_filter("sobel_x").kernel, "same", "reflect"))
    gy_c = np.abs(correlate2d(camera, get_filter("sobel_y").kernel, "same", "reflect"))
    legs = np.s_[250:420, 280:310]
    assert gx_c[legs].sum() > 2 * gy_c[legs].sum()


def test_blur_sharpen_and_colour_per_channel() -> None:
    astronaut = skimage.data.astronaut()  # 512x512x3
    box = correlate2d(astronaut, get_filter("box").kernel, "same", "reflect")
    assert box.shape == astronaut.shape
    for ch in range(3):  # colour is filtered channel by channel
        np.testing.assert_allclose(
            box[..., ch],
            correlate2d(astronaut[..., ch], get_filter("box").kernel, "same", "reflect"),
        )

    # Blurring lowers the local variation; sharpening (2*identity - box) raises it.
    def roughness(a: np.ndarray) -> float:
        return float(np.abs(np.diff(a.astype(float), axis=1)).mean())

    sharp = correlate2d(astronaut, get_filter("sharpen").kernel, "same", "reflect")
    assert roughness(box) < roughness(astronaut) < roughness(sharp)
    np.testing.assert_allclose(sharp, 2 * astronaut.astype(float) - box, atol=1e-9)


def test_kernel_table() -> None:
    for f in FILTERS.values():
        assert f.kernel.ndim == 2 and f.note and f.display in ("clip", "abs")
        with pytest.raises(ValueError):
            f.kernel[0, 0] = 1.0  # shared table is read-only
        # Intensity kernels sum to 1 (flat areas keep brightness), edge kernels to 0.
        assert f.kernel.sum() == pytest.approx(1.0 if f.display == "clip" else 0.0, abs=1e-12)
    g = gaussian(13, 1.5)  # +-4 sigma: the truncated tails hold < 1e-4 of the mass
    assert g.sum() == pytest.approx(1.0) and np.allclose(g, g.T) and np.allclose(g, g[::-1])
    r = np.arange(13) - 6
    assert (g.sum(axis=0) * r**2).sum() == pytest.approx(1.5**2, rel=1e-3)  # variance = sigma^2
    with pytest.raises(ConfigError, match="odd"):
        gaussian(4, 1.0)
    with pytest.raises(ConfigError, match="sobel_x"):
        get_filter("sobel")


def test_to_display_and_argument_errors() -> None:
    edge = np.array([[-50.0, 0.0, 100.0]])
    shown = to_display(edge, "abs")
    assert shown.dtype == np.uint8 and shown[0, 1] == 0 and shown[0, 2] == 255
    assert to_display(np.array([[-3.0, 300.0, 7.4]]), "clip").tolist() == [[0, 255, 7]]
    assert apply_filter(np.full((5, 5), 7, np.uint8), "laplacian").max() == 0  # flat: no edges
    with pytest.raises(InputSizeError, match="2-D"):
        correlate2d(np.zeros((4, 4)), np.zeros((3, 3, 3)))
    with pytest.raises(GeometryError, match="does not fit"):
        correlate2d(np.zeros((2, 2)), np.ones((3, 3)))
    with pytest.raises(GeometryError, match="padding mode"):
        correlate2d(np.zeros((4, 4)), np.ones((3, 3)), "same", mode="mirror")
    with pytest.raises(GeometryError, match="reflect"):
        correlate2d(np.zeros((2, 2)), np.ones((5, 5)), "same", mode="reflect")
