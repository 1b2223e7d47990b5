"""`catsdogs run-local` option handling (the pipeline run itself: test_local_pipeline.py)."""
import argparse
import dataclasses
import logging

import pytest

from components.models.scratch.hparams import BOOK_SCRATCH, ScratchHParams
from pipeline import local_runner, model_registry, progress_log


def parse(*argv):
    parser = argparse.ArgumentParser()
    local_runner.add_arguments(parser, "run-local")
    return local_runner.config_from_args(parser.parse_args(["--data-dir", "data/sample", *argv]))


def test_defaults_train_both_models_with_offline_vgg16_weights():
    config = parse()
    assert config.served_names == (model_registry.get("scratch").served_name, model_registry.get("vgg16").served_name)
    assert config.models["vgg16"].hparams.weights == "offline"
    assert config.models["scratch"].hparams == ScratchHParams()  # the recipe aimed at 85%, not the book's


def test_book_preset_then_overrides():
    config = parse("--preset", "book", "--set", "scratch.seed=3")
    assert config.models["scratch"].hparams == dataclasses.replace(BOOK_SCRATCH, seed=3)
    assert config.models["vgg16"].hparams.weights == "offline"


def test_quick_budgets_then_explicit_overrides_win():
    config = parse("--quick", "--set", "scratch.epochs=7", "--set", "vgg16.feature_extraction=augmented",
                   "--models", "scratch,cats_vs_dogs_vgg16")
    scratch, vgg16 = config.models["scratch"].hparams, config.models["vgg16"].hparams
    assert scratch.epochs == 7
    assert scratch.steps_per_epoch == model_registry.get("scratch").quick_hparams["steps_per_epoch"]
    assert vgg16.feature_extraction == "augmented"
    assert vgg16.fine_tune_epochs == model_registry.get("vgg16").quick_hparams["fine_tune_epochs"]
    assert config.served_names == (model_registry.get("scratch").served_name, model_registry.get("vgg16").served_name)
    assert parse("--models", "vgg16").served_names == (model_registry.get("vgg16").served_name,)


def test_quick_lowers_vgg16_s_floor_for_the_sample_and_min_accuracy_still_wins():
    vgg16 = model_registry.get("vgg16")
    assert parse("--quick").models["vgg16"].thresholds.min_accuracy == vgg16.quick_min_accuracy
    assert parse().models["vgg16"].thresholds.min_accuracy == vgg16.default_thresholds.min_accuracy
    assert parse("--quick", "--min-accuracy", "vgg16=0.95").models["vgg16"].thresholds.min_accuracy == 0.95
    # scratch keeps its floor in a smoke run: README shows the gate refusing it
    assert parse("--quick").models["scratch"].thresholds == model_registry.get("scratch").default_thresholds


def test_min_accuracy_sets_one_model_s_blessing_floor():
    config = parse("--min-accuracy", "scratch=0.55")
    assert config.models["scratch"].thresholds.min_accuracy == 0.55
    assert config.models["vgg16"].thresholds == parse().models["vgg16"].thresholds
    assert config.models["scratch"].thresholds.max_accuracy_drop == \
        parse().models["scratch"].thresholds.max_accuracy_drop
    assert parse("--models", "mnist", "--min-accuracy", "mnist=0").models["mnist"].thresholds.min_accuracy == 0.0
    # a model the run does not train: its floor is checked, then has nothing to act on
    assert parse("--min-accuracy", "mnist=0").models == parse().models


@pytest.mark.parametrize("argv, message", [
    (["--models", "resnet"], "unknown model"),
    (["--min-accuracy", "0.5"], "expected MODEL=VALUE"),
    (["--min-accuracy", "resnet=0.5"], "expected MODEL=VALUE"),
    (["--min-accuracy", "scratch=high"], "VALUE a number"),
    (["--min-accuracy", "scratch=1.5"], r"min_accuracy must be in \[0, 1\]"),
    (["--set", "epochs=3"], "expected MODEL.NAME=VALUE"),
    (["--set", "scratch.epoch=3"], "unknown ScratchHParams hyper-parameters"),
    (["--set", "scratch.precision=half"], "precision must be one of"),
    (["--set", "mnist.epoch=3"], "unknown MnistHParams hyper-parameters"),  # checked though not trained
    (["--min-accuracy", "mnist=1.5"], r"min_accuracy must be in \[0, 1\]"),
])
def test_bad_options_are_named(argv, message):
    with pytest.raises(ValueError, match=message):
        parse(*argv)


def test_progress_filter_keeps_project_lines_and_component_events_only():
    keep = progress_log.ProgressLogFilter().filter

    def record(msg, level=logging.INFO, pathname="/site-packages/tfx/orchestration/launcher.py"):
        return logging.LogRecord("absl", level, pathname, 1, msg, (), None)

    assert keep(record("Component Trainer_scratch is running."))
    assert keep(record("Component Trainer_scratch is finished."))
    assert not keep(record("Going to run a new execution: ExecutionInfo(...)"))
    assert keep(record("disk almost full", level=logging.WARNING))
    assert not keep(record("ArtifactQuery.property_predicate is not supported.", level=logging.WARNING))
    assert keep(record("epoch 3/30", pathname=local_runner.__file__))
    # the virtualenv may live inside the checkout: its packages are not the project's
    venv_file = progress_log.ProgressLogFilter.PROJECT_ROOT + "/.venv/lib/python3.11/site-packages/tfx/launcher.py"
    assert not keep(record("Running launcher for node_info {", pathname=venv_file))


def test_run_local_and_compile_accept_the_same_model_names():
    from pipeline import kubeflow_cli, overrides

    for text in ("scratch,vgg16", "cats_vs_dogs_scratch, vgg16", "mnist_convnet"):
        assert kubeflow_cli._models(text) == overrides.parse_models(text)  # pylint: disable=protected-access
    with pytest.raises(argparse.ArgumentTypeError, match="unknown model"):
        kubeflow_cli._models("resnet")  # pylint: disable=protected-access
    with pytest.raises(ValueError, match="unknown model"):
        overrides.parse_models(" , ")


def test_every_runner_applies_settings_in_one_order():
    """preset, then --quick, then --set, then --min-accuracy, over the registry's defaults,
    in run-local as in compile (overrides.model_settings)."""
    from pipeline import kubeflow_runner, overrides
    settings = overrides.RunSettings(preset="book", quick=True, hparams={"scratch": {"epochs": 7}},
                                     min_accuracy={"vgg16": 0.5})
    local = parse("--preset", "book", "--quick", "--set", "scratch.epochs=7", "--min-accuracy", "vgg16=0.5").models
    kubeflow = kubeflow_runner.build_pipeline_config(kubeflow_runner.KubeflowConfig(settings=settings)).models
    assert local == kubeflow == overrides.model_settings(model_registry.DEFAULT_MODELS, settings)
    scratch = local["scratch"].hparams
    assert scratch.epochs == 7  # --set over --quick
    assert scratch.steps_per_epoch == model_registry.get("scratch").quick_hparams["steps_per_epoch"]  # over book
    assert scratch.learning_rate == BOOK_SCRATCH.learning_rate  # the preset over the defaults
    assert local["vgg16"].thresholds.min_accuracy == 0.5  # --min-accuracy over --quick's floor
    assert local["vgg16"].hparams.weights == model_registry.get("vgg16").default_hparams.weights


def test_compile_quick_keeps_what_the_run_sets_as_run_local_does():
    from pipeline import kubeflow_cli, overrides
    parser = argparse.ArgumentParser()
    kubeflow_cli.add_arguments(parser, "compile")
    config = kubeflow_cli.kubeflow_config_from_args(parser.parse_args(["--quick"]))
    assert config.settings == overrides.RunSettings(quick=True)


def test_a_partial_vgg16_json_keeps_the_model_s_default_weights():
    """A vgg16_hparams JSON edited in the KFP UI without `weights` is read over VGG16's
    spec defaults (what every run_fn reads its custom_config with), not over the
    dataclass's (which download ImageNet)."""
    from components.models.vgg16.hparams import Vgg16HParams
    spec = model_registry.get("vgg16")
    hparams = spec.hparams({"fine_tune_epochs": 0, "batch_size": 8})
    assert hparams.weights == spec.default_hparams.weights == "offline" != Vgg16HParams().weights
    assert (hparams.fine_tune_epochs, hparams.batch_size) == (0, 8)
    assert spec.hparams({"weights": "imagenet"}).weights == "imagenet"
    with pytest.raises(ValueError, match="unknown Vgg16HParams hyper-parameters"):
        spec.hparams({"wieghts": "offline"})
    for model in model_registry.MODELS:
        assert model.hparams(None) == model.default_hparams
