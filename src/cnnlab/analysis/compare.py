"""Several models side by side: parameters, multiply-adds, memory and published accuracy.

The accuracy is the ImageNet-1K top-1/top-5 that torchvision publishes in the metadata of its
pretrained weights (``torchvision.models.get_model_weights(name).DEFAULT.meta["_metrics"]``),
shown only for registry models that are identical to a torchvision model; reading the metadata
downloads nothing.
"""

from __future__ import annotations

from typing import Any

from cnnlab import formats, table
from cnnlab.analysis.report import analyze
from cnnlab.errors import UnknownModelError


def published_accuracy(torchvision_name: str | None) -> tuple[float | None, float | None]:
    """(top-1, top-5) in percent from torchvision's weights metadata, or (None, None)."""
    if not torchvision_name:
        return None, None
    try:
        import torchvision

        meta = torchvision.models.get_model_weights(torchvision_name).DEFAULT.meta
        metrics = meta["_metrics"]["ImageNet-1K"]
        return float(metrics["acc@1"]), float(metrics["acc@5"])
    except (ValueError, KeyError, AttributeError):
        return None, None


def expand(names: list[str]) -> list[str]:
    """Registry names, with fnmatch patterns (``resnet*``) expanded, in the order given."""
    from cnnlab.registry import list_models, model_info

    out: list[str] = []
    for n in names:
        if any(c in n for c in "*?["):
            found = list_models(n)
            if not found:
                raise UnknownModelError(f"no model matches {n!r}: see `cnnlab models`")
            out += [f for f in found if f not in out]
        else:
            model_info(n)  # raises UnknownModelError with suggestions
            if n not in out:
                out.append(n)
    return out


def compare_models(
    names: list[str],
    input_size: tuple[int, int, int] | None = None,
    batch_size: int = 1,
    count: str = "lecture",
) -> list[dict[str, Any]]:
    """One dict per model: model, input_size, params, macs, gmacs, activation and training
    memory (bytes), top1, top5 (percent or None)."""
    from cnnlab.registry import model_info

    rows = []
    for name in expand(names):
        info = model_info(name)
        report = analyze(name, input_size, batch_size, count=count)
        top1, top5 = published_accuracy(info.torchvision)
        t = report.totals
        rows.append(
            {
                "model": name,
                "input_size": list(report.input_size),
                "params": t["params"],
                "macs": t["macs"],
                "gmacs": round(t["macs"] / 1e9, 3),
                "activation_bytes": t["activation_bytes"],
                "training_memory_bytes": t["training_memory_bytes"],
                "top1": top1,
                "top5": top5,
            }
        )
    return rows


# Every column after "model" and "input" holds a number: aligned right.
_NUMBER_COLUMNS = range(2, 8)


def render(rows: list[dict[str, Any]], count: str, markdown: bool = False) -> str:
    """A text or Markdown table of :func:`compare_models` rows, conventions underneath."""
    header = ["model", "input", "params", "MACs", "act. mem", "train mem", "top-1 %", "top-5 %"]
    body = [
        [
            r["model"],
            "x".join(map(str, r["input_size"])),
            f"{r['params']:,}",
            # in G and MiB as the lectures' tables give them; a small model's in M and KiB
            # rather than "0.000" (formats.count and formats.size fall back a unit)
            formats.count(r["macs"], "G"),
            formats.size(r["activation_bytes"]),
            formats.size(r["training_memory_bytes"]),
            "" if r["top1"] is None else f"{r['top1']:.2f}",
            "" if r["top5"] is None else f"{r['top5']:.2f}",
        ]
        for r in rows
    ]
    note = (
        f"MACs: {count} count (1 MAC = one multiply-add = the slides' 'flop'); memory for the "
        "given batch, float32; training memory = weights + gradients + SGD momentum + saved "
        "activations; top-1/top-5: torchvision's published ImageNet-1K figures for the identical "
        "pretrained model (blank: no such weights)."
    )
    if markdown:
        lines = table.markdown(header, body, _NUMBER_COLUMNS)
    else:
        # the blank top-1/top-5 cells keep their padding (trim=False): the output is unchanged
        lines = table.fixed_width(header, body, _NUMBER_COLUMNS, trim=False)
    return "\n".join([*lines, "", note])
