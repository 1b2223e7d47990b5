"""`catsdogs run-local`: the pipeline on this machine (LocalDagRunner, Beam
DirectRunner, MLMD on SQLite). It only builds a PipelineConfig and runs the
shared create_pipeline(); then it prints where the outputs are and, with
--serve-and-predict, serves the pushed models and predicts the test images."""
import argparse
import dataclasses
import logging
import os
import sys

from absl import logging as absl_logging

from components import contract
from components.training.hparams import DEFAULT_PRESET
from pipeline import model_registry, overrides, progress_log
from pipeline.configs import PipelineConfig


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--data-dir", required=True,
                        help="folder with train/, validation/, test/, each holding one folder per class")
    parser.add_argument("--output-dir", default="outputs/local",
                        help="pipeline root, ML metadata and pushed models go here (default: %(default)s)")
    parser.add_argument("--models", default=",".join(model_registry.DEFAULT_MODELS),
                        help="comma-separated models to train: " + ", ".join(model_registry.keys()) +
                             " (default: %(default)s; models taking a different number of channels, such as "
                             "mnist's 28x28x1, need separate runs)")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=model_registry.preset_names(),
                        help="training hyper-parameters to start from: 'default' (the pipeline's recipes; "
                             "scratch's aims at 85%% test accuracy) or 'book' (Deep Learning with Python's "
                             "settings); --quick and --set apply on top (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny training budgets (a few minutes on the shipped sample) and the smoke-run "
                             "blessing floors (" + ", ".join(
                                 f"{key} {floor:g}" for key, floor in model_registry.quick_min_accuracies().items())
                             + "): what `make run` uses")
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.NAME=VALUE",
                        help="override a training hyper-parameter, e.g. --set scratch.epochs=30 "
                             "--set vgg16.fine_tune_epochs=0 (JSON values; repeatable)")
    parser.add_argument("--vgg16-weights", default=None,
                        help="'offline' (ImageNet weights shipped in the environment; VGG16's default), "
                             "'imagenet' (Keras download, needs internet) or a weights file path; "
                             "short for --set vgg16.weights=...")
    parser.add_argument("--min-accuracy", action="append", default=[], metavar="MODEL=VALUE",
                        help="the test accuracy a model needs to be blessed and pushed, e.g. --min-accuracy "
                             "scratch=0.6 (defaults: " + ", ".join(
                                 f"{m.key} {m.default_thresholds.min_accuracy:g}" for m in model_registry.MODELS) +
                             "; repeatable)")
    parser.add_argument("--max-rejected-fraction", type=float, default=None,
                        help="fail ingestion when more than this share of image files is rejected "
                             f"(default {contract.DEFAULT_MAX_REJECTED_FRACTION:g})")
    parser.add_argument("--no-cache", action="store_true", help="re-run every component")
    parser.add_argument("--serve-and-predict", action="store_true",
                        help="afterwards, serve the pushed models over gRPC and predict the test images")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's C++ start-up log and TFX's and Beam's own INFO logs "
                             "(artifact and execution dumps)")


def run_settings(args: argparse.Namespace) -> overrides.RunSettings:
    """--preset, --quick, --set (with --vgg16-weights under it) and --min-accuracy."""
    hparams = overrides.parse_overrides(args.set)
    if args.vgg16_weights is not None:
        hparams["vgg16"] = {"weights": args.vgg16_weights, **hparams.get("vgg16", {})}
    return overrides.RunSettings(preset=args.preset, quick=args.quick, hparams=hparams,
                                 min_accuracy=overrides.parse_min_accuracy(args.min_accuracy))


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The run's PipelineConfig: the selected models with the settings applied in
    overrides.model_settings' order."""
    models = overrides.model_settings(overrides.parse_models(args.models), run_settings(args))
    config = PipelineConfig.for_local_run(args.data_dir, args.output_dir, enable_cache=not args.no_cache,
                                          models=models)
    if args.max_rejected_fraction is not None:
        config = dataclasses.replace(config, ingestion=dataclasses.replace(
            config.ingestion, max_rejected_fraction=args.max_rejected_fraction))
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
        progress_log.show_progress_only()
    try:
        config = config_from_args(args)
    except ValueError as error:
        print(f"catsdogs run-local: error: {error}", file=sys.stderr)
        return 2
    from components.image_example_gen.errors import BadInputError  # pylint: disable=import-outside-toplevel
    from components.image_example_gen.layout import scan_layout  # pylint: disable=import-outside-toplevel
    try:
        scan_layout(config.data_root)  # a wrong --data-dir fails here, before TFX starts
        run_pipeline(config)
    except BadInputError as error:  # the data's fault: its one-line reason, not a traceback
        print(f"catsdogs run-local: error: {error}", file=sys.stderr)
        return 2
    from components.evaluation import run_summary  # pylint: disable=import-outside-toplevel
    print(f"Pipeline outputs: {config.pipeline_root}")
    print(f"ML metadata:      {config.metadata_path}")
    print(f"Served models:    {config.serving_model_dir}")
    for line in run_summary.summary_lines(config.metadata_path):
        print(line)
    if args.serve_and_predict:
        from serving.served_accuracy import measure_served_accuracy  # pylint: disable=import-outside-toplevel
        try:
            measure_served_accuracy(config.serving_model_dir, config.data_root, report=print)
        except FileNotFoundError as error:
            print(f"Nothing to serve: {error}")
    return 0
