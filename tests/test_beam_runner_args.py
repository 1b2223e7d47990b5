"""The Beam arguments docs/KUBEFLOW.md gives for Flink and Dataflow: the Flink
ones are those tests/test_portable_runner.py runs with, and `catsdogs compile`
carries either set to every Beam component, read back from the compiled spec
the way TFX's KFP v2 container entrypoint reads its arguments, with the
pipeline image as the workers' --sdk_container_image, so that TFX's executors
never build and stage an sdist of TFX (tfx/utils/dependency_utils.py)."""
import os
import re

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipeline import cli, configs, kubeflow_package  # noqa: E402
from tests.portable_beam import portable_beam_args  # noqa: E402

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "KUBEFLOW.md")
SECTIONS = {"flink": "#### Flink on Kubernetes", "dataflow": "#### Dataflow"}
BEAM_COMPONENTS = ("ImageExampleGen", "StatisticsGen", "Transform", "Evaluator")


def documented_beam_args(runner: str):
    """The --beam-arg values of one runner's section of docs/KUBEFLOW.md, in order."""
    with open(DOCS) as file:
        text = file.read()
    start = text.index(SECTIONS[runner])
    end = text.find("\n#### ", start + 1)
    args = re.findall(r"--beam-arg=(\S+)", text[start:end if end > 0 else None])
    assert args, f"no --beam-arg in the {runner} section of {DOCS}"
    return args


def test_the_documented_flink_args_are_the_portable_runner_args_the_test_runs():
    assert documented_beam_args("flink") == list(portable_beam_args("beam-job-server:8099", "localhost:50000"))


@pytest.mark.parametrize("runner", sorted(SECTIONS))
def test_compile_carries_the_documented_args_to_every_beam_component(runner, tmp_path):
    from tfx.dsl.components.base import base_beam_executor
    from tfx.utils import import_utils

    from pipeline import kfp_task_entrypoint, kubeflow_runner

    beam_args = documented_beam_args(runner)
    path = str(tmp_path / "pipeline.yaml")
    image = "registry.example/catsdogs-tfx:9.9"
    assert cli.main(["compile", "--output", path, "--image", image,
                     *[f"--beam-arg={arg}" for arg in beam_args]]) == 0
    spec = kubeflow_package.load_package(path).pipeline_spec
    beam_tasks = []
    for task, task_spec in spec["root"]["dag"]["tasks"].items():
        label = spec["components"][task_spec["componentRef"]["name"]]["executorLabel"]
        container = spec["deploymentSpec"]["executors"][label].get("container")
        if not container or container["command"][-1] != kubeflow_runner.TASK_ENTRYPOINT:
            continue  # no TFX executor (DataFingerprint lists files)
        # Parsed as the task's command parses them (TFX's flags, then the outputs spec).
        parsed, parsed_beam_args = kfp_task_entrypoint._parse_flags(  # pylint: disable=protected-access
            list(container["args"]))
        executor = import_utils.import_class_by_path(parsed.executor_class_path)
        if issubclass(executor, base_beam_executor.BaseBeamExecutor):
            beam_tasks.append(task)
            assert parsed_beam_args == [*beam_args, f"--sdk_container_image={image}"], task
    assert {task.split("_")[0] for task in beam_tasks} >= set(BEAM_COMPONENTS), beam_tasks


def test_the_worker_image_is_added_unless_the_args_name_the_workers_packages():
    assert configs.with_worker_image(["--runner=DirectRunner"], "img:1") == (
        "--runner=DirectRunner", "--sdk_container_image=img:1")
    for named in ("--sdk_container_image=mine:2", "--setup_file=./setup.py", "--extra_package=a.tar.gz",
                  "--requirements_file=r.txt", "--worker_harness_container_image=old:1"):
        assert configs.with_worker_image(["--runner=DataflowRunner", named], "img:1") == (
            "--runner=DataflowRunner", named)


def test_local_executors_build_no_tfx_package(tmp_path, monkeypatch):
    """TFX's own check (run by every Beam executor) finds the workers' packages named,
    so it neither builds nor stages an sdist of TFX."""
    from tfx.utils import dependency_utils

    def build_ephemeral_package():
        raise AssertionError("TFX built an ephemeral package of itself")

    monkeypatch.setattr(dependency_utils, "build_ephemeral_package", build_ephemeral_package)
    config = configs.PipelineConfig.for_local_run(str(tmp_path / "data"), str(tmp_path / "out"))
    args = list(config.executor_beam_args)
    assert dependency_utils.make_beam_dependency_flags(args) == args
    assert args[-1] == f"--sdk_container_image={configs.PIPELINE_IMAGE}"
    with pytest.raises(AssertionError, match="ephemeral"):  # what the pipeline's own args alone would do
        dependency_utils.make_beam_dependency_flags(list(config.beam_pipeline_args))
