"""Ingestion benchmark: ImageExampleGen (Beam DirectRunner) on the full data set
vs. the floor of reading the same files in one process.

    .venv/bin/python -m benchmarks.ingestion [--data-dir DIR]

Writes the figures to benchmarks/RESULTS-ingestion.md (its ingestion-benchmark
section), with what TFX's sdist of itself costs each Beam executor that is not told
the workers' packages (pipeline/configs.py, with_worker_image).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import tempfile
import time

from benchmarks import full_data
from benchmarks.results_file import replace_section
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
    from pipeline.configs import LOCAL_EXECUTOR_BEAM_ARGS
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        examples = ingest_folder(data_dir, out, LOCAL_EXECUTOR_BEAM_ARGS)
        elapsed = time.perf_counter() - start
        with open(os.path.join(examples.uri, "ingestion_report.json")) as file:
            totals = json.load(file)["totals"]
    return totals, elapsed


def build_tfx_package() -> tuple:
    """Seconds and bytes of the sdist of TFX that TFX builds and stages for a Beam
    executor whose args name no worker packages; its build folder is removed."""
    from tfx.utils import dependency_utils
    start = time.perf_counter()
    sdist = dependency_utils.build_ephemeral_package()
    seconds = time.perf_counter() - start
    build_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(sdist))))
    size = sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(build_root) for name in names)
    shutil.rmtree(build_root)  # tempfile.mkdtemp()/build/tfx/dist/SDIST: TFX never removes it
    return seconds, size


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    full_data.add_argument(parser)
    args = parser.parse_args(argv)
    args.data_dir = full_data.require(args.data_dir, "ingestion")
    n_files, n_bytes, read_seconds = read_all_files(args.data_dir)
    totals, gen_seconds = run_example_gen(args.data_dir)
    package_seconds, package_bytes = build_tfx_package()
    result = {
        "files": n_files, "megabytes": n_bytes / 1e6,
        "read_seconds": read_seconds, "read_images_per_s": n_files / read_seconds,
        "examplegen_seconds": gen_seconds, "examplegen_images_per_s": totals["examples_written"] / gen_seconds,
        "examples_written": totals["examples_written"], "files_rejected": totals["files_rejected"],
        "tfx_package_seconds": package_seconds, "tfx_package_megabytes": package_bytes / 1e6,
    }
    replace_section(RESULTS, "ingestion-benchmark", title="# Ingestion benchmark", text=f"""## ImageExampleGen vs. reading the files

Command: `.venv/bin/python -m benchmarks.ingestion --data-dir {os.path.relpath(args.data_dir)}` (also run by `make bench`).
Data: `{os.path.relpath(args.data_dir)}`, {n_files} JPEGs, {n_bytes / 1e6:.1f} MB.
Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, {datetime.date.today()}.

| step | wall time | images/s |
| --- | --- | --- |
| read every file in one process (the floor; page cache warm after the first run) | {read_seconds:.2f} s | {n_files / read_seconds:,.0f} |
| ImageExampleGen executor, Beam DirectRunner in_memory, decode-check + gzip TFRecords | {gen_seconds:.1f} s | {result['examplegen_images_per_s']:,.0f} |

Examples written: {totals['examples_written']}, rejected: {totals['files_rejected']}. Goal: all 4,000 in under 60 s.
The ImageExampleGen time includes Beam pipeline start-up, the full TensorFlow
decode of every image (the validity check), gzip compression and the report.

Not in that time: the sdist of TFX that TFX builds for every Beam executor whose
arguments name no worker packages (`tfx.utils.dependency_utils.build_ephemeral_package`),
{package_seconds:.1f} s and {package_bytes / 1e6:.0f} MB left in the temp folder per executor.
The pipeline's executors are handed `--sdk_container_image` instead
(`pipeline.configs.with_worker_image`), so they build none.
""")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
