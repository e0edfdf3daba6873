"""``cnnlab runs [DIR...]``: the runs under some folders side by side, with their curves."""

from __future__ import annotations

import argparse

# --format -> the RunsTable method that renders it.
FORMATS = {
    "text": "to_text",
    "markdown": "to_markdown",
    "csv": "to_csv",
    "json": "to_json",
    "html": "to_html",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "runs",
        help="list training runs side by side",
        description="List the run directories in or under DIR (default: runs/; a folder "
        "written by `cnnlab experiment run` lists the experiment's runs) with model, "
        "data, recipe, epochs done, best and final validation accuracy, test accuracy, time and "
        "status: finished (results.json written), interrupted (no results.json: resume it with "
        "`cnnlab train --resume --out RUN_DIR`), failed (results.json gives the reason) or "
        "damaged (a file is unreadable or holds a wrong value: the reason names the file and "
        "the field; the other runs are still listed).",
    )
    p.add_argument(
        "dirs", nargs="*", metavar="DIR", help="run directories or folders holding them (runs/)"
    )
    p.add_argument(
        "--plot",
        metavar="OUT.png",
        help="also write every run's validation accuracy and training loss per epoch",
    )
    p.add_argument(
        "--format", choices=tuple(FORMATS), default="text",
        help="text table, Markdown table, CSV, JSON list, or a self-contained HTML page with the "
        "curves",
    )  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.report.runs import runs_table

    table = runs_table(args.dirs or None)  # a missing DIR is an error; a missing runs/ is not
    if args.plot:
        table.plot(args.plot)
    print(getattr(table, FORMATS[args.format])())
    return 0
