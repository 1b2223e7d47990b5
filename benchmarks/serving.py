"""Serving benchmark: the same SavedModel called in-process vs. through this
project's gRPC server (a separate `catsdogs serve` process on loopback), for
batch 1 and batch 32: p50/p99 latency and images/s, sequential requests.

    .venv/bin/python -m benchmarks.serving [--model-dir DIR --label NAME] [--iterations-b1 N] [--iterations-b32 N]

Without --model-dir the model is the book's scratch convnet (listing 5.5,
components.models.scratch.network.build_scratch_model, untrained: same compute)
behind the serving contract's image_bytes signature. Writes
benchmarks/RESULTS-serving.md, one section per model (latency-benchmark for the
untrained convnet, latency-benchmark-NAME for --model-dir), so that `make bench`
leaves the figures of exported models in place. Goals: gRPC overhead <= 20 % at
batch 32 and < 5 ms p50 at batch 1 beyond the model's own time.
"""
import argparse
import contextlib
import datetime
import glob
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from benchmarks import full_data
from benchmarks.results_file import replace_section
from components import contract

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO_ROOT, "benchmarks", "RESULTS-serving.md")
SAMPLE_TEST_IMAGES = os.path.join(REPO_ROOT, "data", "sample", "test")
MODEL_NAME = "benchmark_model"
BATCH_SIZES = (1, 32)
BATCH32_OVERHEAD_GOAL = 0.20
BATCH1_OVERHEAD_GOAL_MS = 5.0


def load_images(limit: int = 256):
    full = full_data.from_environment()
    root = os.path.join(full, contract.TEST_SPLIT) if full else SAMPLE_TEST_IMAGES
    paths = sorted(glob.glob(os.path.join(root, "*", "*.jpg")))[:limit]
    images = []
    for path in paths:
        with open(path, "rb") as image_file:
            images.append(image_file.read())
    return root, images


def export_scratch_model(export_dir: str) -> str:
    """The untrained scratch convnet exported as the Trainer exports it, with
    Transform's decode (components.preprocessing) in place of the Transform graph."""
    import tensorflow as tf

    from components import contract, preprocessing
    from components.models.scratch.network import build_scratch_model
    from components.training.export import export_model

    def transform(raw):
        return {contract.TRANSFORMED_IMAGE_KEY: preprocessing.decode_images(raw[contract.IMAGE_KEY])}
    raw_feature_spec = {contract.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)}
    return export_model(build_scratch_model(), transform, raw_feature_spec, contract.CATS_VS_DOGS_CLASSES, export_dir)


def batches(images, batch_size, count):
    return [[images[(start * batch_size + i) % len(images)] for i in range(batch_size)] for start in range(count)]


def summary(latencies, batch_size: int) -> dict:
    latencies = np.array(latencies)
    return {"p50_ms": float(np.percentile(latencies, 50) * 1e3), "p99_ms": float(np.percentile(latencies, 99) * 1e3),
            "images_per_s": batch_size * len(latencies) / float(latencies.sum()), "n": len(latencies)}


def in_process_call(model_dir: str):
    import tensorflow as tf

    from components import contract
    serve = tf.saved_model.load(model_dir).signatures[contract.SERVING_SIGNATURE]

    def call(batch):
        outputs = serve(**{contract.SERVING_INPUT_KEY: tf.constant(batch)})
        return {key: value.numpy() for key, value in outputs.items()}
    return call


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def served(model_dir: str):
    """`catsdogs serve` in its own process on a free loopback port, serving
    model_dir as version 1, with TF Serving's command line."""
    with tempfile.TemporaryDirectory() as base:
        os.symlink(os.path.abspath(model_dir), os.path.join(base, "1"))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO_ROOT)
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "serve", f"--port={port}", f"--model_name={MODEL_NAME}",
             f"--model_base_path={base}", "--file_system_poll_wait_seconds=0", "--catsdogs_host=127.0.0.1"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            # Like tensorflow_model_server, the server says on stderr when it listens.
            for line in process.stderr:
                if "Running gRPC ModelServer at" in line:
                    break
            else:
                raise RuntimeError("the server did not start")
            threading.Thread(target=process.stderr.read, daemon=True).start()  # keep the pipe drained
            yield port
        finally:
            process.terminate()
            process.wait(timeout=60)


def measure(model_dir: str, images, iterations, warmup: int = 3):
    """Latencies of both paths, request by request in alternation, so that the
    shared machine's changing load hits both alike."""
    from serving.client import ClientOptions, PredictionClient
    local_call = in_process_call(model_dir)
    local, remote = {}, {}
    with served(model_dir) as port, \
            PredictionClient(f"127.0.0.1:{port}", ClientOptions(timeout_seconds=120, retries=0)) as client:
        def remote_call(batch):
            return client.predict(batch, MODEL_NAME)
        for size in BATCH_SIZES:
            requests = batches(images, size, iterations[size])
            for request in requests[:warmup]:
                local_call(request)
                remote_call(request)
            times = {local_call: [], remote_call: []}
            for request in requests:
                for call in (local_call, remote_call):
                    start = time.perf_counter()
                    call(request)
                    times[call].append(time.perf_counter() - start)
            local[size], remote[size] = summary(times[local_call], size), summary(times[remote_call], size)
    return local, remote


def section_name(label) -> str:
    return "latency-benchmark" + (f"-{label}" if label else "")


def write_results(model_desc, image_root, local, remote, command, load_before, load_after, label=None):
    b1 = remote[1]["p50_ms"] - local[1]["p50_ms"]
    b32 = remote[32]["p50_ms"] / local[32]["p50_ms"] - 1
    lines = [
        f"## Latency: in-process call vs. `catsdogs serve`, {label or 'untrained scratch convnet'}", "",
        f"Command: `{command}`" + ("." if label else " (also run by `make bench`)."),
        f"Model: {model_desc}.",
        f"Images: real JPEGs from `{os.path.relpath(image_root, REPO_ROOT)}`, raw bytes (decode and resize "
        "are inside the model's signature, so they count as model time).",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"{datetime.date.today().isoformat()}; load average {load_before:.1f} before, {load_after:.1f} after "
        "(the machine is shared: figures are noisy).",
        "Server: `catsdogs serve` in its own process on loopback (TF Serving's command line), no batching; client: "
        "`serving.client.PredictionClient`, one request at a time, alternating with the in-process call "
        "on the same batch (so that load changes hit both paths alike).", "",
        "| path | batch | p50 ms | p99 ms | images/s | requests |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for path, figures in (("in-process SavedModel call", local), ("gRPC, catsdogs serve", remote)):
        for size in BATCH_SIZES:
            f = figures[size]
            lines.append(f"| {path} | {size} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | "
                         f"{f['images_per_s']:.1f} | {f['n']} |")
    lines += [
        "",
        f"- Batch 1: gRPC adds **{b1:.2f} ms** at p50 (goal < {BATCH1_OVERHEAD_GOAL_MS:.0f} ms): "
        f"{'met' if b1 < BATCH1_OVERHEAD_GOAL_MS else 'NOT met'}.",
        f"- Batch 32: gRPC overhead **{b32 * 100:.1f} %** at p50 (goal <= {BATCH32_OVERHEAD_GOAL * 100:.0f} %): "
        f"{'met' if b32 <= BATCH32_OVERHEAD_GOAL else 'NOT met'}.",
        "",
    ]
    replace_section(RESULTS, section_name(label), "\n".join(lines))
    print("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", help="a SavedModel with the contract's serving_default signature")
    parser.add_argument("--model-desc", help="what --model-dir is, for the results file")
    parser.add_argument("--label", help="short name of --model-dir's model (letters, digits, '-'): "
                                        "its figures go to section latency-benchmark-LABEL")
    parser.add_argument("--iterations-b1", type=int, default=200)
    parser.add_argument("--iterations-b32", type=int, default=30)
    args = parser.parse_args(argv)
    if args.model_dir and not re.fullmatch(r"[A-Za-z0-9-]+", args.label or ""):
        parser.error("--model-dir needs --label NAME (letters, digits, '-'): the section its figures go to")
    if args.label and not args.model_dir:
        parser.error("--label names the model of --model-dir; without it the model is the untrained convnet")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    iterations = {1: args.iterations_b1, 32: args.iterations_b32}
    image_root, images = load_images()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        if args.model_dir:
            model_dir, model_desc = args.model_dir, args.model_desc or f"`{args.model_dir}`"
        else:
            model_dir = export_scratch_model(os.path.join(scratch, "scratch"))
            model_desc = ("the book's scratch convnet (listing 5.5, 3.45 M parameters, untrained) behind the "
                          "serving contract's `image_bytes` signature (components.training.export)")
        local, remote = measure(model_dir, images, iterations)
    given = list(sys.argv[1:] if argv is None else argv)
    if "--model-desc" in given[:-1]:  # the Model line shows it
        given[given.index("--model-desc") + 1] = "..."
    command = "python -m benchmarks.serving" + "".join(f" {shlex.quote(arg)}" for arg in given)
    write_results(model_desc, image_root, local, remote, command, load_before, os.getloadavg()[0], args.label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
