"""`catsdogs`: the project's one command.

Each sub-command lives in its own module, which defines
`add_arguments(parser, command)` and `run(args) -> int` (args.command is the
sub-command's name, for modules that serve several). A module that reads a
command line of another tool's syntax lists its sub-command in
`PASSTHROUGH_COMMANDS`; it then gets the arguments its parser does not know
as `args.passthrough`. Modules import nothing
heavy at module level and are imported only when their sub-command is named,
so building any parser (every `--help`) imports no TensorFlow or TFX.

A sub-command reports an error as one line, `catsdogs NAME: error: REASON`, on
stderr, and exits with 2 when its input is wrong (arguments, files, data, as
argparse does for a bad command line) or 1 when a system it talks to fails
(a server unreachable or refusing).

Without --verbose, TensorFlow's C++ start-up log is kept from the user
(pipeline/native_logs.py) for the sub-commands that load TensorFlow.
"""
import argparse
import importlib
import sys

VERBOSE_HELP = "show TensorFlow's C++ start-up log and the libraries' INFO logs"


# name -> (module, one-line help, whether the sub-command loads TensorFlow)
SUBCOMMANDS = {
    "run-local": ("pipeline.local_runner", "run the whole pipeline locally (LocalDagRunner, Beam DirectRunner)",
                  True),
    "prepare-data": ("pipeline.prepare_data", "build the book's train/validation/test folders from raw data",
                     False),
    "compile": ("pipeline.kubeflow_cli", "compile the pipeline for Kubeflow Pipelines v2 (YAML)", True),
    "upload": ("pipeline.kubeflow_cli", "upload the compiled pipeline (or a new version) to KFP", False),
    "submit": ("pipeline.kubeflow_cli", "start a run on Kubeflow Pipelines", False),
    "serve": ("serving.cli", "serve pushed models over TF Serving's gRPC and REST APIs", True),
    "predict": ("serving.cli", "send images to a TF Serving endpoint and print the predicted classes", True),
    "explain": ("components.explain.cli", "activations, filter patterns and Grad-CAM for a model and image",
                True),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="catsdogs",
        description="Deep Learning with Python, chapter 5, as a TFX pipeline.")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP + " (any sub-command)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text, _) in SUBCOMMANDS.items():
        subparsers.add_parser(name, help=help_text, description=help_text, add_help=False)
    return parser


def build_subcommand_parser(name: str) -> argparse.ArgumentParser:
    """The parser of `catsdogs NAME`: --verbose, then the module's own flags (a
    module's own --verbose, such as run-local's, replaces the common one)."""
    module_name, help_text, _ = SUBCOMMANDS[name]
    sub = argparse.ArgumentParser(prog=f"catsdogs {name}", description=help_text, conflict_handler="resolve")
    sub.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    importlib.import_module(module_name).add_arguments(sub, name)
    return sub


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    first = next((index for index, arg in enumerate(argv) if not arg.startswith("-")), len(argv))
    global_args = parser.parse_args(argv[:first])  # --help, --verbose, or an error
    if first == len(argv) or argv[first] not in SUBCOMMANDS:
        parser.parse_args(argv[first:] or ["--help"])  # prints help or an "invalid choice" error
        return 2
    name = argv[first]
    module_name, _, loads_tensorflow = SUBCOMMANDS[name]
    parser = build_subcommand_parser(name)
    if name in getattr(importlib.import_module(module_name), "PASSTHROUGH_COMMANDS", ()):
        args, args.passthrough = parser.parse_known_args(argv[first + 1:])
    else:
        args = parser.parse_args(argv[first + 1:])
    args.command = name
    args.verbose = args.verbose or global_args.verbose
    if loads_tensorflow and not args.verbose:
        from pipeline import native_logs  # pylint: disable=import-outside-toplevel
        native_logs.quiet_tensorflow_start()
    return int(importlib.import_module(module_name).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
