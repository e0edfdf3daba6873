"""``cnnlab show RUN_DIR|CHECKPOINT [IMAGE...] --what WHAT -o OUT.png``: see inside a network."""

from __future__ import annotations

import argparse

from cnnlab.choices import WHAT  # not cnnlab.seeing: `cnnlab show --help` imports no PyTorch


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
        description="Draw one picture of a model trained by `cnnlab train`: first-layer "
        "filters, feature maps, saliency (gradient and SmoothGrad), Grad-CAM, occlusion "
        "sensitivity, a unit's theoretical and effective receptive field, the dataset patches "
        "that most activate each channel, the most confident mistakes, or the penultimate "
        "features in 2-D. Images are read, converted and resized as `cnnlab predict` does; "
        "without IMAGE the run's own test images are used. Layers are named as in "
        "`cnnlab summary` (docs/seeing.md lists each picture's default layer).",
    )
    p.add_argument("path", metavar="RUN_DIR|CHECKPOINT", help="what `cnnlab train` wrote")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (default: test images)")
    p.add_argument("--what", choices=WHAT, required=True, help="the picture to draw")
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
        help="class index or name to explain (default: each image's prediction)",
    )
    p.add_argument(
        "--data", metavar="NAME|PATH", help="dataset of the test images (default: the run's)"
    )
    p.add_argument("--data-dir", metavar="DIR", help="where datasets are looked up first")
    p.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="test images to use (default: 1-4 per-image pictures; 2,000 for patches and "
        "embeddings; all for errors)",
    )
    p.add_argument("--unit", type=_unit, metavar="I,J", help="rf: the unit (default: the centre)")
    p.add_argument("--window", type=int, metavar="PX", help="occlusion square (default: side/7)")
    p.add_argument("--stride", type=int, metavar="PX", help="occlusion step (default: window/2)")
    p.add_argument(
        "--samples",
        type=int,
        metavar="N",
        help="SmoothGrad's noisy copies (25) or rf's random inputs (16)",
    )
    p.add_argument(
        "--embedding",
        choices=("pca", "tsne"),
        default="pca",
        help="embeddings: PCA, or t-SNE (needs scikit-learn) (default: pca)",
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
