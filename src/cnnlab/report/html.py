"""HTML for pages and notebooks: the Jinja2 templates, embedded pictures, number formats.

Every page cnnlab writes is one self-contained file: the style sheet is inline, pictures are
``data:`` URIs, there is no script, font, or link to anything outside the file, so a report opens
offline, can be mailed, and makes no request of any kind. The templates live in
``cnnlab/report/templates`` (package data) and are rendered with autoescaping on, so a class name
or a path with ``<`` in it is shown, never interpreted.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Collection, Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

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
    env.filters.update(pct=pct, num=num, seconds=seconds)
    return env


def render(template: str, **context: Any) -> str:
    """Render one template of ``cnnlab/report/templates`` with ``context``."""
    return environment().get_template(template).render(**context)


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    right: Collection[int] = (),
    caption: str = "",
) -> str:
    """An HTML ``<table>`` (escaped cells; the columns in ``right`` hold numbers), marked safe
    to embed in another template."""
    from markupsafe import Markup

    rendered = render(
        "table.html.j2", header=header, rows=list(rows), right=set(right), caption=caption
    )
    return Markup(rendered)


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


# --- number formats (also template filters) ------------------------------------------------------


def pct(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage (``0.9123`` -> ``91.23%``); None or NaN -> ``n/a``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.{digits}f}%"


def num(value: float | None, digits: int = 3) -> str:
    """A plain number with ``digits`` decimals; integers with thousands separators."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def seconds(value: float | None) -> str:
    """A duration: ``42.1 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if value is None:
        return "n/a"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
