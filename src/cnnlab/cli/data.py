"""``cnnlab data fetch|info|sample|list``: get a dataset, see what is known about it, sample it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cnnlab.data import DATASETS, fetch_dataset, find_dataset, resolve
from cnnlab.data.datasets import DatasetInfo
from cnnlab.data.fetch import ENV_DATA, ENV_URL, file_status

_LOOKUP = (
    f"Lookup order: --data-dir, ${ENV_DATA}, the user cache (~/.cache/cnnlab/DATASET), system "
    "copies (/usr/share/datasets/DATASET), then a download with a SHA-256 check."
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data",
        help="fetch datasets and show what is known about them",
        description="Datasets: " + ", ".join(DATASETS) + ", or the path of an image folder "
        "(one sub-folder per class, optionally under train/ and test/). " + _LOOKUP,
    )
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    f = sub.add_parser(
        "fetch",
        help="download a dataset unless it is already found",
        description="Download a dataset unless it is already found. " + _LOOKUP + " Downloads "
        f"go to --data-dir/DATASET, ${ENV_DATA}/DATASET or the user cache. ${ENV_URL}=URL "
        "(or --base-url) fetches URL/DATASET/FILE from a mirror instead.",
    )
    f.add_argument("dataset", help=", ".join(DATASETS))
    f.add_argument("--data-dir", type=Path, help="folder searched first and downloaded into")
    f.add_argument("--base-url", help="mirror serving BASE_URL/DATASET/FILE")
    f.add_argument("--force", action="store_true", help="download again even if found")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(run=run_fetch)

    i = sub.add_parser(
        "info",
        help="classes, sizes, statistics, where the files were found and their checksums",
        description="Show classes, image size, sample counts, mean/std, where each split was "
        "found and whether each file's SHA-256 matches. Exit status 1 if a split is not found "
        "or a checksum does not match. For an image folder, every image is read as `cnnlab "
        "train` reads it, and the files it would skip (special files, symlinks leading out of "
        "their class folder, unreadable images) are counted in a note. " + _LOOKUP,
    )
    i.add_argument("dataset", help=", ".join(DATASETS) + " or an image folder")
    i.add_argument("--data-dir", type=Path, help="folder searched first")
    i.add_argument("--format", choices=("text", "json"), default="text")
    i.set_defaults(run=run_info)

    sm = sub.add_parser(
        "sample",
        help="write real test images as PNG files named by their class",
        description="Write the first N images of a dataset's test split (or of each class, "
        "--each-class) as PNG files named INDEX-CLASS.png (0-ankle-boot.png: test image 0, "
        "an ankle boot), at the dataset's own size, to try `cnnlab predict` and `cnnlab show` "
        "on and check the answers against the names.",
    )
    sm.add_argument("dataset", help=", ".join(DATASETS) + " or an image folder")
    sm.add_argument("-n", type=int, default=8, metavar="N", help="how many images (default: 8)")
    sm.add_argument(
        "-o", "--out", type=Path, default=Path("samples"), metavar="DIR",
        help="folder to write into (default: samples/)",
    )  # fmt: skip
    sm.add_argument(
        "--each-class", action="store_true", help="the first N images of every class instead"
    )
    sm.add_argument(
        "--split", choices=("test", "train"), default="test", help="which split (default: test)"
    )
    sm.add_argument("--data-dir", type=Path, help="folder searched first")
    sm.set_defaults(run=run_sample)

    ls = sub.add_parser("list", help="the named datasets and whether each is found")
    ls.add_argument("--data-dir", type=Path, help="folder searched first")
    ls.set_defaults(run=run_list)


def run_fetch(args: argparse.Namespace) -> int:
    directory = fetch_dataset(
        args.dataset,
        args.data_dir,
        base_url=args.base_url,
        progress=False if args.quiet else None,
        force=args.force,
    )
    print(f"{resolve(args.dataset).name}: ready in {directory}")
    return 0


def _split_report(info: DatasetInfo, split: str, root: Path | None) -> dict:
    loc = find_dataset(info.name, split, root)
    if loc is None:
        return {"found": False, "fix": f"run `cnnlab data fetch {info.name}`"}
    files = []
    if loc.archive is not None:
        archive = next(f for f in info.files if f.role == "archive")
        files.append({"file": str(loc.archive), "sha256": file_status(archive, loc.archive)})
    for f in info.split_files(split):
        if f.name in loc.paths:
            files.append(
                {"file": str(loc.paths[f.name]), "sha256": file_status(f, loc.paths[f.name])}
            )
    return {"found": True, "directory": str(loc.directory), "step": loc.step, "files": files}


def run_info(args: argparse.Namespace) -> int:
    target = resolve(args.dataset)
    report, shown = None, str  # a named dataset's name and title are plain text
    if isinstance(target, Path):  # reading images: torch and Pillow only now
        from cnnlab.data.folder import inspect_folder
        from cnnlab.formats import printable as shown

        report = inspect_folder(target)
    info = target if report is None else report.info
    out = {
        "name": info.name,
        "title": info.title,
        "format": info.format,
        "classes": list(info.classes),
        "channels": info.channels,
        "size": list(info.size),
        "num_train": info.num_train,
        "num_test": info.num_test,
        "mean": list(info.mean),
        "std": list(info.std),
    }
    ok = True
    if isinstance(target, DatasetInfo):
        out["url"] = info.url
        out["homepage"] = info.homepage
        for split in ("train", "test"):
            rep = _split_report(info, split, args.data_dir)
            out[split] = rep
            ok &= rep["found"] and not any(f["sha256"].startswith("MISMATCH") for f in rep["files"])
    if report is not None:
        out.update(report.to_dict())
    if args.format == "json":
        print(json.dumps(out, indent=2))
        return 0 if ok else 1
    print(f"{shown(info.name)}: {shown(info.title)}")
    print(f"  classes   {info.num_classes}: {', '.join(info.classes)}")
    print(f"  images    {info.channels}x{info.size[0]}x{info.size[1]} uint8")
    print(f"  samples   train {info.num_train:,}  test {info.num_test:,}")
    mean = ", ".join(f"{m:.4f}" for m in info.mean)
    std = ", ".join(f"{s:.4f}" for s in info.std)
    print(f"  mean/std  ({mean}) / ({std})  per channel, training split, pixels in [0, 1]")
    if isinstance(target, DatasetInfo):
        print(f"  source    {info.url}  ({info.homepage})")
        for split in ("train", "test"):
            rep = out[split]
            if not rep["found"]:
                print(f"  {split:<9} not found; {rep['fix']}")
                continue
            print(f"  {split:<9} found in {rep['directory']} ({rep['step']})")
            for f in rep["files"]:
                print(f"            {Path(f['file']).name}  sha256 {f['sha256']}")
    elif report is not None:
        print(f"  folder    {shown(info.root or '')}")
        for note in report.notes():
            print(note)
    return 0 if ok else 1


def run_sample(args: argparse.Namespace) -> int:
    from cnnlab.data.samples import write_samples
    from cnnlab.formats import printable

    written = write_samples(
        args.dataset,
        args.out,
        args.n,
        split=args.split,
        each_class=args.each_class,
        root=args.data_dir,
    )
    for sample in written:  # class names of an image folder come from its sub-folders' names
        print(f"{printable(str(sample.path))}  {printable(sample.class_name)}")
    print(f"{len(written)} {args.split} images in {printable(str(args.out))}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    for name, info in DATASETS.items():
        where = []
        for split in ("train", "test"):
            loc = find_dataset(name, split, args.data_dir)
            where.append(f"{split}: {loc.directory} ({loc.step})" if loc else f"{split}: not found")
        size = f"{info.channels}x{info.size[0]}x{info.size[1]}"
        print(f"{name:<14} {size:<8} {info.num_classes} classes  " + "; ".join(where))
    return 0
