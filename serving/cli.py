"""`catsdogs serve` and `catsdogs predict`.

Flags follow tensorflow_model_server's names (hyphens; the underscore
spellings are accepted too, so k8s args carry over). Building the parsers
imports nothing heavy (`--help` is instant): flags without a value on the
command line parse to None and take ServerOptions'/ClientOptions' defaults
when the sub-command runs."""
import argparse
import json
import logging
import os
import signal
import sys
import threading

from components import contract


def _flag(parser, name: str, **kwargs):
    spellings = [f"--{name}"]
    if "-" in name:
        spellings.append(f"--{name.replace('-', '_')}")
    parser.add_argument(*spellings, **kwargs)


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    _flag(parser, "model-base-path",
          help="serving root: one model per sub-folder, versions as <name>/<int>/saved_model.pb "
               "(with --model-config-file: the folder relative base_paths are resolved against)")
    _flag(parser, "model-config-file", help="TF Serving models.config (ModelServerConfig text proto)")
    _flag(parser, "port", type=int, help="gRPC port (0: any free port; default 8500)")
    _flag(parser, "rest-api-port", type=int, help="REST port (0: any free port, -1: no REST API; default 8501)")
    parser.add_argument("--rest-port", dest="rest_api_port", type=int, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)
    _flag(parser, "host", help="interface to listen on (default 0.0.0.0)")
    _flag(parser, "file-system-poll-wait-seconds", type=float,
          help="seconds between scans for new model versions (0: scan once; default 1)")
    _flag(parser, "enable-batching", nargs="?", const=True, default=False, type=_boolean,
          help="batch concurrent requests server-side (also --enable_batching=true)")
    _flag(parser, "batching-parameters-file", help="TF Serving BatchingParameters text proto")
    _flag(parser, "max-request-bytes", type=int, help="larger requests get RESOURCE_EXHAUSTED (default 64 MiB)")
    _flag(parser, "max-num-load-retries", type=int,
          help="retries of a version that fails to load, with backoff; a version whose files change "
               "is retried afresh (default 5)")
    _flag(parser, "max-image-pixels", type=int,
          help="images whose header gives more pixels (width x height) get INVALID_ARGUMENT before "
               f"decoding (0: no limit; default {contract.DEFAULT_MAX_IMAGE_PIXELS}, as ingestion)")
    _flag(parser, "grpc-max-threads", type=int, help="gRPC worker threads (default 16)")
    _flag(parser, "monitoring-config-file", help="TF Serving MonitoringConfig text proto (Prometheus)")
    _flag(parser, "ssl-config-file", help="TF Serving SSLConfig text proto (PEM contents)")
    _flag(parser, "no-model-warmup", action="store_true",
          help="do not replay assets.extra/tf_serving_warmup_requests at load")


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
    from serving.server import ModelServer, ServerOptions
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    no_rest = args.rest_api_port is not None and args.rest_api_port < 0
    options = ServerOptions(
        model_base_path=args.model_base_path, model_config_file=args.model_config_file,
        enable_batching=args.enable_batching, batching_parameters_file=args.batching_parameters_file,
        enable_model_warmup=not args.no_model_warmup, monitoring_config_file=args.monitoring_config_file,
        ssl_config_file=args.ssl_config_file,
        **({"rest_api_port": None} if no_rest else _given(rest_api_port=args.rest_api_port)),
        **_given(host=args.host, port=args.port, file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
                 max_request_bytes=args.max_request_bytes, grpc_max_threads=args.grpc_max_threads,
                 max_image_pixels=args.max_image_pixels, max_num_load_retries=args.max_num_load_retries))
    try:
        server = ModelServer(options)
    except (ValueError, OSError, RuntimeError) as error:
        print(f"catsdogs serve: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    # Printed (not only logged) so that scripts and tests can read the bound ports.
    print(f"serving gRPC on {options.host}:{server.port}"
          + (f", REST on {options.host}:{server.rest_port}" if server.rest_port else ""), flush=True)
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
