"""The Beam arguments docs/KUBEFLOW.md gives for Flink and Dataflow: the Flink
ones are those tests/test_portable_runner.py runs with, and `catsdogs compile`
carries either set to every Beam component, read back from the compiled spec
the way TFX's KFP v2 container entrypoint reads its arguments."""
import os
import re

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipeline import cli, kubeflow_package  # noqa: E402
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
    assert cli.main(["compile", "--output", path, *[f"--beam-arg={arg}" for arg in beam_args]]) == 0
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
            assert parsed_beam_args == beam_args, task
    assert {task.split("_")[0] for task in beam_tasks} >= set(BEAM_COMPONENTS), beam_tasks
