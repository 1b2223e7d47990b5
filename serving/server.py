"""The model server: TF Serving's gRPC services and REST API over one
ModelManager, started in TF Serving's order
(tensorflow_serving/model_servers/server.cc, Server::BuildAndStart): check
the options, load every configured model and wait until each is available,
then open the gRPC port (and UNIX socket), then the REST port.

Hand-written because no tensorflow_model_server binary installs here (TF
Serving ships as a container image); on a cluster, serve with the official
tensorflow/serving image: same flags, API and model layout.
"""
import dataclasses
import logging
import os
import threading
from concurrent import futures
from typing import List, Optional, Tuple

import grpc

from serving import model_config as configs
from serving.batching import BatchingOptions
from serving.config_protos import MonitoringConfig, SSLConfig, read_text_proto
from serving.errors import ServingError, invalid_argument
from serving.flags import CPU_COUNT, OWN_PREFIX
from serving.grpc_services import add_services
from serving.health import add_health_service
from serving.http_server import HttpServer
from serving.image_header import DEFAULT_MAX_IMAGE_PIXELS
from serving.metrics import Metrics
from serving.model_manager import ManagerOptions, ModelManager
from serving.request_options import RequestOptions
from serving.rest_api import RestApi
from serving.servable import SERVE_TAG

log = logging.getLogger(__name__)
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


@dataclasses.dataclass
class ServerOptions:
    """tensorflow_model_server's options under its flag names and defaults
    (serving/flags.py), and this server's own (host, max_request_bytes,
    max_image_pixels)."""
    port: int = 8500
    grpc_socket_path: str = ""
    rest_api_port: int = 0
    rest_api_num_threads: int = 4 * CPU_COUNT
    rest_api_timeout_in_ms: int = 30000
    rest_api_enable_cors_support: bool = False
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: float = 1
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60 * 1000 * 1000
    enable_batching: bool = False
    batching_parameters_file: str = ""
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 0
    allow_version_labels_for_unavailable_models: bool = False
    saved_model_tags: str = SERVE_TAG
    tensorflow_session_parallelism: int = 0
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    grpc_channel_arguments: str = ""
    grpc_max_threads: int = 4 * CPU_COUNT
    use_alts_credentials: bool = False
    ssl_config_file: str = ""
    monitoring_config_file: str = ""
    enable_signature_method_name_check: bool = False
    enable_grpc_healthcheck_service: bool = False
    enable_serialization_as_tensor_content: bool = False
    host: str = "0.0.0.0"
    max_request_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS

    @classmethod
    def from_flags(cls, values: dict) -> "ServerOptions":
        own = {name[len(OWN_PREFIX):]: value for name, value in values.items() if name.startswith(OWN_PREFIX)}
        fields = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in {**values, **own}.items() if name in fields})


def grpc_channel_arguments(text: str) -> List[Tuple[str, object]]:
    """parseGrpcChannelArgs: "key=value,..."; a value that reads as an int32
    is passed as one, anything else as a string."""
    arguments = []
    for item in filter(None, text.split(",")):
        key, separator, value = item.partition("=")
        if not separator:
            raise invalid_argument(f"--grpc_channel_arguments: {item!r} is not key=value")
        try:
            number = int(value)
            arguments.append((key, number if -2 ** 31 <= number < 2 ** 31 else value))
        except ValueError:
            arguments.append((key, value))
    return arguments


def _server_credentials(options: ServerOptions) -> Optional[grpc.ServerCredentials]:
    """BuildServerCredentials: ALTS, TLS from SSLConfig (PEM contents, not paths), or none."""
    if options.use_alts_credentials:
        return grpc.alts_server_credentials()
    if not options.ssl_config_file:
        return None
    config = read_text_proto(options.ssl_config_file, SSLConfig)
    if not config.server_key or not config.server_cert:
        raise invalid_argument(f"{options.ssl_config_file}: server_key and server_cert are required")
    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() or None,
        require_client_auth=config.client_verify)


def _apply_thread_settings(options: ServerOptions) -> None:
    """--tensorflow_*_parallelism (server.cc): both thread pools from the
    session flag, or each from its own; 0 leaves TensorFlow's choice."""
    intra, inter = options.tensorflow_intra_op_parallelism, options.tensorflow_inter_op_parallelism
    if intra > 0 and inter > 0 and options.tensorflow_session_parallelism > 0:
        raise invalid_argument("Either configure server_options.tensorflow_session_parallelism or "
                               "(server_options.tensorflow_intra_op_parallelism, "
                               "server_options.tensorflow_inter_op_parallelism) separately. "
                               "You cannot configure all.")
    if not (intra > 0 or inter > 0):
        intra = inter = options.tensorflow_session_parallelism
    if intra <= 0 and inter <= 0:
        return
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    try:
        if intra > 0:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter > 0:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as error:  # TensorFlow had started already (a server in a process that ran it)
        raise invalid_argument(f"thread settings must be made before TensorFlow starts: {error}") from None


def _batching(options: ServerOptions) -> Optional[BatchingOptions]:
    if not options.enable_batching:
        if options.batching_parameters_file:
            raise invalid_argument("server_options.batching_parameters_file is set without setting "
                                   "server_options.enable_batching to true.")
        return None
    if options.batching_parameters_file:
        return BatchingOptions.from_file(options.batching_parameters_file)
    return BatchingOptions()


def _prometheus_path(options: ServerOptions) -> Optional[str]:
    if not options.monitoring_config_file:
        return None
    monitoring = read_text_proto(options.monitoring_config_file, MonitoringConfig)
    if not monitoring.prometheus_config.enable:
        return None
    return monitoring.prometheus_config.path or DEFAULT_PROMETHEUS_PATH


class ModelServer:
    """start() loads the models and opens the ports (raises ServingError or
    OSError when it cannot), stop() closes them; also a context manager.
    port / rest_port are the bound ports (None when not opened)."""

    def __init__(self, options: ServerOptions):
        if options.port == 0 and not options.grpc_socket_path:
            raise invalid_argument("At least one of server_options.grpc_port or server_options.grpc_socket_path "
                                   "must be set.")
        if options.use_alts_credentials and options.ssl_config_file:
            raise invalid_argument("Either use_alts_credentials must be false or ssl_config_file must be empty.")
        if not options.model_base_path and not options.model_config_file:
            raise invalid_argument("Both server_options.model_base_path and server_options.model_config_file "
                                   "are empty!")
        self.options = options
        _apply_thread_settings(options)
        self.request_options = RequestOptions(
            method_name_check=options.enable_signature_method_name_check,
            tensor_content=options.enable_serialization_as_tensor_content,
            max_image_pixels=options.max_image_pixels)
        self.manager = ModelManager(ManagerOptions(
            file_system_poll_wait_seconds=options.file_system_poll_wait_seconds,
            max_num_load_retries=options.max_num_load_retries,
            load_retry_interval_seconds=max(options.load_retry_interval_micros, 0) / 1e6,
            batching=_batching(options),
            enable_model_warmup=options.enable_model_warmup,
            warmup_iterations=max(options.num_request_iterations_for_warmup, 1),
            saved_model_tags=tuple(options.saved_model_tags.split(",")),
            allow_version_labels_for_unavailable_models=options.allow_version_labels_for_unavailable_models,
            request_options=self.request_options))
        self.metrics = Metrics()
        self.port: Optional[int] = None
        self.rest_port: Optional[int] = None
        self._grpc: Optional[grpc.Server] = None
        self._rest: Optional[HttpServer] = None
        self._stop = threading.Event()
        self._config_poller: Optional[threading.Thread] = None

    def _initial_config(self) -> configs.ModelServerConfig:
        if self.options.model_config_file:
            return configs.read_model_config(self.options.model_config_file)
        return configs.single_model_config(self.options.model_name, self.options.model_base_path)

    def start(self) -> "ModelServer":
        """Blocks until every configured model has a version AVAILABLE (for as
        long as a model has no version on disk), then serves."""
        try:
            self.manager.start(self._initial_config())
            if self.options.model_config_file and self.options.model_config_file_poll_wait_seconds > 0:
                self._config_poller = threading.Thread(target=self._poll_config, daemon=True,
                                                       name="model-config-poller")
                self._config_poller.start()
            self._start_grpc()
            self._start_rest()
        except BaseException:
            self.stop()
            raise
        log.info("serving %s", self.manager.describe())
        return self

    def _poll_config(self) -> None:
        """PollFilesystemAndReloadConfig: a file that does not parse, or a
        config that is refused, is logged and the served config kept."""
        while not self._stop.wait(self.options.model_config_file_poll_wait_seconds):
            try:
                self.manager.reload_config(configs.read_model_config(self.options.model_config_file))
            except ServingError as error:
                log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", error.message)
            except Exception:  # a bad poll must not end polling
                log.exception("re-reading %s failed", self.options.model_config_file)

    def _start_grpc(self) -> None:
        options = self.options
        grpc_options = [
            # gRPC itself answers RESOURCE_EXHAUSTED to messages over the limit.
            ("grpc.max_receive_message_length", options.max_request_bytes),
            ("grpc.max_send_message_length", -1),
            # gRPC Python sets SO_REUSEPORT by default: a second server would
            # share a busy port and take half its requests. Refuse instead.
            ("grpc.so_reuseport", 0),
        ] + grpc_channel_arguments(options.grpc_channel_arguments)
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=max(options.grpc_max_threads, 1),
                                                            thread_name_prefix="grpc"),
                                 options=grpc_options)
        add_services(self._grpc, self.manager, self.metrics, self.request_options)
        if options.enable_grpc_healthcheck_service:
            add_health_service(self._grpc)
        credentials = _server_credentials(options)
        if options.port != 0:
            self.port = self._bind(f"{options.host}:{options.port}", credentials)
        if options.grpc_socket_path:
            self._bind(f"unix:{os.path.abspath(options.grpc_socket_path)}", credentials)
        self._grpc.start()
        if options.port != 0:
            log.info("Running gRPC ModelServer at %s:%d ...", options.host, self.port)
        if options.grpc_socket_path:
            log.info("Running gRPC ModelServer at UNIX socket %s ...", options.grpc_socket_path)

    def _bind(self, address: str, credentials) -> int:
        try:
            port = (self._grpc.add_secure_port(address, credentials) if credentials is not None
                    else self._grpc.add_insecure_port(address))
        except RuntimeError:  # grpc raises instead of returning 0 in recent releases
            port = 0
        if port == 0:
            raise OSError(f"cannot listen for gRPC on {address}: the port is in use or the address "
                          "is not available")
        return port

    def _start_rest(self) -> None:
        options = self.options
        if options.rest_api_port == 0:
            return
        if options.rest_api_port == options.port:
            log.error("server_options.http_port cannot be same as grpc_port. Please use a different port for "
                      "HTTP/REST API. Skipped exporting HTTP/REST API.")
            return
        api = RestApi(self.manager, self.metrics, self.request_options.with_timeout(options.rest_api_timeout_in_ms),
                      _prometheus_path(options), options.rest_api_enable_cors_support,
                      workers=max(options.rest_api_num_threads, 1))
        try:
            self._rest = HttpServer(api, options.host, options.rest_api_port, options.max_request_bytes,
                                    max_workers=max(options.rest_api_num_threads, 1))
        except OSError as error:
            raise OSError(f"cannot listen for REST on {options.host}:{options.rest_api_port}: "
                          f"{error.strerror or error}") from None
        self._rest_api = api
        self.rest_port = self._rest.port
        self._rest.start()
        log.info("Exporting HTTP/REST API at:%s:%d ...", options.host, self.rest_port)

    def stop(self, grace_seconds: float = 2.0) -> None:
        self._stop.set()
        if self._grpc is not None:
            self._grpc.stop(grace_seconds).wait()
        if self._rest is not None:
            self._rest.stop()
            self._rest_api.close()
        self.manager.stop()
        if self._config_poller is not None:
            self._config_poller.join()

    def wait(self) -> None:
        self._stop.wait()

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
