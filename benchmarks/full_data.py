"""Where a benchmark finds the book's full data set (train/, validation/ and test/,
one sub-folder per class): its --data-dir flag, else $CATSDOGS_DATA_DIR, which
`make bench` passes on. No default: the data lives where each machine keeps it."""
import argparse
import os
from typing import Optional

from components import contract

ENV = "CATSDOGS_DATA_DIR"


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help=f"the book's full data set: train/, validation/, test/ (default: ${ENV})")


def from_environment() -> Optional[str]:
    """$CATSDOGS_DATA_DIR, or None when unset or empty (for benchmarks that can do without)."""
    return os.environ.get(ENV) or None


def require(given: Optional[str], benchmark: str) -> str:
    """given, else $CATSDOGS_DATA_DIR, as an absolute path; SystemExit naming what is missing."""
    data_dir = given or from_environment()
    if not data_dir:
        raise SystemExit(f"benchmarks.{benchmark}: the book's full data set is needed: pass --data-dir DIR "
                         f"or set {ENV} (a folder with train/, validation/ and test/, one sub-folder per class)")
    if not os.path.isdir(os.path.join(data_dir, contract.TRAIN_SPLIT)):
        raise SystemExit(f"benchmarks.{benchmark}: {data_dir} has no {contract.TRAIN_SPLIT}/ folder")
    return os.path.abspath(data_dir)
