"""read_image (modes, EXIF, alpha, animation, damage, bombs) and image folders."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab.data.images as images_mod
from cnnlab.data import dataset_info, load_dataset
from cnnlab.data.folder import list_folder
from cnnlab.data.images import image_header, read_image
from cnnlab.errors import DataError
from cnnlab.formats import printable

RNG = np.random.default_rng(0)


def rgb(h: int = 6, w: int = 5) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(arr: np.ndarray, path: Path, mode: str | None = None, **kw) -> Path:
    Image.fromarray(arr, mode=mode).save(path, **kw) if mode else Image.fromarray(arr).save(
        path, **kw
    )
    return path


# --- read_image ---------------------------------------------------------------------------------


def test_gray_and_rgb_exact(tmp_path: Path) -> None:
    g = RNG.integers(0, 256, (7, 9), dtype=np.uint8)
    x = read_image(save(g, tmp_path / "g.png"))
    assert x.dtype == torch.uint8 and x.shape == (1, 7, 9)
    assert np.array_equal(x[0].numpy(), g)
    c = rgb()
    y = read_image(save(c, tmp_path / "c.png"))
    assert y.shape == (3, 6, 5)
    assert np.array_equal(y.permute(1, 2, 0).numpy(), c)
    # gray -> 3 channels replicates; rgb -> 1 channel is ITU-R 601-2 luma
    assert torch.equal(read_image(tmp_path / "g.png", 3), x.expand(3, -1, -1))
    luma = c.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(read_image(tmp_path / "c.png", 1)[0].numpy() - luma).max() <= 1.0


def test_exif_orientation_applied(tmp_path: Path) -> None:
    arr = np.arange(2 * 3, dtype=np.uint8).reshape(2, 3) * 40
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = tmp_path / "o.png"
    img.save(p, exif=exif)
    x = read_image(p)
    assert x.shape == (1, 3, 2)
    assert np.array_equal(x[0].numpy(), np.rot90(arr, k=-1))
    assert image_header(p) == (3, 2, True)


def test_alpha_composited_on_white(tmp_path: Path) -> None:
    a = np.zeros((2, 2, 4), dtype=np.uint8)
    a[0, 0] = (10, 20, 30, 255)  # opaque: kept
    a[0, 1] = (10, 20, 30, 0)  # transparent: white
    a[1, 0] = (0, 0, 0, 128)  # half black on white: ~127
    x = read_image(save(a, tmp_path / "a.png", "RGBA"))
    assert x.shape == (3, 2, 2)
    assert x[:, 0, 0].tolist() == [10, 20, 30]
    assert x[:, 0, 1].tolist() == [255, 255, 255]
    assert all(abs(v - 127) <= 1 for v in x[:, 1, 0].tolist())
    la = np.zeros((1, 2, 2), dtype=np.uint8)
    la[0, 0] = (0, 0)  # transparent black -> white
    la[0, 1] = (50, 255)
    y = read_image(save(la, tmp_path / "la.png", "LA"))
    assert y.shape == (1, 1, 2) and y[0, 0].tolist() == [255, 50]


def test_palette_with_transparency_cmyk_bilevel_16bit(tmp_path: Path) -> None:
    p = Image.new("P", (2, 1))
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.putpixel((0, 0), 0)
    p.putpixel((1, 0), 1)
    p.info["transparency"] = 1
    p.save(tmp_path / "p.png", transparency=1)
    x = read_image(tmp_path / "p.png")
    assert x[:, 0, 0].tolist() == [255, 0, 0] and x[:, 0, 1].tolist() == [255, 255, 255]

    cmyk = Image.fromarray(rgb(), "RGB").convert("CMYK")
    cmyk.save(tmp_path / "c.tiff")
    ref = np.asarray(cmyk.convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(read_image(tmp_path / "c.tiff").numpy(), ref)

    bits = Image.fromarray(np.array([[0, 255, 0]], dtype=np.uint8)).convert("1")
    bits.save(tmp_path / "b.png")
    assert read_image(tmp_path / "b.png").tolist() == [[[0, 255, 0]]]

    deep = np.array([[0, 65535, 257 * 100, 128]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")  # 16-bit grayscale PNG
    assert read_image(tmp_path / "d.png").tolist() == [[[0, 255, 100, 0]]]


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    red = Image.new("RGB", (4, 4), (255, 0, 0))
    blue = Image.new("RGB", (4, 4), (0, 0, 255))
    red.save(tmp_path / "anim.gif", save_all=True, append_images=[blue], duration=100, loop=0)
    x = read_image(tmp_path / "anim.gif")
    assert x.shape == (3, 4, 4)
    assert x[:, 0, 0].tolist() == [255, 0, 0]


def test_resize_to_given_size(tmp_path: Path) -> None:
    x = read_image(save(rgb(40, 30), tmp_path / "big.png"), 3, size=(8, 6))
    assert x.shape == (3, 8, 6)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_truncated_image_is_an_error_naming_the_file(tmp_path: Path, fmt: str) -> None:
    p = tmp_path / f"t.{fmt}"
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(p, format=fmt)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(DataError) as err:
        read_image(p)
    text = str(err.value)
    assert str(p) in text and "\n" not in text and "replace" in text


def test_non_image_missing_and_directory(tmp_path: Path) -> None:
    t = tmp_path / "notes.png"
    t.write_text("this is not a picture\n")
    with pytest.raises(DataError, match="not an image Pillow can read"):
        read_image(t)
    with pytest.raises(DataError, match="file not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(DataError, match="is a directory"):
        read_image(tmp_path)
    with pytest.raises(DataError, match="channels=2"):
        read_image(t, channels=2)


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1))  # one row; the rest is never decoded
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bombs_refused_from_the_header(tmp_path: Path, monkeypatch) -> None:
    huge = tmp_path / "bomb.png"  # 100000 x 100000: far over the limit, refused by Pillow itself
    huge.write_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(DataError, match="decompression bomb") as err:
        read_image(huge)
    assert str(huge) in str(err.value)
    over = tmp_path / "over.png"  # just over the limit: Pillow only warns; we refuse
    over.write_bytes(png_header_only(10_000, 9_000))
    with pytest.raises(DataError, match="decompression"):
        read_image(over)
    monkeypatch.setattr(images_mod, "MAX_IMAGE_PIXELS", 10 * 10)
    with pytest.raises(DataError, match="11x11 = 121 pixels exceeds the limit of 100"):
        read_image(save(rgb(11, 11), tmp_path / "small.png"))


# --- image folders -----------------------------------------------------------------------------


def make_folder(root: Path, classes=("cat", "dog", "eel"), per_class=12, sizes=((8, 6),)):
    for k, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = sizes[i % len(sizes)]
            ext = "png" if i % 2 else "jpg"
            Image.fromarray(rgb(h, w)).save(d / f"{k}_{i}.{ext}")
        (d / "README.txt").write_text("ignored")
        (d / ".hidden.png").write_bytes(b"ignored, hidden")


def test_folder_holdout_split_is_disjoint_and_stable(tmp_path: Path) -> None:
    make_folder(tmp_path, per_class=40)
    classes, train = list_folder(tmp_path, "train")
    _, test = list_folder(tmp_path, "test")
    assert classes == ("cat", "dog", "eel")
    tr, te = {p for p, _ in train}, {p for p, _ in test}
    assert not tr & te and len(tr | te) == 120
    assert 3 <= len(te) <= 25  # about 10%
    x, y = load_dataset(tmp_path, "train")
    assert x.shape == (len(train), 3, 8, 6) and x.dtype == torch.uint8
    assert y.dtype == torch.int64 and set(y.tolist()) == {0, 1, 2}
    x2, y2 = load_dataset(tmp_path, "train")
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_folder_split_dirs_median_size_and_gray(tmp_path: Path) -> None:
    for split, n in (("train", 5), ("test", 2)):
        for name in ("a", "b"):
            d = tmp_path / split / name
            d.mkdir(parents=True)
            for i in range(n):
                h, w = (10, 12) if i else (20, 4)  # odd first image; median is 10x12
                if split == "test":
                    h, w = 30, 30  # test images differ: must still come out at train's size
                Image.fromarray(RNG.integers(0, 256, (h, w), dtype=np.uint8)).save(d / f"{i}.png")
    x, _ = load_dataset(tmp_path, "train")
    assert x.shape == (10, 1, 10, 12)
    xt, yt = load_dataset(tmp_path, "test")
    assert xt.shape == (4, 1, 10, 12) and yt.tolist() == [0, 0, 1, 1]
    xs, _ = load_dataset(tmp_path, "test", channels=3, size=(16, 16))
    assert xs.shape == (4, 3, 16, 16)


def test_folder_errors(tmp_path: Path) -> None:
    make_folder(tmp_path / "f")
    bad = tmp_path / "f" / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError) as err:
        load_dataset(tmp_path / "f", "train")
    assert str(bad) in str(err.value) or "broken.png" in str(err.value)
    (tmp_path / "g" / "empty").mkdir(parents=True)
    make_folder(tmp_path / "g", classes=("full",))
    with pytest.raises(DataError, match=r"empty.*no images"):
        load_dataset(tmp_path / "g")
    (tmp_path / "h").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        load_dataset(tmp_path / "h")
    make_folder(tmp_path / "s" / "train", classes=("x",))
    make_folder(tmp_path / "s" / "test", classes=("x", "y"))
    with pytest.raises(DataError, match="'y' is not among the training classes"):
        load_dataset(tmp_path / "s", "test")
    with pytest.raises(DataError, match="is a file, not a dataset"):
        load_dataset(bad)


def test_folder_info_measures_mean_std(tmp_path: Path) -> None:
    make_folder(tmp_path, per_class=6)
    info = dataset_info(tmp_path)
    x, _ = load_dataset(tmp_path, "train")
    f = x.double() / 255
    assert info.classes == ("cat", "dog", "eel") and info.channels == 3 and info.size == (8, 6)
    assert info.num_train == len(x)
    assert np.allclose(info.mean, f.mean(dim=(0, 2, 3)).numpy(), atol=1e-4)
    assert np.allclose(info.std, f.std(dim=(0, 2, 3), unbiased=False).numpy(), atol=1e-4)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "gif", "bmp", "webp", "tiff"])
def test_every_truncation_is_a_data_error_or_a_full_image(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / f"full.{fmt}"
    Image.fromarray(rgb(12, 10)).save(src, format=fmt)
    blob = src.read_bytes()
    step = max(1, len(blob) // 40)
    for cut in range(0, len(blob), step):
        p = tmp_path / f"cut{cut}.{fmt}"
        p.write_bytes(blob[:cut])
        try:
            x = read_image(p)
        except DataError as err:
            assert str(p) in str(err) and "\n" not in str(err)
        else:
            assert x.shape[1:] == (12, 10)  # only trailing metadata was cut


def test_folder_symlink_loop_and_memory_guard(tmp_path: Path) -> None:
    make_folder(tmp_path, classes=("a", "b"), per_class=3)
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a", target_is_directory=True)
    _, train = list_folder(tmp_path, "train")
    _, test = list_folder(tmp_path, "test")
    assert len(train) + len(test) == 6  # the loop is walked once, not forever
    with pytest.raises(DataError, match=r"GiB.*smaller size"):
        load_dataset(tmp_path, "train", size=(200_000, 200_000))


def test_special_and_huge_files_refused_without_reading(tmp_path: Path) -> None:
    """A FIFO would block a plain open forever, /dev/zero never ends: one line each, at once."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=r"FIFO \(named pipe\), not a regular file"):
        read_image(fifo)
    with pytest.raises(DataError, match="FIFO"):
        image_header(fifo)
    zero = tmp_path / "zero.jpg"
    zero.symlink_to("/dev/zero")
    with pytest.raises(DataError, match="character device"):
        read_image(zero)
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(DataError, match="is a directory"):
        read_image(tmp_path / "folder.png")
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as f:
        f.truncate(2**31)  # sparse: 2 GiB named as a photo
    with pytest.raises(DataError, match=r"2\.0 GiB, more than any image"):
        read_image(huge)
    loop = tmp_path / "loop.png"
    loop.symlink_to("loop.png")
    with pytest.raises(DataError, match="symlink loop"):
        read_image(loop)


def test_no_pixels_and_unprintable_names_are_one_printable_line(tmp_path: Path) -> None:
    empty = tmp_path / "zero.ppm"
    empty.write_bytes(b"P6\n0 5\n255\n")
    with pytest.raises(DataError, match=r"zero\.ppm"):
        read_image(empty)
    for name in ("new\nline.png", os.fsdecode(b"odd\xff.png")):
        (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n broken")
        with pytest.raises(DataError) as err:
            read_image(tmp_path / name)
        assert str(err.value).isprintable() and printable(name) in str(err.value)
    assert printable("a\nb\udcff") == "a\\x0ab\\udcff" and printable("café 日本") == "café 日本"


def test_extreme_aspect_ratio_is_resized_in_bounded_memory(tmp_path: Path) -> None:
    """1 x 100,000 at shorter side 256 would be a 6.5-gigapixel intermediate: the centre region
    is resized straight to the crop instead, with the same sampling positions."""
    strip = np.zeros((1, 100_000, 3), np.uint8)
    strip[0, 50_000 - 100 : 50_000 + 100] = 255  # a white band at the centre
    p = save(strip, tmp_path / "strip.png")
    x = read_image(p, 3, (224, 224), shorter_side=256)
    assert x.shape == (3, 224, 224) and x.float().mean() > 100
    small = save(strip[:, 49_000:51_000], tmp_path / "small.png")  # the ordinary path
    assert read_image(small, 3, (224, 224), shorter_side=256).shape == (3, 224, 224)
