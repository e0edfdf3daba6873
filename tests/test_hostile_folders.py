"""Hostile image folders, generated, through ``cnnlab data info``, ``cnnlab train`` and ``predict``.

Every file cnnlab reads may be hostile. Each case below builds a small folder of good photos with
one hostile twist (a FIFO named ``x.png``, a symlink out of its class, a truncated JPEG, a
``val/`` missing a class, a 2 GiB sparse file, a name with a newline, ...) and runs it through
the real commands. What must hold, whatever the case:

- exit status 0, or 2 with exactly one ``cnnlab: error: ...`` line on stderr; never a traceback
  and never a hang: each command runs in a watchdog thread, and a FIFO folder and a FIFO given to
  ``predict`` also go through a real ``cnnlab`` process with a timeout;
- ``data info`` and ``train`` accept and refuse the same folders, skip the same files at listing
  (``data info --format json`` and the run's ``splits.json``) and the same unreadable images
  (the same note lines), and count the same readable images;
- no file is labelled from outside its class: every file of ``splits.json`` resolves inside the
  folder of the class (and split) it is labelled with, and no file is listed twice.

Commands run in-process through :func:`cnnlab.cli.main`, with stdout and stderr encoded as a
terminal would (strict UTF-8), so an unprintable file name that reaches ``print`` fails here
as it would for a user.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import stat
import struct
import subprocess
import sys
import threading
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import helpers.models  # noqa: F401  (registers tinynet)
from cnnlab.cli import main
from helpers import subprocess_env
from helpers.datasets import photos

SIZE = (12, 16)  # the photos' (H, W): tiny, so a case trains in about half a second
FAST = ["--epochs", "1", "--image-size", "16", "--batch-size", "4", "--no-progress"]
FAST += ["--stall-patience", "0", "--device", "cpu", "--threads", "1"]
WATCHDOG_S = 120  # a command that takes longer than this is taken as a hang
TRACEBACK = "Traceback (most recent call last)"


# --- running a command ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    argv: tuple[str, ...]
    rc: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def _terminal() -> io.TextIOWrapper:
    """A text stream that encodes as a UTF-8 terminal does: an unencodable name raises."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)


def in_process(argv: list[str]) -> Outcome:
    """``main(argv)`` in a watchdog thread, stdout and stderr captured; an escaped exception is
    recorded as the traceback a user would see."""
    out, err, result = _terminal(), _terminal(), {}

    def target() -> None:
        try:
            result["rc"] = main(argv)
        except BaseException:  # what would reach the user as a traceback
            result["rc"] = 1
            result["tb"] = traceback.format_exc()

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        worker = threading.Thread(target=target, daemon=True)
        worker.start()
        worker.join(WATCHDOG_S)
    assert not worker.is_alive(), f"`cnnlab {' '.join(argv)}` hung (over {WATCHDOG_S} s)"
    text = [s.buffer.getvalue().decode("utf-8", "replace") for s in (out, err)]  # type: ignore[attr-defined]
    return Outcome(tuple(argv), result["rc"], text[0], text[1] + result.get("tb", ""))


def in_subprocess(argv: list[str]) -> Outcome:
    """The real ``cnnlab`` command (with tinynet registered) in a child, under a timeout."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "helpers.tinynet_cli", *argv],
            capture_output=True,
            timeout=WATCHDOG_S,
            env=subprocess_env(OMP_NUM_THREADS="1"),
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`cnnlab {' '.join(argv)}` hung (over {WATCHDOG_S} s)")
    out, err = (b.decode("utf-8", "replace") for b in (done.stdout, done.stderr))
    return Outcome(tuple(argv), done.returncode, out, err)


def check_clean(o: Outcome) -> None:
    """Exit 0, or 2 with exactly one ``cnnlab: error:`` line; never a traceback."""
    where = f"`cnnlab {' '.join(o.argv)}`"
    assert TRACEBACK not in o.out + o.err, f"{where} raised:\n{o.err}"
    assert o.rc in (0, 2), f"{where} exited {o.rc}:\n{o.err}"
    if o.rc == 2:
        lines = o.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("cnnlab: error: "), f"{where}:\n{o.err}"
        assert lines[0].isprintable(), f"{where}: unprintable error line {lines[0]!r}"


# --- files to plant ------------------------------------------------------------------------------


@cache
def image_bytes(fmt: str) -> bytes:
    """A small noisy image in ``fmt``, as bytes (to truncate, damage and plant)."""
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width x height`` and holds one row: a bomb or an absurd shape."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = zlib.compress(b"\x00" * (min(width, 1 << 16) + 1))
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", row)


def strip(width: int, height: int) -> bytes:
    """A real image of an absurd aspect ratio (1 x 60,000)."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buf, format="PNG")
    return buf.getvalue()


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_socket(path: Path) -> None:
    """A UNIX socket at ``path`` (bound by a relative name: socket paths are short)."""
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        s = socket.socket(socket.AF_UNIX)
        s.bind(path.name)
        s.close()
    finally:
        os.chdir(here)


def make_device(path: Path) -> None:
    """A character device (``/dev/null``'s numbers) where allowed, else a symlink to it."""
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError:
        path.symlink_to("/dev/null")


def sparse(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.truncate(size)


def base(root: Path, per_class: int = 5, classes=("blue", "red")) -> Path:
    return photos(root, per_class=per_class, classes=classes, size=SIZE)


def split_layout(root: Path, val=("blue", "red"), test=("blue", "red")) -> Path:
    base(root / "train", per_class=4)
    if val is not None:
        base(root / "val", per_class=1, classes=val) if val else (root / "val").mkdir()
    if test is not None:
        base(root / "test", per_class=1, classes=test) if test else (root / "test").mkdir()
    return root


def junk_everywhere(root: Path) -> None:
    """Two classes of files named like images, none of them one."""
    for name in ("blue", "red"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            (root / name / f"{i}.jpg").write_bytes(b"junk" * i)


def plant(rel: str, data: bytes | Callable[[Path], None], layout=base) -> Callable[[Path], None]:
    """A builder: the good folder, then ``data`` (bytes, or a maker) at ``root/rel``."""

    def build(root: Path) -> None:
        layout(root)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            data(path)

    return build


def link(rel: str, target: str, layout=base) -> Callable[[Path], None]:
    """A builder: the good folder, then a symlink ``root/rel -> target`` (``{root}`` expands)."""

    def build(root: Path) -> None:
        layout(root)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target.format(root=root))

    return build


def steps(*builders: Callable[[Path], None]) -> Callable[[Path], None]:
    """A builder: each of ``builders`` in turn on the same root (only the first lays it out)."""

    def build(root: Path) -> None:
        for b in builders:
            b(root)

    return build


def nothing(root: Path) -> None:
    """A layout that lays out nothing (for builders after the first)."""


# --- the cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A hostile folder and what must come of it.

    ``expect``: ``"ok"`` (exit 0, nothing skipped), ``"note"`` (exit 0, a skip note),
    ``"ok|note"`` (exit 0 either way: a cut that may leave a whole image), ``"error"`` (exit 2,
    the line holding ``match``). ``real``: ``data info`` also runs as a real ``cnnlab``
    process, under a timeout.
    """

    id: str
    kind: str
    build: Callable[[Path], None]
    expect: str
    match: str = ""
    real: bool = False


def _cuts(fmt: str, offsets: list[int]) -> list[Case]:
    n = len(image_bytes(fmt))
    return [
        Case(
            f"truncated-{fmt.lower()}-at-{o}",
            "truncated",
            plant(f"red/cut.{fmt.lower()}", image_bytes(fmt)[:o]),
            "ok|note",
        )
        for o in sorted({min(max(o if o >= 0 else n + o, 0), n - 1) for o in offsets})
    ]


def _garbled(fmt: str, offsets: list[int]) -> list[Case]:
    """16 bytes overwritten at each offset: damage a decoder may or may not notice."""
    out = []
    blob = image_bytes(fmt)
    for o in offsets:
        o = o if o >= 0 else len(blob) + o
        bad = blob[:o] + bytes(range(0xF0, 0x100)) + blob[o + 16 :]
        out.append(
            Case(f"garbled-{fmt.lower()}-at-{o}", "garbage", plant("blue/g.jpg", bad), "ok|note")
        )
    return out


CASES: list[Case] = [
    # special files named as images: never opened, skipped with a note
    Case("fifo-in-class", "special", plant("red/x.png", make_fifo), "note", real=True),
    Case("fifo-nested", "special", plant("red/a/b/y.jpg", make_fifo), "note"),
    Case("fifo-in-val", "special", plant("val/red/x.png", make_fifo, split_layout), "note"),
    Case(
        "symlink-to-fifo",
        "special",
        steps(plant("fifo", make_fifo), link("red/p.png", "../fifo", nothing)),
        "note",
    ),
    Case("fifo-class-level", "special", plant("x.png", make_fifo), "note"),
    Case("socket-in-class", "special", plant("red/s.png", make_socket), "note"),
    Case("device-in-class", "special", plant("blue/d.jpg", make_device), "note"),
    Case("symlink-dev-zero", "special", link("blue/zero.jpg", "/dev/zero"), "note"),
    Case("symlink-dev-urandom", "special", link("red/rand.png", "/dev/urandom"), "note"),
    Case(
        "dir-named-png", "special", plant("red/folder.png/red_inner.jpg", image_bytes("JPEG")), "ok"
    ),  # fmt: skip  (a folder is walked, not read: its image counts)
    Case("empty-dir-named-jpg", "special", plant("red/empty.jpg/.keep", b""), "ok"),
    # symlinks: resolved and confined to the class folder
    Case("dir-up-to-root", "escape", link("red/up", ".."), "note"),
    Case("dir-to-sibling-class", "escape", link("red/blues", "../blue"), "note"),
    Case("dir-absolute-root-fs", "escape", link("red/everything", "/"), "note"),
    Case(
        "dir-outside-dataset",
        "escape",
        steps(
            plant("../elsewhere/e.jpg", image_bytes("JPEG")),
            link("red/e", "{root}/../elsewhere", nothing),
        ),
        "note",
    ),
    Case("file-to-sibling-class", "escape", link("red/x.jpg", "../blue/blue0.jpg"), "note"),
    Case(
        "file-absolute-outside",
        "escape",
        steps(
            plant("../o.jpg", image_bytes("JPEG")), link("red/o.jpg", "{root}/../o.jpg", nothing)
        ),
        "note",
    ),
    Case(
        "test-file-into-train",
        "escape",
        link("test/red/leak.jpg", "../../train/red/red0.jpg", split_layout),
        "note",
    ),
    Case("dir-self-loop", "loop", link("red/loop", "."), "ok"),
    Case("dir-loop-to-class-top", "loop", link("red/a/b/top", "../.."), "ok"),
    Case(
        "dir-mutual-loop",
        "loop",
        steps(link("red/p/q", "../r"), link("red/r/s", "../p", nothing)),
        "ok",
    ),
    Case(
        "dir-second-path-inside",
        "loop",
        steps(plant("red/real/r.jpg", image_bytes("JPEG")), link("red/alias", "real", nothing)),
        "ok",
    ),
    Case("file-self-loop", "loop", link("red/self.jpg", "self.jpg"), "note"),
    Case(
        "file-mutual-loop",
        "loop",
        steps(link("red/l1.png", "l2.png"), link("red/l2.png", "l1.png", nothing)),
        "note",
    ),
    Case("file-broken-link", "loop", link("blue/gone.jpg", "/nonexistent/gone.jpg"), "note"),
    Case("file-duplicate-link", "loop", link("red/dup.jpg", "red0.jpg"), "note"),
    Case("class-broken-link", "loop", link("green", "/nonexistent/green"), "note"),
    Case(
        "class-symlink-outside-ok",
        "loop",
        steps(
            lambda r: base(r.parent / "store"), link("green", "{root}/../store/red", nothing), base
        ),
        "ok",
    ),
    Case("class-alias-of-class", "overlap", link("green", "red"), "error", "same folder"),
    Case(
        "class-inside-class",
        "overlap",
        steps(plant("red/sub/s.jpg", image_bytes("JPEG")), link("green", "red/sub", nothing)),
        "error",
        "one holds the other",
    ),
    Case(
        "val-is-train",
        "overlap",
        steps(lambda r: split_layout(r, val=None), link("val", "train", nothing)),
        "error",
        "same folder",
    ),
    Case(
        "val-class-is-train-class",
        "overlap",
        steps(lambda r: split_layout(r, val=("blue",)), link("val/red", "../train/red", nothing)),
        "error",
        "same folder",
    ),
    # split folders must hold exactly the training classes
    Case(
        "val-lacks-class",
        "classes",
        lambda r: split_layout(r, val=("red",)),
        "error",
        "lacks the training class 'blue'",
    ),
    Case(
        "test-lacks-class",
        "classes",
        lambda r: split_layout(r, test=("blue",)),
        "error",
        "lacks the training class 'red'",
    ),
    Case(
        "val-empty",
        "classes",
        lambda r: split_layout(r, val=()),
        "error",
        "lacks the training class",
    ),
    Case(
        "val-extra-class",
        "classes",
        lambda r: split_layout(r, val=("blue", "green", "red")),
        "error",
        "not among the training classes",
    ),
    Case(
        "val-class-empty",
        "classes",
        steps(lambda r: split_layout(r, val=("blue",)), plant("val/red/.keep", b"", nothing)),
        "error",
        "holds no images",
    ),
    Case(
        "test-class-only-fifo",
        "classes",
        steps(
            lambda r: split_layout(r, test=("blue",)), plant("test/red/f.png", make_fifo, nothing)
        ),
        "error",
        "holds no images",
    ),
    Case("split-layout-ok", "classes", split_layout, "ok"),
    Case("split-layout-no-val", "classes", lambda r: split_layout(r, val=None), "ok"),
    # unreadable images: skipped by both commands, or an error when a class keeps none
    Case("zero-byte-png", "empty", plant("red/z.png", b""), "note"),
    Case("zero-byte-jpg", "empty", plant("blue/z.jpg", b""), "note"),
    Case("text-as-jpg", "garbage", plant("red/t.jpg", b"not an image at all\n" * 10), "note"),
    Case(
        "random-bytes-png",
        "garbage",
        plant("blue/r.png", bytes(np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8))),
        "note",
    ),
    Case(
        "png-magic-then-junk",
        "garbage",
        plant("red/m.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
        "note",
    ),
    Case(
        "jpeg-soi-then-junk",
        "garbage",
        plant("red/m.jpg", b"\xff\xd8\xff\xe0" + b"\xff" * 64),
        "note",
    ),
    Case(
        "class-all-unreadable",
        "garbage",
        steps(
            lambda r: base(r, classes=("red",)),
            plant("blue/a.jpg", b"junk", nothing),
            plant("blue/b.png", b"", nothing),
            plant("blue/c.jpg", b"junk", nothing),
            plant("blue/d.jpg", b"junk", nothing),
        ),
        "error",
        "no readable training image",
    ),
    Case("nothing-readable", "garbage", junk_everywhere, "error", "no readable training image"),
    Case(
        "val-class-all-unreadable",
        "garbage",
        steps(split_layout, plant("val/red/red0.jpg", b"junk", nothing)),
        "note",
    ),
    *_cuts("PNG", [0, 1, 8, 16, 33, 45, 90, -40, -13, -12, -1]),
    *_cuts("JPEG", [2, 4, 21, 160, 400, -200, -2, -1]),
    *_cuts("GIF", [6, 13, -2]),
    *_garbled("JPEG", [300, -300]),
    # wrong extensions
    Case("png-named-jpg", "extension", plant("red/p.jpg", image_bytes("PNG")), "ok"),
    Case("jpeg-named-upper-png", "extension", plant("red/j.PNG", image_bytes("JPEG")), "ok"),
    Case("image-named-txt", "extension", plant("red/i.txt", b"junk"), "ok"),
    Case("backup-extension", "extension", plant("red/i.jpg.bak", b"junk"), "ok"),
    Case("hidden-broken", "extension", plant("red/.hidden.png", b"junk"), "ok"),
    Case("text-link-outside", "extension", link("red/notes.txt", "/etc/hostname"), "ok"),
    Case("no-extension", "extension", plant("blue/noext", b"junk"), "ok"),
    Case("stray-image-at-root", "extension", plant("stray.jpg", image_bytes("JPEG")), "note"),
    # huge files and absurd dimensions
    Case("sparse-2gib-jpg", "huge", plant("red/huge.jpg", lambda p: sparse(p, 2**31)), "note"),
    Case(
        "sparse-200mib-png", "huge", plant("blue/big.png", lambda p: sparse(p, 200 * 2**20)), "note"
    ),
    Case("bomb-header", "huge", plant("red/bomb.png", png_header_only(100_000, 100_000)), "note"),
    Case(
        "tall-header-short-data",  # Pillow pads a short but complete zlib stream: see docs/data.md
        "huge",
        plant("red/tall.png", png_header_only(1, 2_000_000)),
        "ok|note",
    ),
    Case("strip-1x60000", "huge", plant("red/strip.png", strip(60_000, 1)), "ok"),
    Case("ppm-zero-width", "huge", plant("red/zero.ppm", b"P6\n0 5\n255\n"), "note"),
    Case("ppm-one-pixel", "huge", plant("blue/one.ppm", b"P6\n1 1\n255\n\x10\x20\x30"), "ok"),
    # names and structure
    Case(
        "unicode-classes",
        "names",
        lambda r: (base(r, classes=("blue", "red")), os.rename(r / "red", r / "rouge é 日本")),
        "ok",
    ),
    Case("spaces-and-dashes", "names", plant("red/-rf my photo.jpg", image_bytes("JPEG")), "ok"),
    Case("newline-in-file-name", "names", plant("red/new\nline.jpg", b"broken"), "note"),
    Case("non-utf8-file-name", "names", plant(os.fsdecode(b"red/odd\xff.jpg"), b"broken"), "note"),
    Case("long-file-name", "names", plant("red/" + "x" * 250 + ".jpg", image_bytes("JPEG")), "ok"),
    Case(
        "deep-nesting",
        "names",
        plant("red/" + "/".join("d" * 40) + "/deep.jpg", image_bytes("JPEG")),
        "ok",
    ),
    Case(
        "newline-in-class-name",
        "names",
        lambda r: (base(r), os.rename(r / "red", r / "re\nd")),
        "error",
        "printable",
    ),
    Case(
        "non-utf8-class-name",
        "names",
        lambda r: (base(r), os.rename(r / "red", r / os.fsdecode(b"r\xffd"))),
        "error",
        "printable",
    ),
    Case("class-folder-is-a-file", "structure", plant("green", b"a file, not a class"), "ok"),
    Case("empty-class-folder", "structure", plant("green/.keep", b""), "error", "holds no images"),
    Case(
        "single-class", "structure", lambda r: base(r, classes=("red",)), "error", "only one class"
    ),
    Case("no-classes", "structure", lambda r: r.mkdir(), "error", "no class sub-folders"),
    Case(
        "too-small-to-split",
        "structure",
        lambda r: base(r, per_class=2),
        "error",
        "cannot be split",
    ),
    Case("root-is-a-fifo", "structure", make_fifo, "error", "not a dataset"),
]


def _split_note_counts(lines: list[str]) -> dict[str, int]:
    """``{split: n}`` from the notes "skipped n unreadable file(s) of the SPLIT split"."""
    found = {}
    for line in lines:
        m = re.match(r"note: skipped (\d+) unreadable file\(s\) of the (\w+) split", line)
        if m:
            found[m[2]] = int(m[1])
    return found


def _class_folder(root: Path, record: dict, split: str, label: int) -> Path:
    """The folder the files of ``split`` labelled ``label`` must come from."""
    where = split if record["origin"][split] == "folder" else "train"
    top = root / where if record["origin"]["train"] == "folder" else root
    return top / record["classes"][label]


def check_labels(root: Path, record: dict) -> None:
    """Every file resolves inside its class (and split) folder, and none is listed twice."""
    seen = set()
    for split in ("train", "val", "test"):
        for rel, label in record[split]:
            real = os.path.realpath(root / rel)
            home = os.path.realpath(_class_folder(root, record, split, label))
            assert real.startswith(home + os.sep), f"{rel} ({split}, label {label}) is from {real}"
            assert real not in seen, f"{rel} is listed twice"
            seen.add(real)


@pytest.mark.hostile("image folders")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_folder(case: Case, tmp_path: Path) -> None:
    root, run = tmp_path / "data", tmp_path / "run"
    case.build(root)
    info = (in_subprocess if case.real else in_process)(
        ["data", "info", str(root), "--format", "json"]
    )
    text = in_process(["data", "info", str(root)])
    train = in_process(["train", "tinynet", "--data", str(root), "--out", str(run), *FAST])
    for o in (info, text, train):
        check_clean(o)
    assert info.rc == text.rc == train.rc, f"data info exits {info.rc}, train {train.rc}"
    if case.expect == "error":
        assert info.rc == 2, f"accepted:\n{info.out}"
        assert case.match in info.err and case.match in train.err, info.err + train.err
        return
    assert info.rc == 0, info.err
    report = json.loads(info.out)
    record = json.loads((run / "splits.json").read_text())
    check_labels(root, record)
    # One listing, one decoding rule: the same files skipped, the same notes, the same counts.
    assert [[s["file"], s["reason"]] for s in report["skipped"]] == record["skipped"]
    unreadable = {s: len(files) for s, files in report["unreadable"].items() if files}
    assert _split_note_counts(train.lines) == unreadable
    train_notes = [line for line in train.lines if line.startswith("note: skipped")]
    assert [n for n in train_notes if "unreadable" in n] == [
        n for n in report["notes"] if "unreadable" in n
    ]
    assert train_notes == report["notes"]
    assert all(n in text.lines for n in report["notes"])
    m = re.search(r"\((\d+) train / (\d+) val / (\d+) test images", train.out)
    assert m, train.out
    readable_train = int(m[1]) + (int(m[2]) if record["origin"]["val"] == "fraction" else 0)
    assert (report["num_train"], report["num_test"]) == (readable_train, int(m[3]))
    noted = bool(report["notes"])
    if case.expect == "ok":
        assert not noted, report["notes"]
    elif case.expect == "note":
        assert noted, "skipped nothing"
    assert all(line.isprintable() for line in text.lines + train.lines)


# --- predict: a hostile file named directly is refused with one line ------------------------------


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("predict")
    out = in_process(
        ["train", "tinynet", "--data", str(base(work / "data")), "--out", str(work / "run"), *FAST]
    )
    assert out.rc == 0, out.err
    return work / "run"


PREDICT: list[tuple[str, Callable[[Path], None], int]] = [
    ("good", lambda p: p.write_bytes(image_bytes("JPEG")), 0),
    ("png-named-jpg", lambda p: p.write_bytes(image_bytes("PNG")), 0),
    ("strip-1x60000", lambda p: p.write_bytes(strip(1, 60_000)), 0),
    ("fifo", make_fifo, 2),
    ("socket", make_socket, 2),
    ("device", make_device, 2),
    ("dev-zero", lambda p: p.symlink_to("/dev/zero"), 2),
    ("directory", lambda p: p.mkdir(), 2),
    ("missing", lambda p: None, 2),
    ("broken-link", lambda p: p.symlink_to("/nonexistent/x.jpg"), 2),
    ("link-loop", lambda p: p.symlink_to(p.name), 2),
    ("zero-byte", lambda p: p.write_bytes(b""), 2),
    ("truncated-png", lambda p: p.write_bytes(image_bytes("PNG")[:60]), 2),
    ("truncated-jpeg", lambda p: p.write_bytes(image_bytes("JPEG")[:200]), 2),
    ("text", lambda p: p.write_text("hello\n"), 2),
    ("sparse-2gib", lambda p: sparse(p, 2**31), 2),
    ("bomb", lambda p: p.write_bytes(png_header_only(100_000, 100_000)), 2),
    ("newline-name-broken", lambda p: p.write_bytes(b"junk"), 2),
]


@pytest.mark.hostile("image folders")
@pytest.mark.parametrize("name, make, rc", PREDICT, ids=[c[0] for c in PREDICT])
def test_hostile_predict(name: str, make, rc: int, photo_run: Path, tmp_path: Path) -> None:
    path = tmp_path / ("new\nline.jpg" if "newline" in name else f"{name}.jpg")
    make(path)
    execute = in_subprocess if name == "fifo" else in_process
    o = execute(["predict", str(photo_run), str(path)])
    check_clean(o)
    assert o.rc == rc, o.err
