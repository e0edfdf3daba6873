"""``cnnlab eval RUN_DIR|CHECKPOINT``: top-1, top-5, loss, per-class accuracy, confusion matrix."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.errors import DataError
from cnnlab.formats import printable

if TYPE_CHECKING:  # the command's imports stay light until it runs
    import torch

    from cnnlab.run.config import TrainConfig


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a trained model on a test set",
        description="Evaluate a model trained by `cnnlab train` (a run directory, its "
        "model.safetensors or a checkpoint) on the test split of its dataset or of --data. "
        "JSON output has the keys top1, top5, loss (fractions and mean cross-entropy), "
        "per_class and confusion ([true][predicted] counts).",
    )
    p.add_argument("path", metavar="RUN_DIR|CHECKPOINT", help="what `cnnlab train` wrote")
    p.add_argument("--data", help="dataset to evaluate on (default: the one it was trained on)")
    p.add_argument("--data-dir", help="where datasets are looked up first")
    p.add_argument(
        "--split", choices=("test", "train"), default="test", help="which split (default: test)"
    )
    p.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N images")
    p.add_argument(
        "--batch-size",
        type=int,
        default=500,
        metavar="N",
        help="images per forward pass (default: 500)",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each image's logits with its mirror's (default: as the run was evaluated "
        "at the end of training, recorded in its metadata)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.data import DEFAULT_DATASET, load_dataset, resolve
    from cnnlab.predictor import load
    from cnnlab.run.device import pick_device, set_threads
    from cnnlab.run.metrics import format_result

    device = pick_device(args.device)
    if device.type == "cpu":
        set_threads(0)
    predictor = load(args.path, device=device, tta=args.tta)
    meta = predictor.meta
    data = args.data or meta.dataset or DEFAULT_DATASET
    if printable(data) != data:  # from the weights file: a name or path has no control characters
        raise DataError(
            f"{predictor.source} records the dataset '{printable(data, 80)}', which is no name or "
            "path cnnlab reads: pass --data"
        )
    config = _run_config(args.path, data)
    if config is not None:
        # The run's own split: an image folder's files held out by its fractions and seed
        # (never ones it trained on), a named dataset's --classes relabelled as it trained.
        from cnnlab.run.data import load_run_data, load_run_split, record_sides

        if args.split == "test":
            images, labels = load_run_split(config, "test", record_sides(meta))
        else:
            run_data = load_run_data(config, record_sides(meta))
            images, labels = run_data.train_x, run_data.train_y
    else:  # a weights file, or other data: the dataset's own split
        folder = isinstance(resolve(data), Path)
        seed = meta.seed if folder and meta.seed is not None else 0
        images, labels = load_dataset(data, args.split, root=args.data_dir, seed=seed)
        images, labels = _run_classes(images, labels, data, meta.classes)
    if args.limit is not None:
        images, labels = images[: args.limit], labels[: args.limit]
    if images.shape[1] != meta.in_channels:
        raise DataError(
            f"{data} has {images.shape[1]}-channel images but {meta.model} was trained on "
            f"{meta.in_channels} channels: evaluate on a dataset like its training data"
        )
    if len(labels) and int(labels.max()) >= meta.num_classes:
        raise DataError(
            f"{data} has labels up to {int(labels.max())} but the model knows "
            f"{meta.num_classes} classes: evaluate on a dataset with the same classes"
        )
    result = predictor.evaluate(images, labels, args.batch_size)
    if args.format == "json":
        out = {
            "model": meta.model,
            "source": str(predictor.source),
            "data": data,
            "split": args.split,
            "tta": predictor.tta,
            **result.to_dict(meta.classes),
        }
        print(json.dumps(out))
        return 0
    how = ", with flip test-time augmentation" if predictor.tta else ""
    print(f"{meta.model} from {printable(str(predictor.source))} on {data} ({args.split}{how})")
    # Class names come from the weights file: shown escaped, never as terminal controls.
    print(format_result(result, [printable(name, 60) for name in meta.classes]))
    return 0


def _run_config(path: str, data: str) -> TrainConfig | None:
    """The resolved config of the run directory ``path`` when ``data`` is what it trained on."""
    from cnnlab.run.layout import RunFiles

    files = RunFiles(Path(path))
    if not Path(path).is_dir() or not files.config.is_file():
        return None
    config = files.read_config(resolved=True)
    if config.data == data:
        return config
    from cnnlab.data import resolve

    same = isinstance(a := resolve(config.data), Path) and isinstance(b := resolve(data), Path)
    return config if same and a.resolve() == b.resolve() else None


def _run_classes(
    images: torch.Tensor, labels: torch.Tensor, data: str, classes: tuple[str, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of the classes a run was trained on, relabelled as it was (``--classes``).

    A run trained on some of a dataset's classes records their names in its metadata, in the
    order it numbered them; the dataset's other classes are left out.
    """
    from cnnlab.data import dataset_info
    from cnnlab.run.data import select_classes

    names = dataset_info(data).classes
    if tuple(classes) == tuple(names) or not set(classes) < set(names):
        return images, labels  # all of them, or other classes: the checks below say so
    return select_classes(images, labels, tuple(names.index(c) for c in classes))
