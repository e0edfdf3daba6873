"""``cnnlab export RUN_DIR|CHECKPOINT --onnx OUT.onnx``: a trained model as a checked ONNX file."""

from __future__ import annotations

import argparse
import json

# Not from cnnlab.export: `cnnlab export --help` imports no PyTorch.
from cnnlab.choices import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained model to ONNX and check it against PyTorch",
        description="Export a model trained by `cnnlab train` (a run directory, its "
        "model.safetensors or a checkpoint) to one self-contained ONNX file with a dynamic batch "
        "dimension and the model's eval graph. The file carries the class names, input size "
        "and normalisation, so `cnnlab predict OUT.onnx IMAGE...` runs it on its own. After "
        "writing, the file is checked with onnx.checker and run with ONNX Runtime on a random "
        "batch against PyTorch; the largest difference is printed and a mismatch beyond "
        "rtol 1e-3 / atol 1e-5 exits with status 1.",
    )
    p.add_argument("path", metavar="RUN_DIR|CHECKPOINT", help="what `cnnlab train` wrote")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="file to write")
    p.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        metavar="N",
        help=f"ONNX opset, {MIN_OPSET} to {MAX_OPSET} (default: {DEFAULT_OPSET})",
    )
    p.add_argument(
        "--static-batch",
        action="store_true",
        help="fix the batch dimension at 1 instead of leaving it symbolic",
    )
    p.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime parity check")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.errors import ConfigError
    from cnnlab.export import check_onnx, export_onnx
    from cnnlab.run.load import load_trained

    if not str(args.onnx).endswith(".onnx"):
        raise ConfigError(f"--onnx {args.onnx!r}: the output file name must end in .onnx")
    trained = load_trained(args.path, device="cpu")
    meta = trained.meta
    # The whole run record goes into the file, so `cnnlab predict OUT.onnx` needs nothing else.
    out = export_onnx(
        trained.model,
        args.onnx,
        meta.input_size,
        opset=args.opset,
        dynamic_batch=not args.static_batch,
        metadata=meta,
    )
    report = None
    if not args.no_check:
        batch = 1 if args.static_batch else 2
        report = check_onnx(trained.model, out, meta.input_size, batch_size=batch)
    if args.format == "json":
        result = {"onnx": str(out), "model": meta.model, "source": str(trained.source)}
        result["opset"] = args.opset
        if report is not None:
            result |= {
                "ok": report.ok,
                "max_abs_diff": report.max_abs_diff,
                "max_rel_diff": report.max_rel_diff,
                "rtol": report.rtol,
                "atol": report.atol,
            }
        print(json.dumps(result))
    else:
        c, h, w = meta.input_size
        print(f"wrote {out} ({meta.model}, input Nx{c}x{h}x{w}, opset {args.opset})")
        if report is not None:
            verdict = "matches" if report.ok else "DOES NOT match"
            print(
                f"ONNX Runtime {verdict} PyTorch: max abs diff {report.max_abs_diff:.3g}, "
                f"max rel diff {report.max_rel_diff:.3g} (tolerance rtol {report.rtol:g}, "
                f"atol {report.atol:g}, batch {report.batch_size})"
            )
    return 0 if report is None or report.ok else 1
