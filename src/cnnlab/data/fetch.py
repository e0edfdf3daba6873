"""Finding a dataset on disk, and downloading it with a checksum when it is nowhere.

Lookup order (also in docs/data.md, "Where data comes from"), first match wins, per split:

1. ``root=`` / ``--data-dir DIR``, then ``$CNNLAB_DATA``: ``DIR/<dataset>/`` or ``DIR`` itself
   (so you can point at the folder that holds the files), or torchvision's layout
   ``DIR/FashionMNIST/raw`` / ``DIR/MNIST/raw``;
2. the user cache ``$XDG_CACHE_HOME/cnnlab/<dataset>`` (``~/.cache/cnnlab/<dataset>``);
3. system copies ``/usr/share/datasets/<dataset>`` (Debian's ``dataset-fashion-mnist``);
4. a download from the dataset's canonical address into the first writable place of
   ``root``/``$CNNLAB_DATA``/the cache, with a progress bar and a SHA-256 check.

A download streams through :func:`cnnlab.files.atomic_write`: the file appears under its name
only after its length and SHA-256 digest check out, so an interrupted or damaged download never
leaves a file that looks complete. ``$CNNLAB_DATA_URL`` (or ``base_url=``) replaces the canonical
addresses by a mirror that serves ``<base>/<dataset>/<file name>``; the tests use it to point at a
local HTTP server. ``$CNNLAB_DOWNLOAD_TIMEOUT`` sets the socket timeout in seconds (default 30).

Found files are checked by :func:`verify_files` before every load (hashing costs a fraction of
decompressing): the published SHA-256, or the digest of the uncompressed content where it is on
record, so a raw copy passes too. ``cnnlab data info`` reports each file's status.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import os
import socket
import tarfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cnnlab import files
from cnnlab.data.datasets import DataFile, DatasetInfo
from cnnlab.errors import DataError

__all__ = [
    "Location",
    "cache_dir",
    "download",
    "fetch_files",
    "file_status",
    "locate",
    "search_dirs",
    "verify_files",
]

ENV_DATA = "CNNLAB_DATA"
ENV_URL = "CNNLAB_DATA_URL"
ENV_TIMEOUT = "CNNLAB_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT = 30.0  # seconds without a byte before a download gives up
#: Where distributions install datasets (Debian: /usr/share/datasets/fashion-mnist).
SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)
#: torchvision's folder names, so an existing torchvision download is found too.
_TORCHVISION_DIRS = {"fashion-mnist": "FashionMNIST/raw", "mnist": "MNIST/raw"}
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """The user cache root, ``$XDG_CACHE_HOME/cnnlab`` or ``~/.cache/cnnlab``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "cnnlab"


def search_dirs(name: str, root: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """Directories searched for dataset ``name``, in order, each with the step that gave it."""
    dirs: list[tuple[Path, str]] = []
    explicit = [(root, "--data-dir")] if root is not None else []
    if os.environ.get(ENV_DATA):
        explicit.append((os.environ[ENV_DATA], f"${ENV_DATA}"))
    for base, step in explicit:
        base = Path(base).expanduser()
        dirs.append((base / name, step))
        dirs.append((base, step))
        if name in _TORCHVISION_DIRS:
            dirs.append((base / _TORCHVISION_DIRS[name], step))
    dirs.append((cache_dir() / name, "user cache"))
    dirs.extend((d / name, "system copy") for d in SYSTEM_DIRS)
    return dirs


@dataclass
class Location:
    """Where the files of one split were found.

    Attributes:
        directory: The folder that holds them.
        step: Which lookup step found it (``"--data-dir"``, ``"$CNNLAB_DATA"``, ``"user cache"``,
            ``"system copy"``, ``"download"``).
        paths: For each :class:`DataFile` name, the file on disk (a raw IDX copy may stand in for
            a ``.gz``). Empty when the split is read out of ``archive``.
        archive: A CIFAR-10 tarball to read the split from when it was not unpacked.
    """

    directory: Path
    step: str
    paths: dict[str, Path] = field(default_factory=dict)
    archive: Path | None = None


def _candidates(directory: Path, f: DataFile) -> list[Path]:
    out = [directory / f.name]
    if f.name.endswith(".gz"):  # an uncompressed copy is as good
        out.append(directory / f.name[: -len(".gz")])
    if f.member:  # unpacked archive: the member's folder, or the file loose in the directory
        out.insert(0, directory / f.member)
    return out


def _find_in(info: DatasetInfo, directory: Path, split: str) -> Location | None:
    paths: dict[str, Path] = {}
    for f in info.split_files(split):
        hit = next((p for p in _candidates(directory, f) if p.is_file()), None)
        if hit is None:
            break
        paths[f.name] = hit
    else:
        return Location(directory, "", paths)
    archive = next((f for f in info.files if f.role == "archive"), None)
    if archive is not None and (directory / archive.name).is_file():
        return Location(directory, "", {}, directory / archive.name)
    return None


def locate(info: DatasetInfo, split: str, root: str | os.PathLike | None = None) -> Location | None:
    """Find the files of ``split`` following the lookup order, or ``None``."""
    for directory, step in search_dirs(info.name, root):
        loc = _find_in(info, directory, split)
        if loc is not None:
            loc.step = step
            return loc
    return None


def _content_sha256(path: Path) -> str:
    """SHA-256 of the file's content, gunzipped if it is gzip (detected by its first bytes)."""
    with open(path, "rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
    if not compressed:
        return files.sha256_file(path)
    h = files.sha256()
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_status(f: DataFile, path: Path) -> str:
    """Check one found file against the published digests.

    A file passes if its SHA-256 is one of ``f.sha256`` (the published file, or a known
    repackaging), or else if the SHA-256 of its (gunzipped) content is one of
    ``f.content_sha256``, so a raw or re-compressed copy of the right data passes too.

    Returns:
        ``"ok"``, ``"ok (content)"``, ``"MISMATCH (...)"`` or ``"not checked (...)"`` when no
        digest applies (a raw copy of a file whose content digest is not on record).
    """
    try:
        if files.sha256_file(path) in f.sha256:
            return "ok"
        if f.content_sha256:
            digest = _content_sha256(path)
            if digest in f.content_sha256:
                return "ok (content)"
            return f"MISMATCH (content sha256 {digest[:16]}...)"
    except (OSError, EOFError, zlib.error) as err:
        return f"MISMATCH (unreadable: {err})"
    if path.name != f.name:
        return "not checked (no digest on record for this uncompressed copy)"
    return f"MISMATCH (sha256 {files.sha256_file(path)[:16]}...)"


def verify_files(info: DatasetInfo, loc: Location, split: str) -> None:
    """Raise DataError unless every file ``load_dataset`` is about to read passes
    :func:`file_status`. Catches the other dataset's files under the same names (MNIST and
    Fashion-MNIST share all four) as well as damage that leaves the headers intact."""
    checks: list[tuple[DataFile, Path]] = []
    if loc.archive is not None:
        checks.append((next(f for f in info.files if f.role == "archive"), loc.archive))
    else:
        checks.extend((f, loc.paths[f.name]) for f in info.split_files(split))
    for f, path in checks:
        status = file_status(f, path)
        if status.startswith("MISMATCH"):
            fix = (
                f"run `cnnlab data fetch {info.name}` for a good copy in your cache, which is "
                "searched before system copies"
                if loc.step == "system copy"
                else f"delete it and run `cnnlab data fetch {info.name}`"
            )
            raise DataError(
                f"{path}: not the published {info.name} file {f.name} ({status.lower()}); it "
                f"may be another dataset's file of the same name, or damaged: {fix} (or load "
                "with verify=False to use it anyway)"
            )


def _timeout(timeout: float | None) -> float:
    if timeout is not None:
        return timeout
    raw = os.environ.get(ENV_TIMEOUT)
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise DataError(
            f"${ENV_TIMEOUT}={raw!r} is not a number of seconds; set it to e.g. 60"
        ) from None
    if value <= 0:
        raise DataError(f"${ENV_TIMEOUT}={raw!r} must be positive; set it to e.g. 60")
    return value


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: tuple[str, ...],
    *,
    timeout: float | None = None,
    progress: bool | None = None,
    offline_fix: str = "",
) -> Path:
    """Download ``url`` to ``dest`` through a temporary file, checking length and SHA-256.

    Args:
        url: Address to fetch (http, https or file).
        dest: Final path; its folder is created. Replaced only by a verified download.
        sha256: Accepted hex digests; an empty tuple skips the check (not used by cnnlab).
        timeout: Socket timeout in seconds (default ``$CNNLAB_DOWNLOAD_TIMEOUT`` or 30).
        progress: Show a tqdm bar on stderr; ``None`` shows it only on a terminal.
        offline_fix: Extra advice appended when the address cannot be reached.

    Returns:
        ``dest`` as a Path.

    Raises:
        DataError: unreachable address, HTTP error, timeout, truncated body, checksum mismatch,
            unwritable destination. The message names the address and the fix.
    """
    dest = Path(dest)
    seconds = _timeout(timeout)
    fix_offline = offline_fix or f"check your connection, or copy {dest.name} into {dest.parent}"
    with contextlib.ExitStack() as stack:
        # The temporary file exists before the request, so an unwritable folder fails first;
        # any exception below removes it and leaves ``dest`` as it was.
        try:
            out = stack.enter_context(files.atomic_write(dest))
        except OSError as err:
            raise DataError(
                f"cannot write to {dest.parent} ({err.strerror}); pass --data-dir DIR (or set "
                f"${ENV_DATA}) to a writable folder"
            ) from None
        with _open(url, seconds, fix_offline) as response:
            got = _receive(response, out, url, seconds, desc=dest.name, progress=progress)
        if sha256 and got not in sha256:
            raise DataError(
                f"checksum mismatch for {url}: sha256 {got}, expected {sha256[0]}; the file is "
                f"damaged or the server sends a different file: try again, or use another mirror "
                f"with ${ENV_URL}"
            )
    return dest


def _open(url: str, seconds: float, fix_offline: str) -> Any:
    """The response to a GET of ``url``; DataError naming the fix when there is none."""
    request = urllib.request.Request(url, headers={"User-Agent": "cnnlab"})
    try:
        return urllib.request.urlopen(request, timeout=seconds)
    except urllib.error.HTTPError as err:
        raise DataError(
            f"download of {url} failed: HTTP {err.code} {err.reason}; {fix_offline}"
        ) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, (TimeoutError, socket.timeout)):
            reason = f"no answer within {seconds:g} s"
        raise DataError(f"cannot reach {url} ({reason}); {fix_offline}") from None


def _receive(
    response: Any, out: IO[bytes], url: str, seconds: float, *, desc: str, progress: bool | None
) -> str:
    """Copy the body into ``out`` with a progress bar; check its length; return its SHA-256."""
    from tqdm.auto import tqdm

    digest = files.sha256()
    received = 0
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    bar = tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        disable=None if progress is None else not progress,
        leave=False,
    )
    with bar:
        try:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        except http.client.IncompleteRead as err:
            received += len(err.partial)
            total = total or received + (err.expected or 1)
        except TimeoutError:
            raise DataError(
                f"download of {url} stalled: no data within {seconds:g} s after "
                f"{received} bytes; try again, or raise ${ENV_TIMEOUT}"
            ) from None
        except OSError as err:
            raise DataError(
                f"download of {url} broke off after {received} bytes ({err}); try again"
            ) from None
    if total is not None and received != total:
        raise DataError(f"download of {url} is truncated: {received} of {total} bytes; try again")
    return digest.hexdigest()


def base_url_for(info: DatasetInfo, base_url: str | None = None) -> str:
    """The address files are fetched from: ``base_url``/``$CNNLAB_DATA_URL`` or canonical."""
    override = base_url or os.environ.get(ENV_URL)
    if override:
        return f"{override.rstrip('/')}/{info.name}/"
    return info.url


def download_dir(info: DatasetInfo, root: str | os.PathLike | None = None) -> Path:
    """Where a download goes: ``root/<dataset>``, ``$CNNLAB_DATA/<dataset>`` or the cache."""
    if root is not None:
        return Path(root).expanduser() / info.name
    if os.environ.get(ENV_DATA):
        return Path(os.environ[ENV_DATA]).expanduser() / info.name
    return cache_dir() / info.name


def _unpack(info: DatasetInfo, archive: Path, directory: Path) -> None:
    """Extract the known members of a verified archive (nothing else, no path from the tar)."""
    wanted = {f.member: f for f in info.files if f.member}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                f = wanted.get(member.name)
                if f is None or not member.isfile():
                    continue
                src = tar.extractfile(member)
                assert src is not None  # isfile() members always have data
                with files.atomic_write(directory / f.member) as out:
                    digest = files.sha256()
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                    if digest.hexdigest() not in f.sha256:
                        raise DataError(
                            f"{archive}: member {member.name} fails its checksum; delete the "
                            f"archive and run `cnnlab data fetch {info.name}`"
                        )
                del wanted[member.name]
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataError(
            f"{archive}: cannot unpack ({err}); delete it and run `cnnlab data fetch {info.name}`"
        ) from None
    if wanted:
        raise DataError(
            f"{archive}: lacks {', '.join(sorted(wanted))}; delete it and run "
            f"`cnnlab data fetch {info.name}`"
        )


def fetch_files(
    info: DatasetInfo,
    root: str | os.PathLike | None = None,
    *,
    base_url: str | None = None,
    timeout: float | None = None,
    progress: bool | None = None,
    force: bool = False,
) -> Path:
    """Make sure both splits of ``info`` are on disk; download what is missing.

    Files already present anywhere in the lookup order are kept if they pass
    :func:`verify_files`, unless ``force``.
    Downloads go to :func:`download_dir`; an archive (CIFAR-10) is unpacked there and removed.

    Returns:
        The directory that now holds the dataset (the first found, or the download folder).
    """
    if not force:
        train, test = locate(info, "train", root), locate(info, "test", root)
        if train is not None and test is not None and train.directory == test.directory:
            try:
                verify_files(info, train, "train")
                verify_files(info, test, "test")
                return train.directory
            except DataError:
                pass  # a damaged or foreign copy: download a good one (found first from now on)
    directory = download_dir(info, root)
    base = base_url_for(info, base_url)
    offline = (
        f"if this machine is offline, copy {', '.join(f.name for f in info.files if not f.member)}"
        f" ({info.homepage}) into {directory} or point --data-dir / ${ENV_DATA} at them"
    )
    archive = next((f for f in info.files if f.role == "archive"), None)
    if archive is not None:
        have = all((directory / f.member).is_file() for f in info.files if f.member)
        if force or not have:
            path = download(
                base + archive.name,
                directory / archive.name,
                archive.sha256,
                timeout=timeout,
                progress=progress,
                offline_fix=offline,
            )
            _unpack(info, path, directory)
            path.unlink()
        return directory
    for f in info.files:
        path = directory / f.name
        if not force and path.is_file() and files.sha256_file(path) in f.sha256:
            continue
        download(
            base + f.name, path, f.sha256, timeout=timeout, progress=progress, offline_fix=offline
        )
    return directory
