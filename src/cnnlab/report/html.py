"""HTML pages: the Jinja2 templates and embedded pictures.

Every page cnnlab writes is one self-contained file: the style sheet is inline, pictures are
``data:`` URIs, there is no script, font, or link to anything outside the file, so a report opens
offline, can be mailed, and makes no request of any kind. The templates live in
``cnnlab/report/templates`` (package data) and are rendered with autoescaping on, so a class name
or a path with ``<`` in it is shown, never interpreted. A table on a page is rendered by
:func:`cnnlab.table.html` (the renderer of every table cnnlab shows) and its numbers formatted by
:mod:`cnnlab.formats`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Collection, Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from cnnlab import table as tables
from cnnlab.errors import ConfigError

if TYPE_CHECKING:
    import jinja2
    import torch
    from matplotlib.figure import Figure

FIGURE_DPI = 100  # embedded figures: sharp at their CSS size, a few tens of KB each


@cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment over cnnlab's templates (autoescaped, undefined names raise)."""
    try:
        import jinja2
    except ImportError as err:
        raise ConfigError(
            f"HTML reports need Jinja2 ({err}): install it with `pip install jinja2`"
        ) from None
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cnnlab.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def render(template: str, **context: Any) -> str:
    """Render one template of ``cnnlab/report/templates`` with ``context``."""
    return environment().get_template(template).render(**context)


def table(
    header: Sequence[str] | None,
    rows: Iterable[Sequence[str]],
    right: Collection[int] = (),
    *,
    caption: str = "",
    footer: Sequence[str] | None = None,
) -> str:
    """:func:`cnnlab.table.html` (escaped cells; the columns in ``right`` hold numbers), marked
    safe to embed in a template."""
    from markupsafe import Markup

    return Markup(tables.html(header, rows, right, caption=caption, footer=footer))


# --- pictures as data URIs -----------------------------------------------------------------------


def figure_uri(fig: Figure, dpi: float = FIGURE_DPI) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return png_uri(buf.getvalue())


def image_uri(image: torch.Tensor) -> str:
    """A uint8 ``(C, H, W)`` image (C = 1 or 3) as a PNG data URI, pixel for pixel."""
    from PIL import Image

    array = image.detach().cpu().permute(1, 2, 0).numpy()
    picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    buf = io.BytesIO()
    picture.save(buf, format="PNG", optimize=True)
    return png_uri(buf.getvalue())


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
