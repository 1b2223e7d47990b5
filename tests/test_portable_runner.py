"""Every Beam component of the pipeline (ImageExampleGen through the Evaluator)
on Beam's PortableRunner, with the SDK workers outside this process: Beam's
local job service (this environment) hands the work to an EXTERNAL worker pool
(apache_beam.runners.worker.worker_pool_main) running in a container of the
project's image, which reads the images and writes the outputs on a volume
mounted at the same path, as a Flink task manager's worker-pool sidecar does
with a PVC. What the components write must equal the DirectRunner's.

Run by `make test-kfp` (scripts/test_kfp.sh builds the image and sets
CATSDOGS_KFP_IMAGE); `make test` deselects it (marker `kfp`).
"""
import dataclasses
import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Dict, List

import pytest

from components import contract
from pipeline import model_registry
from tests.image_files import SAMPLE_DIR
from tests.marker_model import export_model, marker_model, write_marked_images
from tests.serving_helpers import free_port

pytestmark = pytest.mark.kfp

IMAGE = os.environ.get("CATSDOGS_KFP_IMAGE")
STARTUP_TIMEOUT_S = 120


@dataclasses.dataclass
class Runs:
    direct: str
    portable: str
    worker_log: str

    def output(self, runner: str, component: str, key: str) -> str:
        folders = glob.glob(os.path.join(getattr(self, runner), "pipeline_root", component, key, "*"))
        assert len(folders) == 1, (runner, component, key, folders)
        return folders[0]


def _wait_for_port(port: int, process_alive, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("localhost", port)) == 0:
                return
        assert process_alive(), f"{what} exited before listening on port {port}"
        time.sleep(0.5)
    raise TimeoutError(f"{what} is not listening on port {port} after {STARTUP_TIMEOUT_S} s")


def _run_data_pipeline(data_root: str, output_dir: str, model_dir: str, beam_args: List[str]) -> None:
    from tfx import v1 as tfx

    from benchmarks.partial_pipelines import create_data_pipeline
    from pipeline.configs import PipelineConfig

    config = PipelineConfig.for_local_run(data_root, output_dir, beam_pipeline_args=beam_args, enable_cache=False)
    metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
    tfx.orchestration.LocalDagRunner().run(create_data_pipeline(config, model_dir, metadata))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    if not IMAGE:
        pytest.skip("needs the pipeline image: run `make test-kfp`")
    from pipeline.configs import LOCAL_BEAM_ARGS
    from tests.portable_beam import portable_beam_args

    work = str(tmp_path_factory.mktemp("portable"))
    data_root = os.path.join(work, "data")
    # The sample's photos, the test split's with markers the model reads, so that
    # the evaluation metrics are not degenerate.
    shutil.copytree(SAMPLE_DIR, data_root, ignore=shutil.ignore_patterns(contract.TEST_SPLIT))
    write_marked_images(data_root)
    model_dir = os.path.join(work, "model")
    export_model(marker_model(), os.path.join(model_dir, "Format-Serving"))

    _run_data_pipeline(data_root, os.path.join(work, "direct"), model_dir, list(LOCAL_BEAM_ARGS))

    job_port, pool_port = free_port(), free_port()
    container = f"catsdogs-beam-workers-{os.getpid()}"
    worker_log = os.path.join(work, "worker_pool.log")
    job_service = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
         "--port", str(job_port)],
        stdout=open(os.path.join(work, "job_service.log"), "w"), stderr=subprocess.STDOUT)
    # Host networking: the job service reaches the pool, and the pool's SDK
    # workers reach the job service's control and data ports, on loopback.
    pool = subprocess.Popen(
        ["docker", "run", "--rm", "--name", container, "--network", "host", "-v", f"{work}:{work}",
         IMAGE, "python", "-m", "apache_beam.runners.worker.worker_pool_main",
         f"--service_port={pool_port}"],
        stdout=open(worker_log, "w"), stderr=subprocess.STDOUT)
    try:
        _wait_for_port(job_port, lambda: job_service.poll() is None, "Beam's job service")
        _wait_for_port(pool_port, lambda: pool.poll() is None, "the worker pool container")
        _run_data_pipeline(data_root, os.path.join(work, "portable"), model_dir,
                           list(portable_beam_args(f"localhost:{job_port}", f"localhost:{pool_port}")))
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        pool.wait(timeout=60)
        job_service.terminate()
        job_service.wait(timeout=60)
    return Runs(os.path.join(work, "direct"), os.path.join(work, "portable"), worker_log)


def _records(split_dir: str) -> List[bytes]:
    import tensorflow as tf
    files = sorted(glob.glob(os.path.join(split_dir, "*.gz")))
    assert files, split_dir
    return [record.numpy() for record in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _by_filename(records: List[bytes]) -> Dict[bytes, object]:
    import tensorflow as tf
    examples = [tf.train.Example.FromString(record) for record in records]
    return {example.features.feature[contract.FILENAME_KEY].bytes_list.value[0]: example for example in examples}


BEAM_COMPONENTS = ("ImageExampleGen", "StatisticsGen", "Transform", "Evaluator")
"""The components that run Beam jobs (SchemaGen and ExampleValidator do not)."""


def test_the_sdk_workers_ran_in_the_container(runs):
    with open(runs.worker_log) as file:
        log = file.read()
    # The pool starts one SDK worker per job it is asked for.
    assert log.count("Starting worker") >= len(BEAM_COMPONENTS), log[-2000:]


def test_examples_equal_the_direct_runners(runs):
    for split in contract.SPLITS:
        direct = _records(os.path.join(runs.output("direct", "ImageExampleGen", "examples"), f"Split-{split}"))
        portable = _records(os.path.join(runs.output("portable", "ImageExampleGen", "examples"), f"Split-{split}"))
        assert len(portable) == len(os.listdir(os.path.join(SAMPLE_DIR, split, "cats"))) * 2
        # Compared as tf.Examples: a feature map's serialized order differs between processes.
        assert _by_filename(portable) == _by_filename(direct), split


def test_statistics_and_schema_equal_the_direct_runners(runs):
    import tensorflow_data_validation as tfdv
    for split in contract.SPLITS:
        direct, portable = (
            tfdv.load_stats_binary(os.path.join(runs.output(runner, "StatisticsGen", "statistics"),
                                                f"Split-{split}", "FeatureStats.pb"))
            for runner in ("direct", "portable"))
        assert portable.datasets[0].num_examples > 0
        assert portable == direct, split
    direct_schema, portable_schema = (
        tfdv.load_schema_text(os.path.join(runs.output(runner, "SchemaGen", "schema"), "schema.pbtxt"))
        for runner in ("direct", "portable"))
    assert {feature.name for feature in portable_schema.feature} == {
        contract.IMAGE_KEY, contract.LABEL_KEY, contract.FILENAME_KEY}
    assert portable_schema == direct_schema
    from tensorflow_metadata.proto.v0 import anomalies_pb2
    for runner in ("direct", "portable"):
        with open(os.path.join(runs.output(runner, "ExampleValidator", "anomalies"),
                               f"Split-{contract.TEST_SPLIT}", "SchemaDiff.pb"), "rb") as file:
            anomalies = anomalies_pb2.Anomalies.FromString(file.read())
        assert not anomalies.anomaly_info, (runner, anomalies)


def test_transform_graphs_give_the_same_output(runs):
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft
    records = _records(os.path.join(runs.output("direct", "ImageExampleGen", "examples"),
                                    f"Split-{contract.TEST_SPLIT}"))
    outputs: Dict[str, Dict[str, np.ndarray]] = {}
    for runner in ("direct", "portable"):
        graph = tft.TFTransformOutput(runs.output(runner, "Transform", "transform_graph"))
        parsed = tf.io.parse_example(tf.constant(records), graph.raw_feature_spec())
        outputs[runner] = {key: value.numpy() for key, value in graph.transform_raw_features(parsed).items()}
        assert graph.transformed_metadata.schema == tft.TFTransformOutput(
            runs.output("direct", "Transform", "transform_graph")).transformed_metadata.schema
    # The run's models are the defaults: Transform makes the largest image any of them takes.
    shape = model_registry.image_shape_for(model_registry.DEFAULT_MODELS)
    assert outputs["portable"][contract.TRANSFORMED_IMAGE_KEY].shape == (len(records),) + shape.as_tuple
    for key, value in outputs["direct"].items():
        np.testing.assert_array_equal(outputs["portable"][key], value, err_msg=key)


def _metrics(evaluation_dir: str) -> Dict[tuple, object]:
    """{(slice, metric key): value}, a double value as a float."""
    import tensorflow_model_analysis as tfma
    from google.protobuf import json_format
    values = {}
    for metrics in tfma.load_metrics(evaluation_dir):
        for item in metrics.metric_keys_and_values:
            value = json_format.MessageToDict(item.value)
            values[(str(metrics.slice_key), item.key.name)] = value.get("doubleValue", value)
    return values


def test_evaluation_metrics_equal_the_direct_runners(runs):
    direct = _metrics(runs.output("direct", "Evaluator", "evaluation"))
    portable = _metrics(runs.output("portable", "Evaluator", "evaluation"))
    assert portable[("", "example_count")] == 40
    assert portable.keys() == direct.keys()
    for key, value in direct.items():
        if key[1] in ("example_count", "binary_accuracy", "auc") or not isinstance(value, float):
            assert portable[key] == value, key
        else:
            # Means of float32 predictions: the runners batch differently, so the
            # sums are added in another order (seen: 2e-9 relative).
            assert portable[key] == pytest.approx(value, rel=1e-6), key
    for runner in ("direct", "portable"):
        blessing = runs.output(runner, "Evaluator", "blessing")
        assert os.path.exists(os.path.join(blessing, "BLESSED")) or \
            os.path.exists(os.path.join(blessing, "NOT_BLESSED"))
    assert sorted(os.listdir(runs.output("portable", "Evaluator", "blessing"))) == \
        sorted(os.listdir(runs.output("direct", "Evaluator", "blessing")))
