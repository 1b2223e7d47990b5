"""The fingerprint of the image files under a data root: what keys ImageExampleGen's
cache on the open-source KFP backend (pipeline/kubeflow_cache.py).

Every file that ingestion's patterns match counts with its path relative to the
data root, its size and its modification time, so a changed, added, removed,
renamed or moved image (a relabelling moves a file between class folders)
changes the fingerprint. Files are listed and stat'ed, not read, so the task
costs a listing of the data, not a pass over it. Local folders are read with
Python's os module (a broken link or a name that is not UTF-8 counts instead of
failing, as in driver.py); remote roots (gs://) with tf.io.gfile.

    python -m components.image_example_gen.data_fingerprint \
        --data-root DIR --input-config JSON --output-file PATH
"""
import argparse
import glob
import hashlib
import os
import sys
from typing import Iterator, List, Optional, Tuple

from tfx.proto import example_gen_pb2
from tfx.utils import proto_utils

FileFacts = Tuple[str, int, int]
"""(path relative to the data root, size in bytes, modification time in ns)"""


def local_files(pattern: str) -> Iterator[Tuple[str, os.stat_result]]:
    """(path, stat) of every local file the pattern matches, hidden names too (as
    tf.io.gfile.glob); a broken symbolic link counts with the link's own stat."""
    for path in glob.glob(pattern, include_hidden=True):
        try:
            yield path, os.stat(path)
        except FileNotFoundError:  # a broken symbolic link: ingestion rejects it and says so
            yield path, os.lstat(path)


def _remote_files(pattern: str) -> Iterator[Tuple[str, object]]:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    for path in tf.io.gfile.glob(pattern):
        yield path, tf.io.gfile.stat(path)


def list_files(data_root: str, pattern: str) -> List[FileFacts]:
    """Every file the split pattern matches, sorted by relative path."""
    full_pattern = os.path.join(data_root, pattern)
    facts = []
    if "://" in data_root:
        for path, stat in _remote_files(full_pattern):
            facts.append((os.path.relpath(path, data_root), stat.length, stat.mtime_nsec))
    else:
        for path, stat in local_files(full_pattern):
            facts.append((os.path.relpath(path, data_root), stat.st_size, stat.st_mtime_ns))
    return sorted(facts)


def fingerprint(data_root: str, input_config: example_gen_pb2.Input) -> str:
    """sha256 over every split's files; the same files give the same text anywhere."""
    digest = hashlib.sha256()
    summary = []
    for split in input_config.splits:
        files = list_files(data_root, split.pattern)
        for path, size, mtime_ns in files:
            digest.update(f"{split.name}\0{os.fsencode(path).hex()}\0{size}\0{mtime_ns}\n".encode())
        summary.append(f"{split.name}:{len(files)}")
    return f"{','.join(summary)};sha256:{digest.hexdigest()}"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--input-config", required=True, help="ImageExampleGen's input config (JSON)")
    parser.add_argument("--output-file", required=True, help="where KFP reads the output parameter")
    args = parser.parse_args(argv)
    input_config = proto_utils.json_to_proto(args.input_config, example_gen_pb2.Input())
    value = fingerprint(args.data_root, input_config)
    os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
    with open(args.output_file, "w") as output:
        output.write(value)
    print(f"data fingerprint of {args.data_root}: {value}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
