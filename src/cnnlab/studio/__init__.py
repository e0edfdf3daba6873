"""cnnlab studio: a local web app to watch training live, compare runs and question a network.

``cnnlab studio [DIR ...]`` serves the runs under the given folders (default ``runs/``) on the
loopback address, behind a token made at each start (:mod:`cnnlab.studio.security`). The page
(``static/``, plain ES modules, no build step) lists every run with its status, overlays curves,
updates a running run live from its step log (:mod:`cnnlab.studio.live`), starts, stops and
resumes ``cnnlab train`` and ``cnnlab experiment run`` jobs one at a time
(:mod:`cnnlab.studio.jobs`), shows a finished run's report data and answers "what does it
predict here, and why?" with ``cnnlab predict``'s and ``cnnlab show``'s own functions
(:mod:`cnnlab.studio.inspect`). Every route is a thin call into the library
(:mod:`cnnlab.studio.api`); PyTorch is imported only when a view needs it, so the first page is
served at once.

    from cnnlab.studio import create_app
    app = create_app(["runs"], token="...")   # an ASGI app: uvicorn.run(app, port=8000)
"""

from __future__ import annotations

from cnnlab.lazy import lazy_exports

__all__ = ["create_app"]

__getattr__ = lazy_exports(__name__, {"create_app": "cnnlab.studio.app"})
