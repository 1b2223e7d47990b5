"""`catsdogs run-local`: the pipeline on this machine (LocalDagRunner, Beam
DirectRunner, MLMD on SQLite). It only builds a PipelineConfig and runs the
shared create_pipeline(); then it prints where the outputs are and, with
--serve-and-predict, serves the pushed models and predicts the test images."""
import argparse
import dataclasses
import json
import logging
import os
from typing import Dict, List, Sequence

from absl import logging as absl_logging

from components.training.hparams import DEFAULT_PRESET, PRESETS
from pipeline import model_registry
from pipeline.configs import PipelineConfig

MODEL_ALIASES = {model.key: model.served_name for model in model_registry.MODELS}
HPARAM_SECTIONS = {model.key: model.key for model in model_registry.MODELS}

# A smoke run: every stage runs for real on the shipped sample, with budgets
# that fit a few minutes on 2 CPU cores. VGG16 uses fast feature extraction
# (the conv base runs once) and a short fine-tuning on cached activations.
QUICK_HPARAMS = {
    "scratch": {"epochs": 2, "steps_per_epoch": 3, "batch_size": 16},
    "vgg16": {"feature_extraction": "fast", "feature_extraction_epochs": 15, "fine_tune_epochs": 1,
              "fine_tune_augment": False, "steps_per_epoch": None, "batch_size": 20},
    # The MNIST convnet is small: the book's budget (5 epochs) stays. On the 1,078
    # scikit-learn digits that is only 85 steps; --set mnist.epochs=20 passes its 0.97 gate.
    "mnist": {},
}


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--data-dir", required=True,
                        help="folder with train/, validation/, test/, each holding one folder per class")
    parser.add_argument("--output-dir", default="outputs/local",
                        help="pipeline root, ML metadata and pushed models go here (default: %(default)s)")
    parser.add_argument("--models", default="scratch,vgg16",
                        help="comma-separated models to train: " + ", ".join(MODEL_ALIASES) +
                             " (default: %(default)s; models taking different image shapes, such as "
                             "mnist's 28x28x1, need separate runs)")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS),
                        help="training hyper-parameters to start from: 'default' (the pipeline's recipes; "
                             "scratch's aims at 85%% test accuracy) or 'book' (Deep Learning with Python's "
                             "settings); --quick and --set apply on top (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny training budgets (a few minutes on the shipped sample): what `make run` uses")
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.NAME=VALUE",
                        help="override a training hyper-parameter, e.g. --set scratch.epochs=30 "
                             "--set vgg16.fine_tune_epochs=0 (JSON values; repeatable)")
    parser.add_argument("--vgg16-weights", default="offline",
                        help="'offline' (ImageNet weights shipped in the environment; default), "
                             "'imagenet' (Keras download, needs internet) or a weights file path")
    parser.add_argument("--min-accuracy", action="append", default=[], metavar="MODEL=VALUE",
                        help="the test accuracy a model needs to be blessed and pushed, e.g. --min-accuracy "
                             "scratch=0.6 (defaults: " + ", ".join(
                                 f"{m.key} {m.default_thresholds.min_accuracy:g}" for m in model_registry.MODELS) +
                             "; repeatable)")
    parser.add_argument("--max-rejected-fraction", type=float, default=None,
                        help="fail ingestion when more than this share of image files is rejected (default 0.01)")
    parser.add_argument("--no-cache", action="store_true", help="re-run every component")
    parser.add_argument("--serve-and-predict", action="store_true",
                        help="afterwards, serve the pushed models over gRPC and predict the test images")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's C++ start-up log and TFX's and Beam's own INFO logs "
                             "(artifact and execution dumps)")


class ProgressLogFilter(logging.Filter):
    """Keeps what a person follows a run by: this project's own log lines
    (ingestion counts, training epochs, push decisions), component start and
    finish, and every warning. TFX's INFO output is mostly multi-line dumps of
    MLMD artifacts and executions, which bury the progress."""

    PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    PROJECT_DIRS = (os.path.join(PROJECT_ROOT, "pipeline", ""), os.path.join(PROJECT_ROOT, "components", ""),
                    os.path.join(PROJECT_ROOT, "serving", ""))

    # Warnings TFX repeats for every input resolution on a SQLite MLMD (it has
    # no ZetaSQL); they say nothing about the run.
    KNOWN_NOISE = ("ArtifactQuery.property_predicate is not supported",
                   "Fallback to non-ZetaSQL contexts execution query")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.pathname.startswith(self.PROJECT_DIRS):
            return True
        if record.levelno >= logging.WARNING:
            return not str(record.msg).startswith(self.KNOWN_NOISE)
        message = str(record.msg)
        return message.startswith("Component ") and message.rstrip(".").endswith(("running", "finished"))


def parse_models(text: str) -> List[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MODEL_ALIASES and name not in MODEL_ALIASES.values()]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODEL_ALIASES)}")
    return [MODEL_ALIASES.get(name, name) for name in names]


def parse_overrides(assignments: Sequence[str]) -> Dict[str, Dict[str, object]]:
    """['scratch.epochs=3', ...] -> {'scratch': {'epochs': 3}}; values are JSON (bare words are strings)."""
    overrides: Dict[str, Dict[str, object]] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in HPARAM_SECTIONS:
            raise ValueError(f"--set {assignment!r}: expected MODEL.NAME=VALUE with MODEL one of "
                             f"{', '.join(HPARAM_SECTIONS)}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        overrides.setdefault(section, {})[name] = value
    return overrides


def parse_min_accuracy(assignments: Sequence[str]) -> Dict[str, float]:
    """['scratch=0.6', ...] -> {'scratch': 0.6}."""
    floors: Dict[str, float] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        try:
            floors[key] = float(raw)
        except ValueError:
            sep = ""
        if not sep or key not in HPARAM_SECTIONS:
            raise ValueError(f"--min-accuracy {assignment!r}: expected MODEL=VALUE with MODEL one of "
                             f"{', '.join(HPARAM_SECTIONS)} and VALUE a number")
    return floors


def _with_hparams(config: PipelineConfig, section: str, values: Dict[str, object]) -> PipelineConfig:
    current = getattr(config, HPARAM_SECTIONS[section])
    merged = dict(current.as_custom_config(), **values)
    return dataclasses.replace(config, **{HPARAM_SECTIONS[section]: type(current).from_custom_config(merged)})


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    config = PipelineConfig.for_local_run(args.data_dir, args.output_dir,
                                          enable_cache=not args.no_cache,
                                          train_models=tuple(parse_models(args.models)))
    config = _with_hparams(config, "vgg16", {"weights": args.vgg16_weights})
    for section, hparams in PRESETS[args.preset].items():
        config = _with_hparams(config, section, hparams.as_custom_config())
    if args.quick:
        for section, values in QUICK_HPARAMS.items():
            config = _with_hparams(config, section, values)
    for section, values in parse_overrides(args.set).items():
        config = _with_hparams(config, section, values)
    for key, floor in parse_min_accuracy(args.min_accuracy).items():
        thresholds = dataclasses.replace(getattr(config.evaluation, key), min_accuracy=floor)
        config = dataclasses.replace(config, evaluation=dataclasses.replace(config.evaluation, **{key: thresholds}))
    if args.max_rejected_fraction is not None:
        config = dataclasses.replace(config, ingestion=dataclasses.replace(
            config.ingestion, max_rejected_fraction=args.max_rejected_fraction))
    model_registry.image_shape_for(config.train_models)  # refuses a mix of image shapes, before the run
    return config


def run_pipeline(config: PipelineConfig) -> None:
    from tfx import v1 as tfx  # pylint: disable=import-outside-toplevel
    from pipeline.pipeline import create_pipeline  # pylint: disable=import-outside-toplevel

    os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
    metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config, metadata))


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # absl (which TFX and the Trainers log through) drops INFO unless told, as in TFX's templates.
    absl_logging.set_verbosity(absl_logging.INFO)
    if not args.verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(ProgressLogFilter())
    try:
        config = config_from_args(args)
    except ValueError as error:
        print(f"run-local: {error}")
        return 2
    from components.image_example_gen.errors import BadInputError  # pylint: disable=import-outside-toplevel
    from components.image_example_gen.layout import scan_layout  # pylint: disable=import-outside-toplevel
    try:
        scan_layout(config.data_root)  # a wrong --data-dir fails here, before TFX starts
        run_pipeline(config)
    except BadInputError as error:  # the data's fault: its one-line reason, not a traceback
        print(f"run-local: {error}")
        return 2
    from components.evaluation import run_summary  # pylint: disable=import-outside-toplevel
    print(f"Pipeline outputs: {config.pipeline_root}")
    print(f"ML metadata:      {config.metadata_path}")
    print(f"Served models:    {config.serving_model_dir}")
    for line in run_summary.summary_lines(config.metadata_path):
        print(line)
    if args.serve_and_predict:
        from serving import smoke  # pylint: disable=import-outside-toplevel
        try:
            smoke.serve_and_predict(config.serving_model_dir, config.data_root)
        except FileNotFoundError as error:
            print(f"Nothing to serve: {error}")
    return 0
