"""tensorflow_model_server's command line, read the way TF Serving reads it.

Every flag of TF Serving's main.cc is known here with its type and default
(tensorflow_serving/model_servers/main.cc and the Options of server.h). Each
is one of:

- implemented: same name, same meaning, same default;
- accepted only at its default: a value that would change what TF Serving
  does in a way this server does not reproduce is refused with one line
  naming the flag;
- not applicable: it tunes something this server does not have (file-system
  caches, TPUs, TF Lite interpreter pools); any value is accepted and the
  server says at start-up that it has no effect.

Values are written as TensorFlow's flag parser takes them
(tensorflow/core/util/command_line_flags.cc): `--name=value` (or `-name=value`);
a bool flag may also be given bare (`--enable_batching`). `--port 8500` with a
space is not TF Serving's syntax and is refused, so a command line that works
here works with the real binary.

Flags of this server's own start with `--catsdogs_`, a prefix TF Serving
never uses.
"""
import dataclasses
import os
from typing import Dict, List, Optional, Tuple

from components import contract

CPU_COUNT = os.cpu_count() or 1
OWN_PREFIX = "catsdogs_"


class FlagError(ValueError):
    """The command line cannot be served as given; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Flag:
    name: str
    kind: type
    default: object
    # "implemented", "default_only" or "not_applicable"
    support: str
    help: str
    why: str = ""
    # The one value a "default_only" flag takes, when it is not the default.
    only: object = None

    @property
    def accepted(self):
        return self.default if self.only is None else self.only


def _flags() -> List[Flag]:
    implemented, default_only, not_applicable = "implemented", "default_only", "not_applicable"
    return [
        Flag("port", int, 8500, implemented, "TCP port for the gRPC API; 0: no TCP port (then "
             "--grpc_socket_path is required)"),
        Flag("grpc_socket_path", str, "", implemented, "also serve the gRPC API on this UNIX socket"),
        Flag("rest_api_port", int, 0, implemented, "port of the HTTP/REST API; 0: no REST API"),
        Flag("rest_api_num_threads", int, 4 * CPU_COUNT, implemented, "threads that run REST requests"),
        Flag("rest_api_timeout_in_ms", int, 30000, implemented, "deadline of a REST request's model run"),
        Flag("rest_api_enable_cors_support", bool, False, implemented, "add CORS headers to REST answers"),
        Flag("enable_batching", bool, False, implemented, "batch concurrent requests server-side"),
        Flag("allow_version_labels_for_unavailable_models", bool, False, implemented,
             "allow a new version label to name a version that is not loaded yet"),
        Flag("batching_parameters_file", str, "", implemented, "BatchingParameters text proto"),
        Flag("enable_per_model_batching_parameters", bool, False, default_only,
             "read batching_params.pbtxt from each SavedModel",
             "per-model batching parameters are not read; one --batching_parameters_file applies to all"),
        Flag("model_config_file", str, "", implemented, "ModelServerConfig text proto listing the models "
             "(--model_name and --model_base_path are then ignored)"),
        Flag("model_config_file_poll_wait_seconds", int, 0, implemented,
             "seconds between re-reads of --model_config_file; 0: read once"),
        Flag("model_name", str, "default", implemented, "name of the one model of --model_base_path"),
        Flag("model_base_path", str, "", implemented, "folder of one model's numbered version folders"),
        Flag("num_load_threads", int, 0, default_only, "threads that load versions",
             "versions load one at a time, as TF Serving does with the default 0"),
        Flag("num_unload_threads", int, 0, default_only, "threads that unload versions",
             "versions unload one at a time, as TF Serving does with the default 0"),
        Flag("max_num_load_retries", int, 5, implemented, "retries of a version that failed to load"),
        Flag("load_retry_interval_micros", int, 60 * 1000 * 1000, implemented,
             "wait between load retries (microseconds)"),
        Flag("file_system_poll_wait_seconds", int, 1, implemented,
             "seconds between scans for new versions; 0: scan once"),
        Flag("flush_filesystem_caches", bool, True, not_applicable, "flush file-system caches after loads",
             "TensorFlow's file-system caches are flushed by the C++ server only"),
        Flag("tensorflow_session_parallelism", int, 0, implemented, "inter- and intra-op threads (set once, "
             "before TensorFlow starts)"),
        Flag("tensorflow_session_config_file", str, "", default_only, "TensorFlow ConfigProto text proto",
             "no session ConfigProto is read; the thread-pool flags set TensorFlow's threads"),
        Flag("tensorflow_intra_op_parallelism", int, 0, implemented, "intra-op threads"),
        Flag("tensorflow_inter_op_parallelism", int, 0, implemented, "inter-op threads"),
        Flag("use_alts_credentials", bool, False, implemented, "Google ALTS credentials for gRPC"),
        Flag("ssl_config_file", str, "", implemented, "SSLConfig text proto: TLS for gRPC"),
        Flag("platform_config_file", str, "", default_only, "PlatformConfigMap text proto",
             "only the tensorflow platform is served; its settings come from the flags"),
        Flag("per_process_gpu_memory_fraction", float, 0.0, default_only, "GPU memory fraction per process",
             "GPU memory is allocated as TensorFlow's Python runtime does"),
        Flag("saved_model_tags", str, "serve", implemented, "comma-separated MetaGraph tags to load"),
        Flag("grpc_channel_arguments", str, "", implemented, "comma-separated gRPC server arguments"),
        Flag("grpc_max_threads", int, 4 * CPU_COUNT, implemented, "threads that run gRPC requests"),
        Flag("enable_model_warmup", bool, True, implemented,
             "replay assets.extra/tf_serving_warmup_requests at load"),
        Flag("num_request_iterations_for_warmup", int, 0, implemented, "replays of each warmup record"),
        Flag("version", bool, False, implemented, "print the version and exit"),
        Flag("monitoring_config_file", str, "", implemented, "MonitoringConfig text proto (Prometheus)"),
        Flag("remove_unused_fields_from_bundle_metagraph", bool, True, not_applicable,
             "drop unused MetaGraphDef fields after load", "a memory saving of the C++ bundle"),
        Flag("prefer_tflite_model", bool, False, default_only, "load model.tflite instead of saved_model.pb",
             "TF Lite models are not served"),
        Flag("num_tflite_pools", int, CPU_COUNT, not_applicable, "TF Lite interpreter pools",
             "TF Lite models are not served"),
        Flag("num_tflite_interpreters_per_pool", int, 1, not_applicable, "TF Lite interpreters per pool",
             "TF Lite models are not served"),
        Flag("enable_signature_method_name_check", bool, False, implemented,
             "require predict/classify/regress method names in SignatureDefs"),
        Flag("xla_cpu_compilation_enabled", bool, False, default_only, "enable XLA:CPU JIT",
             "XLA JIT is left as TensorFlow's Python runtime has it"),
        Flag("xla_gpu_compilation_enabled", bool, False, default_only, "enable XLA:CPU and XLA:GPU JIT",
             "XLA JIT is left as TensorFlow's Python runtime has it"),
        Flag("enable_profiler", bool, True, default_only, "serve TensorFlow's profiler service",
             "the profiler service is not served; pass --enable_profiler=false", only=False),
        Flag("thread_pool_factory_config_file", str, "", default_only, "ThreadPoolConfig text proto",
             "custom thread-pool factories are C++ plug-ins"),
        Flag("mixed_precision", str, "", default_only, "mixed precision mode (bfloat16)",
             "models run in the precision they were exported in"),
        Flag("skip_initialize_tpu", bool, False, not_applicable, "skip TPU initialisation", "no TPU support"),
        Flag("enable_grpc_healthcheck_service", bool, False, implemented,
             "serve grpc.health.v1.Health (ModelService, PredictionService: SERVING)"),
        Flag("enable_serialization_as_tensor_content", bool, False, implemented,
             "answer Predict tensors in tensor_content instead of typed fields"),
    ]


def _own_flags() -> List[Flag]:
    return [
        Flag(f"{OWN_PREFIX}host", str, "0.0.0.0", "implemented",
             "interface the gRPC and REST ports listen on (TF Serving: all interfaces)"),
        Flag(f"{OWN_PREFIX}max_request_bytes", int, 64 * 1024 * 1024, "implemented",
             "larger gRPC messages and REST bodies get RESOURCE_EXHAUSTED / HTTP 429"),
        Flag(f"{OWN_PREFIX}max_image_pixels", int, contract.DEFAULT_MAX_IMAGE_PIXELS, "implemented",
             "images whose header gives more pixels get INVALID_ARGUMENT before decoding (0: no limit)"),
    ]


TF_SERVING_FLAGS = _flags()
OWN_FLAGS = _own_flags()
FLAGS_BY_NAME: Dict[str, Flag] = {flag.name: flag for flag in TF_SERVING_FLAGS + OWN_FLAGS}
_TRUE, _FALSE = ("true", "1"), ("false", "0")


def _parse_value(flag: Flag, text: Optional[str]):
    if flag.kind is bool:
        if text is None or text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise FlagError(f"--{flag.name}={text}: expected true or false")
    if text is None:
        raise FlagError(f"--{flag.name} needs a value, written --{flag.name}=VALUE")
    if flag.kind is int:
        try:
            return int(text.strip())
        except ValueError:
            raise FlagError(f"--{flag.name}={text}: expected an integer") from None
    if flag.kind is float:
        try:
            return float(text.strip())
        except ValueError:
            raise FlagError(f"--{flag.name}={text}: expected a number") from None
    return text


def parse(argv: List[str]) -> Tuple[Dict[str, object], List[str]]:
    """(value of every flag, names given on the command line). FlagError on
    anything TF Serving would not take or this server does not do."""
    values = {flag.name: flag.default for flag in FLAGS_BY_NAME.values()}
    given: List[str] = []
    for arg in argv:
        if not arg.startswith("-") or arg in ("-", "--"):
            raise FlagError(f"unknown argument: {arg} (flags are written --name=value)")
        name, separator, text = arg.lstrip("-").partition("=")
        flag = FLAGS_BY_NAME.get(name)
        if flag is None:
            raise FlagError(f"unknown flag: --{name}")
        values[name] = _parse_value(flag, text if separator else None)
        given.append(name)
    for name in given:
        flag = FLAGS_BY_NAME[name]
        if flag.support == "default_only" and values[name] != flag.accepted:
            raise FlagError(f"--{name}={_format(values[name])} is not supported by catsdogs serve: {flag.why}")
    return values, given


def _format(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def not_applicable_notes(given: List[str]) -> List[str]:
    """One line per not-applicable flag given on the command line."""
    return [f"--{name} has no effect in catsdogs serve: {FLAGS_BY_NAME[name].why}"
            for name in given if FLAGS_BY_NAME[name].support == "not_applicable"]


def usage() -> str:
    lines = ["TF Serving's flags (tensorflow_model_server's command line), with their defaults:"]
    for flag in TF_SERVING_FLAGS + OWN_FLAGS:
        if flag is OWN_FLAGS[0]:
            lines += ["", "Flags of catsdogs serve only:"]
        note = {"default_only": f" [only {_format(flag.accepted)!r}: {flag.why}]",
                "not_applicable": f" [no effect: {flag.why}]"}.get(flag.support, "")
        lines.append(f"  --{flag.name}={_format(flag.default)}  ({flag.kind.__name__}) {flag.help}{note}")
    return "\n".join(lines)


def version_text() -> str:
    """--version: says what this is, so nothing takes it for tensorflow_model_server."""
    from importlib import metadata  # pylint: disable=import-outside-toplevel
    return ("catsdogs serve: a TF Serving-compatible model server in Python (not TensorFlow ModelServer)\n"
            f"TensorFlow Library: {metadata.version('tensorflow')}")
