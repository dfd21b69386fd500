"""`rvc-index`: build the retrieval index of a feature store, or describe an `.index` file.

rvc-index build STORE_DIR [--kind KIND] [--out PATH] [--name NAME]
rvc-index info FILE.index

KIND is an option of the index config group (`rvc/conf/index/<kind>.yaml`, or a folder added
with `rvc.registry.add_search_path`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss

from rvc import registry
from rvc.data.store import MANIFEST, FeatureStore
from rvc.errors import report
from rvc.index.build import IndexInfo, build_index, index_file_name, make_builder
from rvc.index.search import read_index


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rvc-index", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build <name>.index from a store's content features")
    b.add_argument("store", type=Path, help="feature store folder (holds manifest.json)")
    kinds = registry.names("index")
    b.add_argument("--kind", choices=kinds, default="auto", help="index kind (default: auto)")
    b.add_argument("--name", help="model name (default: the store folder's name)")
    b.add_argument("--out", type=Path, help="index file (default: STORE/<name>.index)")
    i = sub.add_parser("info", help="show dim, vector count, IVF lists and nprobe")
    i.add_argument("path", type=Path)
    return p


def build(
    store_dir: Path, kind: str = "auto", out: Path | None = None, name: str | None = None
) -> IndexInfo:
    """Build the index of the store at `store_dir` with the `kind` option's builder."""
    builder = make_builder(kind)  # a broken kind fails before the store is locked
    if not (store_dir / MANIFEST).is_file():
        raise ValueError(f"{store_dir}: not a feature store (no {MANIFEST}; run extract.py)")
    store = FeatureStore(store_dir)
    name = name or store_dir.resolve().name
    out = out if out is not None else store_dir / index_file_name(name)
    with store.lock():  # features still being extracted would give a partial index
        return build_index(store, builder, out)


def describe(path: Path) -> dict[str, Any]:
    """What `rvc-index info` shows, field -> value."""
    index = read_index(path)
    try:
        ivf = faiss.extract_index_ivf(index)
        nlist, nprobe = int(ivf.nlist), int(ivf.nprobe)
    except RuntimeError:  # not an IVF index (e.g. a flat one): no lists to probe
        nlist = nprobe = None
    return {
        "file": str(path),
        "type": type(index).__name__,
        "dim": int(index.d),
        "ntotal": int(index.ntotal),
        "nlist": nlist,
        "nprobe": nprobe,
    }


def _summary(info: IndexInfo) -> str:
    return (
        f"wrote {info.path}: {info.n_vectors} vectors ({info.dim}-dim) from {info.n_features} "
        f"frames, IVF{info.n_ivf},Flat, nprobe 1 ({info.kind})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `rvc-index` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            print(_summary(build(args.store, args.kind, args.out, args.name)))
        else:
            for key, value in describe(args.path).items():
                print(f"{key:<7} {'-' if value is None else value}")
    except Exception as e:  # any bad input: one line, exit 1 (no traceback for users)
        return report(e, "rvc-index")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
