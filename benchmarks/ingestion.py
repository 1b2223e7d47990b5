"""Ingestion benchmark: ImageExampleGen (Beam DirectRunner) on the full data set
vs. the floor of reading the same files in one process.

    .venv/bin/python -m benchmarks.ingestion [--data-dir DIR]

Writes the figures to benchmarks/RESULTS-ingestion.md.
"""
import argparse
import datetime
import json
import os
import platform
import tempfile
import time

from benchmarks import full_data
from components.image_example_gen.layout import scan_layout

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS-ingestion.md")


def read_all_files(data_dir: str) -> tuple:
    files = [path for split in scan_layout(data_dir).splits.values() for path, _ in split.image_files]
    start = time.perf_counter()
    total = 0
    for path in files:
        with open(path, "rb") as file:
            total += len(file.read())
    return len(files), total, time.perf_counter() - start


def run_example_gen(data_dir: str) -> tuple:
    from components.image_example_gen.folder_run import ingest_folder
    from pipeline.configs import LOCAL_BEAM_ARGS, with_worker_image
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        examples = ingest_folder(data_dir, out, with_worker_image(LOCAL_BEAM_ARGS))
        elapsed = time.perf_counter() - start
        with open(os.path.join(examples.uri, "ingestion_report.json")) as file:
            totals = json.load(file)["totals"]
    return totals, elapsed


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    full_data.add_argument(parser)
    args = parser.parse_args(argv)
    args.data_dir = full_data.require(args.data_dir, "ingestion")
    n_files, n_bytes, read_seconds = read_all_files(args.data_dir)
    totals, gen_seconds = run_example_gen(args.data_dir)
    result = {
        "files": n_files, "megabytes": n_bytes / 1e6,
        "read_seconds": read_seconds, "read_images_per_s": n_files / read_seconds,
        "examplegen_seconds": gen_seconds, "examplegen_images_per_s": totals["examples_written"] / gen_seconds,
        "examples_written": totals["examples_written"], "files_rejected": totals["files_rejected"],
    }
    with open(RESULTS, "w") as file:
        file.write(f"""# Ingestion benchmark

Command: `.venv/bin/python -m benchmarks.ingestion` (also run by `make bench`).
Data: `{os.path.relpath(args.data_dir)}`, {n_files} JPEGs, {n_bytes / 1e6:.1f} MB.
Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, {datetime.date.today()}.

| step | wall time | images/s |
| --- | --- | --- |
| read every file in one process (the floor; page cache warm after the first run) | {read_seconds:.2f} s | {n_files / read_seconds:,.0f} |
| ImageExampleGen executor, Beam DirectRunner in_memory, decode-check + gzip TFRecords | {gen_seconds:.1f} s | {result['examplegen_images_per_s']:,.0f} |

Examples written: {totals['examples_written']}, rejected: {totals['files_rejected']}. Goal: all 4,000 in under 60 s.
The ImageExampleGen time includes Beam pipeline start-up, the full TensorFlow
decode of every image (the validity check), gzip compression and the report.
""")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
