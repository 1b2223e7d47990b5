"""`catsdogs`: the project's one command.

Each sub-command lives in its own module, which defines
`add_arguments(parser, command)` and `run(args) -> int` (args.command is the
sub-command's name, for modules that serve several); modules are imported only when
their sub-command runs, so `catsdogs --help` stays fast (no TensorFlow import).
"""
import argparse
import importlib
import sys

# name -> (module, one-line help)
SUBCOMMANDS = {
    "run-local": ("pipeline.local_runner", "run the whole pipeline locally (LocalDagRunner, Beam DirectRunner)"),
    "prepare-data": ("pipeline.prepare_data", "build the book's train/validation/test folders from raw data"),
    "compile": ("pipeline.kubeflow_cli", "compile the pipeline for Kubeflow Pipelines v2 (YAML)"),
    "upload": ("pipeline.kubeflow_cli", "upload the compiled pipeline (or a new version) to KFP"),
    "submit": ("pipeline.kubeflow_cli", "start a run on Kubeflow Pipelines"),
    "serve": ("serving.cli", "serve pushed models over TF Serving's gRPC and REST APIs"),
    "predict": ("serving.cli", "send images to a TF Serving endpoint and print the predicted classes"),
    "explain": ("components.explain.cli", "activations, filter patterns and Grad-CAM for a model and image"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="catsdogs",
        description="Deep Learning with Python, chapter 5, as a TFX pipeline.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        subparsers.add_parser(name, help=help_text, description=help_text, add_help=False)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in SUBCOMMANDS:
        parser.parse_args(argv or ["--help"])  # prints help or an "invalid choice" error
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_text = SUBCOMMANDS[name]
    module = importlib.import_module(module_name)
    sub = argparse.ArgumentParser(prog=f"catsdogs {name}", description=help_text)
    module.add_arguments(sub, name)
    args = sub.parse_args(rest)
    args.command = name
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
