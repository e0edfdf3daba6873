"""The studio's guards: the token, the Host header, and paths confined to the runs roots.

The model is Jupyter's and TensorBoard's local servers: a random token made at each start
(:func:`new_token`) that the first page request carries in its address and the server swaps for
an ``HttpOnly``, ``SameSite=Strict`` cookie; every later request carries the cookie or the
``X-Cnnlab-Token`` header. The Host header must name the address the server listens on, so a
web page on another origin that re-points its own name at 127.0.0.1 (DNS rebinding) is refused.

Paths: a run id is ``ROOT_INDEX/relative/path``; :func:`resolve_run` turns it into a directory
strictly inside that root after resolving every symlink, refusing ``..``, absolute parts,
encoded dots and anything that leaves the root, with one line naming the problem.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Sequence
from pathlib import Path

COOKIE = "cnnlab_studio"
HEADER = "X-Cnnlab-Token"
QUERY = "token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class Refused(Exception):
    """A request the studio answers with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def new_token() -> str:
    """A fresh random token (192 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison (no timing oracle on the token)."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host header values a request may carry: the loopback names and ``--host``."""
    named = f"[{host}]" if ":" in host and not host.startswith("[") else host
    names = {*LOOPBACK_NAMES, named}
    return frozenset(f"{name}:{port}" for name in names)


def check_host(header: str | None, allowed: frozenset[str]) -> None:
    """Refuse a Host header that is not one of ``allowed`` (403)."""
    if header is None or header.lower() not in allowed:
        raise Refused(
            403,
            "this Host header is not the studio's address (a DNS-rebinding guard): open the "
            "address cnnlab studio printed",
        )


def _parts(run_id: str) -> tuple[int, list[str]]:
    """The root index and the path parts of ``run_id``, refusing what could leave a root."""
    if not run_id or "\x00" in run_id or "\\" in run_id:
        raise Refused(404, f"no run {run_id!r}: pick a run id from /api/runs")
    index, _, rest = run_id.partition("/")
    if not index.isdigit():
        raise Refused(404, f"no run {run_id!r}: a run id starts with its root's index, as 0/demo")
    parts = rest.split("/") if rest else []
    for part in parts:
        # ".." and "." (however they were encoded: the router decoded them already), empty parts
        # ("a//b", an absolute path after the index) and hidden folders are never a run's path
        if part in ("", ".", "..") or part.startswith("."):
            raise Refused(
                404, f"no run {run_id!r}: a run id is a path inside a root, without '..' or '.'"
            )
    return int(index), parts


def resolve_run(run_id: str, roots: Sequence[Path]) -> Path:
    """The directory named by ``run_id``, strictly inside its root after resolving symlinks.

    Raises:
        Refused: 404 for an id that names nothing inside the roots (or would leave one).
    """
    index, parts = _parts(run_id)
    if index >= len(roots):
        raise Refused(404, f"no run {run_id!r}: there are {len(roots)} roots")
    root = roots[index]
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root) or not path.is_dir():
        raise Refused(404, f"no run {run_id!r} inside {root}: pick a run id from /api/runs")
    return path


def run_id(path: Path, roots: Sequence[Path]) -> str | None:
    """The id of a directory inside one of ``roots`` (the first that holds it), else None."""
    resolved = path.resolve()
    for i, root in enumerate(roots):
        if resolved == root:
            return str(i)
        if resolved.is_relative_to(root):
            return f"{i}/{resolved.relative_to(root).as_posix()}"
    return None


def resolve_static(name: str, folder: Path) -> Path:
    """A file of the package's ``static/`` folder, never outside it (404)."""
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in parts):
        raise Refused(404, f"no static file {name!r}")
    path = folder.joinpath(*parts).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        raise Refused(404, f"no static file {name!r}")
    return path
