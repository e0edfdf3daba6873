"""``cnnlab show RUN_DIR|CHECKPOINT [IMAGE...] --what WHAT -o OUT.png``: see inside a network.

The pictures, their help and the flags' help that names them come from the table
:data:`cnnlab.seeing.views.VIEWS`, which imports nothing heavy: ``--help`` needs no PyTorch.
"""

from __future__ import annotations

import argparse

from cnnlab.seeing.views import VIEWS, WHAT

DESCRIPTION = """\
Draw one picture of a model trained by `cnnlab train`. Images are read,
converted and resized as `cnnlab predict` does; without IMAGE the run's own
test images are used. Layers are named as in `cnnlab summary` (docs/seeing.md
gives each picture's default layer and what it shows).
"""


def _pictures() -> str:
    """The epilog: one line per row of the table."""
    width = max(map(len, WHAT)) + 2
    return "pictures (--what):\n" + "\n".join(f"  {v.name:<{width}}{v.help}" for v in VIEWS)


def _users(option: str) -> str:
    """The pictures that take an option, for its help: ``"saliency, rf"``."""
    return ", ".join(v.name for v in VIEWS if option in v.options)


def _limits() -> str:
    """How many test images each picture uses by default: ``"1 for maps, rf; ..."``."""
    by_limit: dict[int | None, list[str]] = {}
    for v in VIEWS:
        if v.images != "none":
            by_limit.setdefault(v.limit, []).append(v.name)
    return "; ".join(
        f"{'all' if n is None else f'{n:,}'} for {', '.join(names)}"
        for n, names in by_limit.items()
    )


def _unit(text: str) -> tuple[int, int]:
    try:
        i, j = (int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I,J (e.g. 3,3), got {text!r}") from None
    return i, j


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "show",
        help="draw what a trained network computes: filters, maps, Grad-CAM, ...",
        description=DESCRIPTION,
        epilog=_pictures(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", metavar="RUN_DIR|CHECKPOINT", help="what `cnnlab train` wrote")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (default: test images)")
    p.add_argument("--what", choices=WHAT, required=True, help="the picture to draw (see below)")
    p.add_argument(
        "-o", "--out", required=True, metavar="OUT.png", help="figure to write (.png, .svg, .pdf)"
    )
    p.add_argument(
        "--layer", metavar="NAME", help="analyzer row or module path (default: per picture)"
    )
    p.add_argument(
        "--class",
        dest="target",
        metavar="C",
        help=f"{_users('target')}: class index or name to explain (default: each image's "
        "prediction)",
    )
    p.add_argument(
        "--data", metavar="NAME|PATH", help="dataset of the test images (default: the run's)"
    )
    p.add_argument("--data-dir", metavar="DIR", help="where datasets are looked up first")
    p.add_argument(
        "--limit", type=int, metavar="N", help=f"test images to use (default: {_limits()})"
    )
    p.add_argument(
        "--unit",
        type=_unit,
        metavar="I,J",
        help=f"{_users('unit')}: the unit (default: the centre)",
    )
    p.add_argument(
        "--window",
        type=int,
        metavar="PX",
        help=f"{_users('window')}: the grey square's side (default: side/7)",
    )
    p.add_argument(
        "--stride",
        type=int,
        metavar="PX",
        help=f"{_users('stride')}: the square's step (default: window/2)",
    )
    p.add_argument(
        "--samples",
        type=int,
        metavar="N",
        help=f"{_users('samples')}: SmoothGrad's noisy copies (25), the effective field's "
        "random inputs (16)",
    )
    p.add_argument(
        "--embedding",
        choices=("pca", "tsne"),
        default="pca",
        help=f"{_users('method')}: PCA, or t-SNE (needs scikit-learn) (default: pca)",
    )
    p.add_argument("--dpi", type=float, default=150, help="figure resolution (default: 150)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.errors import ConfigError
    from cnnlab.run.device import set_threads
    from cnnlab.seeing.show import show

    for flag in ("limit", "window", "stride", "samples"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ConfigError(f"--{flag} must be at least 1 (got {value})")
    if args.device == "cpu":
        set_threads(0)
    shown = show(
        args.path,
        args.images,
        args.what,
        layer=args.layer,
        target=args.target,
        path=args.out,
        data=args.data,
        data_dir=args.data_dir,
        limit=args.limit,
        unit=args.unit,
        window=args.window,
        stride=args.stride,
        samples=args.samples,
        method=args.embedding,
        device=args.device,
        dpi=args.dpi,
    )
    print(shown.summary)
    return 0
