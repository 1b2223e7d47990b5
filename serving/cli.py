"""`catsdogs serve` and `catsdogs predict`.

`catsdogs serve` takes tensorflow_model_server's command line unchanged
(serving/flags.py): `catsdogs serve --port=8500 --rest_api_port=8501
--model_name=NAME --model_base_path=/models/NAME`, or
`--model_config_file=.../models.config`. Building the parsers imports nothing
heavy (`--help` is instant)."""
import argparse
import json
import logging
import os
import signal
import sys
import threading

PASSTHROUGH_COMMANDS = ("serve",)
SERVE_DESCRIPTION = ("serve models with TF Serving's gRPC and REST APIs; takes tensorflow_model_server's flags, "
                     "written --name=value")


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    from serving import flags  # pylint: disable=import-outside-toplevel
    parser.description = SERVE_DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = flags.usage()


def _add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG or PNG files, sent as one batch")
    parser.add_argument("--server", default="localhost:8500", help="HOST:PORT of the gRPC API")
    parser.add_argument("--model", required=True, help="served model name")
    parser.add_argument("--version", type=int, help="model version (default: the latest)")
    parser.add_argument("--signature", help="signature name (default: serving_default)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--timeout", type=float, help="deadline of the call, retries included (s; default 10)")
    parser.add_argument("--retries", type=int, help="retries on UNAVAILABLE, 0 to 4, by gRPC's retry policy "
                                                   "(default 3)")
    parser.add_argument("--tls", action="store_true", help="use TLS")
    parser.add_argument("--ca-cert", help="PEM file of the CA that signed the server's certificate")


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    if command == "serve":
        _add_serve_arguments(parser)
    elif command == "predict":
        _add_predict_arguments(parser)
    else:
        raise ValueError(f"serving.cli has no sub-command {command}")


def _given(**values) -> dict:
    """The options given on the command line; the rest keep the options class's defaults."""
    return {name: value for name, value in values.items() if value is not None}


def _serve(args) -> int:
    from serving import flags  # pylint: disable=import-outside-toplevel
    try:
        values, given = flags.parse(args.passthrough)
    except flags.FlagError as error:
        print(f"catsdogs serve: {error}", file=sys.stderr)
        return 2
    if values["version"]:
        print(flags.version_text())
        return 0
    from serving.errors import ServingError  # pylint: disable=import-outside-toplevel
    from serving.server import ModelServer, ServerOptions  # pylint: disable=import-outside-toplevel
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for note in flags.not_applicable_notes(given):
        logging.getLogger("serving").info("%s", note)
    if values["enable_profiler"] and "enable_profiler" not in given:
        logging.getLogger("serving").info("the profiler service is not served (TF Serving's "
                                          "--enable_profiler is on by default)")
    try:
        server = ModelServer(ServerOptions.from_flags(values))
        server.start()
    except (ServingError, OSError, ValueError) as error:
        message = error.message if isinstance(error, ServingError) else str(error)
        print(f"catsdogs serve: Failed to start server. Error: {message}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0


def _predict(args) -> int:
    import grpc

    from serving.client import ClientOptions, PredictionClient
    missing = [path for path in args.images if not os.path.isfile(path)]
    if missing:
        print(f"catsdogs predict: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        options = ClientOptions(tls=args.tls, root_certificates_file=args.ca_cert,
                                **_given(timeout_seconds=args.timeout, retries=args.retries))
    except ValueError as error:
        print(f"catsdogs predict: {error}", file=sys.stderr)
        return 2
    try:
        with PredictionClient(args.server, options) as client:
            result = client.predict_files(args.images, args.model, args.version, args.signature)
    except grpc.RpcError as error:
        print(f"catsdogs predict: {args.server}: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"model": result.model, "version": result.version, "predictions": [
            {"file": path, "class": p.class_name, "class_id": p.class_id, "probability": p.probability,
             "probabilities": list(p.probabilities)}
            for path, p in zip(args.images, result.predictions)]}, indent=2))
    else:
        for path, prediction in zip(args.images, result.predictions):
            print(f"{path}\t{prediction.class_name}\t{prediction.probability:.4f}")
    return 0


def run(args) -> int:
    return _serve(args) if args.command == "serve" else _predict(args)
