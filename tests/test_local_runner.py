"""`catsdogs run-local` option handling (the pipeline run itself: test_local_pipeline.py)."""
import argparse
import dataclasses
import logging

import pytest

from components import contract
from components.training.hparams import BOOK_SCRATCH, ScratchHParams
from pipeline import local_runner


def parse(*argv):
    parser = argparse.ArgumentParser()
    local_runner.add_arguments(parser, "run-local")
    return local_runner.config_from_args(parser.parse_args(["--data-dir", "data/sample", *argv]))


def test_defaults_train_both_models_with_offline_vgg16_weights():
    config = parse()
    assert config.train_models == (contract.SCRATCH_MODEL_NAME, contract.VGG16_MODEL_NAME)
    assert config.vgg16.weights == "offline"
    assert config.scratch == ScratchHParams()  # the recipe aimed at 85%, not the book's


def test_book_preset_then_overrides():
    config = parse("--preset", "book", "--set", "scratch.seed=3")
    assert config.scratch == dataclasses.replace(BOOK_SCRATCH, seed=3)
    assert config.vgg16.weights == "offline"


def test_quick_budgets_then_explicit_overrides_win():
    config = parse("--quick", "--set", "scratch.epochs=7", "--set", "vgg16.feature_extraction=augmented",
                   "--models", "vgg16")
    assert config.scratch.epochs == 7
    assert config.scratch.steps_per_epoch == local_runner.QUICK_HPARAMS["scratch"]["steps_per_epoch"]
    assert config.vgg16.feature_extraction == "augmented"
    assert config.train_models == (contract.VGG16_MODEL_NAME,)


def test_min_accuracy_sets_one_model_s_blessing_floor():
    config = parse("--min-accuracy", "mnist=0", "--min-accuracy", "scratch=0.55")
    assert config.evaluation.mnist.min_accuracy == 0.0 and config.evaluation.scratch.min_accuracy == 0.55
    assert config.evaluation.vgg16 == parse().evaluation.vgg16
    assert config.evaluation.scratch.max_accuracy_drop == parse().evaluation.scratch.max_accuracy_drop


@pytest.mark.parametrize("argv, message", [
    (["--models", "resnet"], "unknown model"),
    (["--min-accuracy", "0.5"], "expected MODEL=VALUE"),
    (["--min-accuracy", "resnet=0.5"], "expected MODEL=VALUE"),
    (["--min-accuracy", "scratch=high"], "VALUE a number"),
    (["--min-accuracy", "scratch=1.5"], r"min_accuracy must be in \[0, 1\]"),
    (["--set", "epochs=3"], "expected MODEL.NAME=VALUE"),
    (["--set", "scratch.epoch=3"], "unknown ScratchHParams hyper-parameters"),
    (["--set", "scratch.precision=half"], "precision must be one of"),
])
def test_bad_options_are_named(argv, message):
    with pytest.raises(ValueError, match=message):
        parse(*argv)


def test_progress_filter_keeps_project_lines_and_component_events_only():
    keep = local_runner.ProgressLogFilter().filter

    def record(msg, level=logging.INFO, pathname="/site-packages/tfx/orchestration/launcher.py"):
        return logging.LogRecord("absl", level, pathname, 1, msg, (), None)

    assert keep(record("Component Trainer_scratch is running."))
    assert keep(record("Component Trainer_scratch is finished."))
    assert not keep(record("Going to run a new execution: ExecutionInfo(...)"))
    assert keep(record("disk almost full", level=logging.WARNING))
    assert not keep(record("ArtifactQuery.property_predicate is not supported.", level=logging.WARNING))
    assert keep(record("epoch 3/30", pathname=local_runner.__file__))
    # the virtualenv may live inside the checkout: its packages are not the project's
    venv_file = local_runner.ProgressLogFilter.PROJECT_ROOT + "/.venv/lib/python3.11/site-packages/tfx/launcher.py"
    assert not keep(record("Running launcher for node_info {", pathname=venv_file))
