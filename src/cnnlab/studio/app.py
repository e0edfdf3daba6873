"""The studio's Starlette app: routes, the guards on every request, and the job queue's life.

:func:`create_app` builds one app over some runs roots with a token. Every request passes
:class:`Guard` first (Host header, then token: see :mod:`cnnlab.studio.security`), so the page,
its static files, the API and the event stream are all behind the same two checks. Errors leave
as JSON ``{"error": "..."}`` with a 4xx status (a bug in a route is a 500 with its one line):
no request stops the server. Shutting the app down interrupts its running job cleanly and
says so on the studio's stderr.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from cnnlab.studio import api, architecture, labs
from cnnlab.studio.security import (
    COOKIE,
    HEADER,
    QUERY,
    Refused,
    allowed_hosts,
    check_host,
    resolve_run,
    resolve_static,
    token_matches,
)
from cnnlab.studio.state import Studio

STATIC = Path(__file__).parent / "static"


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Guard:
    """ASGI middleware: the Host check, then the token (query, cookie or header)."""

    def __init__(self, app: Any, token: str, hosts: frozenset[str]) -> None:
        self.app, self.token, self.hosts = app, token, hosts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            check_host(request.headers.get("host"), self.hosts)
        except Refused as refused:
            await error(refused.status, refused.message)(scope, receive, send)
            return
        from_query = token_matches(request.query_params.get(QUERY), self.token)
        if not (from_query or token_matches(request.cookies.get(COOKIE), self.token)
                or token_matches(request.headers.get(HEADER), self.token)):  # fmt: skip
            message = (
                "missing or wrong token: open the address with ?token= that cnnlab studio printed"
            )
            await error(401, message)(scope, receive, send)
            return
        if not from_query:
            await self.app(scope, receive, send)
            return

        async def send_cookie(message: dict) -> None:  # the page's first request: set the cookie
            if message["type"] == "http.response.start":
                cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_cookie)


def index(request: Request) -> Response:
    path = STATIC / "index.html"
    if not path.is_file():
        return error(404, "the studio's page is not installed: reinstall cnnlab")
    return FileResponse(path, headers={"Cache-Control": "no-store"})


def static(request: Request) -> Response:
    return FileResponse(resolve_static(request.path_params["name"], STATIC.resolve()))


async def refused(request: Request, exc: Exception) -> Response:
    return error(exc.status, exc.message)  # type: ignore[attr-defined]


async def cnnlab_error(request: Request, exc: Exception) -> Response:
    """A library error (a damaged file, a bad setting): its own one line names the fix."""
    from cnnlab.formats import printable

    return error(400, printable(str(exc), 2000))


async def failed(request: Request, exc: Exception) -> Response:
    from cnnlab.formats import printable

    line = printable(f"{type(exc).__name__}: {exc}", 500)
    return error(500, f"the studio failed on this request ({line}): see its terminal")


async def http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 400)
    return error(status, f"{getattr(exc, 'detail', 'bad request')}: see /api for the endpoints")


def create_app(
    roots: Sequence[str | os.PathLike[str]],
    token: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    python: str = sys.executable,
) -> Starlette:
    """The studio over ``roots`` (runs folders, each must exist), guarded by ``token``.

    Args:
        roots: folders holding runs; a run's id is its root's index and its path there; jobs
            write under the first.
        token: what every request must carry (:func:`cnnlab.studio.security.new_token`).
        host, port: the address served; requests must name it (or a loopback name) as Host.
        python: the interpreter that runs jobs (``python -m cnnlab``).
    """
    from starlette.exceptions import HTTPException

    from cnnlab.errors import CnnlabError, ConfigError

    resolved = []
    for root in roots:
        path = Path(root).resolve()
        if not path.is_dir():
            raise ConfigError(
                f"{root} is not a folder: pass folders that hold runs (default runs/)"
            )
        resolved.append(path)
    if not resolved:
        raise ConfigError("no runs folder given: pass at least one (default runs/)")
    state = Studio(resolved, python)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        import asyncio

        job = await asyncio.to_thread(state.jobs.shutdown)
        if job is not None:
            print(
                f"cnnlab studio: interrupted job {job.id} cleanly ({' '.join(job.command)}); "
                f"resume it with --resume",
                file=sys.stderr,
            )

    routes = [Route("/", index), Route("/static/{name:path}", static), *api.ROUTES,
              *labs.ROUTES, *architecture.ROUTES]  # fmt: skip
    handlers = {Refused: refused, CnnlabError: cnnlab_error, HTTPException: http_error,
                Exception: failed}  # fmt: skip
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.studio = state
    app.add_middleware(Guard, token=token, hosts=allowed_hosts(host, port))
    return app


__all__ = ["Studio", "create_app", "resolve_run"]
