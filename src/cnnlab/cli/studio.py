"""``cnnlab studio [DIR ...]``: serve the local web app over the runs under DIR (default runs/)."""

from __future__ import annotations

import argparse
import sys

DEFAULT_PORT = 6070


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "studio",
        help="a local web app: watch training live, compare runs, inspect a trained network",
        description="Serve cnnlab studio over the runs under DIR (default: runs/) on the "
        "loopback address, and open it in the browser. The address carries a token made at "
        "each start; only requests with it (and with this address as their Host) are answered. "
        "Jobs started from the page run `cnnlab train` in the first DIR; Ctrl-C stops the "
        "studio and interrupts its running job cleanly (resumable).",
    )
    p.add_argument("dirs", nargs="*", metavar="DIR", help="folders holding runs (default: runs/)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0: any free port)")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")  # fmt: skip
    p.add_argument("--no-browser", action="store_true", help="print the address, open nothing")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import socket
    import threading
    import webbrowser
    from pathlib import Path

    import uvicorn

    from cnnlab.errors import ConfigError
    from cnnlab.studio.app import create_app
    from cnnlab.studio.security import is_loopback, new_token

    dirs = args.dirs or ["runs"]
    if not args.dirs:
        Path("runs").mkdir(exist_ok=True)  # a fresh folder: the studio starts with no runs
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a port: use 1-65535 (0: any free one)")
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    try:
        sock.bind((args.host, args.port))
    except OSError as err:
        raise ConfigError(
            f"cannot listen on {args.host}:{args.port} ({err.strerror}): pick another --port"
        ) from None
    port = sock.getsockname()[1]
    token = new_token()
    app = create_app(dirs, token, host=args.host, port=port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{'127.0.0.1' if is_loopback(args.host) else shown}:{port}/?token={token}"
    if not is_loopback(args.host):
        print(f"cnnlab studio: warning: listening on {args.host}, reachable from other machines; "
              "anyone with the token can start jobs", file=sys.stderr)  # fmt: skip
    print(f"cnnlab studio: serving {', '.join(dirs)} at\n  {url}\nCtrl-C stops it.", flush=True)
    if not args.no_browser:
        threading.Timer(0.3, webbrowser.open, (url,)).start()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
    return 0
