"""`catsdogs run-local`: the pipeline on this machine (LocalDagRunner, Beam
DirectRunner, MLMD on SQLite). It only builds a PipelineConfig and runs the
shared create_pipeline()."""
import argparse
import logging
import os

from pipeline.configs import PipelineConfig


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--data-dir", required=True,
                        help="folder with train/, validation/, test/, each holding one folder per class")
    parser.add_argument("--output-dir", default="outputs/local",
                        help="pipeline root, ML metadata and pushed models go here (default: %(default)s)")
    parser.add_argument("--max-rejected-fraction", type=float, default=None,
                        help="fail ingestion when more than this share of image files is rejected (default 0.01)")
    parser.add_argument("--no-cache", action="store_true", help="re-run every component")


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    overrides = {"enable_cache": not args.no_cache}
    config = PipelineConfig.for_local_run(args.data_dir, args.output_dir, **overrides)
    if args.max_rejected_fraction is not None:
        import dataclasses  # pylint: disable=import-outside-toplevel
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
    config = config_from_args(args)
    run_pipeline(config)
    print(f"Pipeline outputs: {config.pipeline_root}")
    print(f"ML metadata:      {config.metadata_path}")
    return 0
