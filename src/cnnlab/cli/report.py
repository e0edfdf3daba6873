"""``cnnlab report RUN_DIR [-o report.html]``: one self-contained HTML page of a run."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="write one self-contained HTML page about a run",
        description="Write one HTML file about a training run: model, data and recipe, the "
        "command that reproduces it, versions and machine, loss/accuracy/learning-rate curves, "
        "the confusion matrix, per-class precision/recall/F1, the most confused pairs, the worst "
        "errors, the first training batch as the model saw it, the per-layer table and timings. "
        "Styles and images are inside the file; it runs no script and makes no request, so it "
        "opens offline and can be sent as it is.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `cnnlab train`")
    p.add_argument(
        "-o", "--out", metavar="FILE", help="where to write the page (default: RUN_DIR/report.html)"
    )
    p.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="predict only the first N test images for the gallery (default: all the run used)",
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="cpu",
        help="where the test images are predicted again (default: cpu)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.errors import ConfigError
    from cnnlab.formats import printable
    from cnnlab.report.page import write_report
    from cnnlab.run.device import preserved_process_state, set_threads

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1 (got {args.limit})")
    with preserved_process_state():
        set_threads(0)
        path = write_report(args.run_dir, args.out, device=args.device, limit=args.limit)
    print(printable(str(path)))
    return 0
