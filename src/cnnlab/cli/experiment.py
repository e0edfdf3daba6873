"""``cnnlab experiment list|run|page``: the lectures' claims as experiments anyone can rerun.

The library (:mod:`cnnlab.experiments`) does the work; this module parses and prints. Nothing
here imports torch at module level, so ``cnnlab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import shlex
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "experiment",
        help="rerun the lectures' empirical claims (degradation, batch norm, dropout...)",
        description="Experiments that test the lectures' claims on this machine: each trains "
        "its models as ordinary cnnlab runs (resumable after a kill, finished runs reused) and "
        "writes results.json, figures and summary.md saying whether the claim held.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    ls = sub.add_parser("list", help="list the experiments, their claims and tier times")
    ls.add_argument("--format", choices=("text", "json"), default="text")
    ls.set_defaults(run=run_list)

    r = sub.add_parser("run", help="run one experiment at a tier")
    r.add_argument("name", metavar="NAME", help="experiment name (see `cnnlab experiment list`)")
    r.add_argument(
        "--tier",
        choices=("smoke", "quick", "full"),
        default="quick",
        help="smoke: seconds (a test); quick: minutes on a 2-core laptop; full: the paper's "
        "scale, hours (default: quick)",
    )
    r.add_argument(
        "--data",
        metavar="NAME",
        help="dataset (default: the first of the experiment's datasets that is installed)",
    )
    r.add_argument(
        "--out", metavar="DIR", help="experiment folder (default: experiments/NAME-TIER)"
    )
    r.add_argument(
        "--resume",
        action="store_true",
        help="continue the experiment in --out: finished runs are reused, interrupted ones resume",
    )
    r.add_argument("--seed", type=int, default=0, metavar="N", help="seed of every run (default 0)")
    r.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="CPU threads per run (0: all cores this process may use)",
    )
    r.add_argument("--quiet", action="store_true", help="print only the verdict")
    r.set_defaults(run=run_experiment)

    pg = sub.add_parser(
        "page",
        help="write a Markdown page from experiment results",
        description="Gather results.json of the experiment folders given (or the folders in "
        "them), copy their figures next to the page and write it. The repository's "
        "docs/experiments.md is generated from benchmarks/results/experiments by "
        "`python -m cnnlab.dev generate`.",
    )
    pg.add_argument(
        "dirs",
        nargs="*",
        metavar="RESULT_DIR",
        default=["experiments"],
        help="experiment folders, or folders holding them (default: experiments)",
    )
    pg.add_argument("-o", "--out", required=True, metavar="FILE", help="the page to write")
    pg.add_argument(
        "--figures",
        metavar="DIR",
        help="where figures are copied (default: figures/experiments beside the page)",
    )
    pg.set_defaults(run=run_page)


def run_list(args: argparse.Namespace) -> int:
    import json

    from cnnlab.experiments import list_experiments
    from cnnlab.experiments.timings import expected

    experiments = list_experiments()
    if args.format == "json":
        rows = [
            {
                "name": e.name,
                "title": e.title,
                "claim": e.claim,
                "source": e.source,
                "data": list(e.data),
                "expected_s": {t: expected(e, t).seconds for t in e.tiers},
                "measured_on": {t: expected(e, t).measured_on for t in e.tiers},
            }
            for e in experiments
        ]
        print(json.dumps(rows, indent=1))
        return 0
    width = max((len(e.name) for e in experiments), default=4)
    for e in experiments:
        times = "; ".join(f"{t} {expected(e, t).words()}" for t in e.tiers)
        print(f"{e.name:<{width}}  {e.title}")
        print(f"{'':<{width}}  {times}")
        print(f"{'':<{width}}  data: {', '.join(e.data)}")
    print(
        f"\n{len(experiments)} experiments; run one with `cnnlab experiment run NAME --tier quick`"
    )
    return 0


def run_experiment(args: argparse.Namespace) -> int:
    from cnnlab.experiments import run_experiment as run
    from cnnlab.experiments.page import verdict_words

    result = run(
        args.name,
        tier=args.tier,
        data=args.data,
        out=args.out,
        resume=args.resume,
        seed=args.seed,
        quiet=args.quiet,
        threads=args.threads,
    )
    results = result.results
    if results["judged"] == "verdict":
        print(f"{args.name} ({args.tier}): {verdict_words(results)}. {results['verdict']}")
    else:  # the verdict text says why there is none
        print(f"{args.name} ({args.tier}): {results['verdict']}")
    print(f"results: {result.out / 'results.json'}, summary: {result.out / 'summary.md'}")
    return 0


def run_page(args: argparse.Namespace) -> int:
    from cnnlab.experiments.page import find_results, write_page

    if not find_results(args.dirs):
        from cnnlab.errors import ConfigError

        raise ConfigError(
            f"no experiment results in {' '.join(args.dirs)}: run `cnnlab experiment run NAME` "
            "first, or name the folders that hold results.json"
        )
    command = shlex.join(["cnnlab", "experiment", "page", *args.dirs, "-o", args.out])
    if args.figures:
        command += f" --figures {shlex.quote(args.figures)}"
    out = write_page(args.dirs, args.out, args.figures, command)
    print(f"wrote {out}", file=sys.stderr)
    return 0
