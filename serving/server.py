"""The model server: TF Serving's gRPC services and REST API over one
ModelManager, on loopback or any interface. Used by `catsdogs serve`, the
tests and `make run`'s final prediction step.

Hand-written because no tensorflow_model_server binary installs here (TF
Serving ships as a container image); on a cluster, serve with the official
tensorflow/serving image: same API, flags and model layout."""
import dataclasses
import logging
from concurrent import futures
from typing import Optional

import grpc
from tensorflow_serving.config import model_server_config_pb2

from serving.batching import BatchingOptions
from serving.config_protos import MonitoringConfig, SSLConfig, read_text_proto
from serving.grpc_services import add_services
from serving.image_header import DEFAULT_MAX_IMAGE_PIXELS
from serving.metrics import Metrics
from serving.model_manager import ManagerOptions, ModelManager
from serving.rest import RestApi, RestServer

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ServerOptions:
    """What `catsdogs serve` sets; names follow tensorflow_model_server's flags."""
    model_base_path: Optional[str] = None
    model_config_file: Optional[str] = None
    host: str = "0.0.0.0"
    port: int = 8500
    rest_api_port: Optional[int] = 8501  # None: no REST API
    file_system_poll_wait_seconds: float = 1.0
    max_num_load_retries: int = 5
    enable_batching: bool = False
    batching_parameters_file: Optional[str] = None
    enable_model_warmup: bool = True
    max_request_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS  # width x height read from each image's header; 0: no limit
    grpc_max_threads: int = 16
    monitoring_config_file: Optional[str] = None
    ssl_config_file: Optional[str] = None


def read_model_config(path: str) -> model_server_config_pb2.ModelServerConfig:
    return read_text_proto(path, model_server_config_pb2.ModelServerConfig)


def _batching(options: ServerOptions) -> Optional[BatchingOptions]:
    if not options.enable_batching:
        return None
    if options.batching_parameters_file:
        return BatchingOptions.from_file(options.batching_parameters_file)
    return BatchingOptions()


def _server_credentials(ssl_config_file: str) -> grpc.ServerCredentials:
    """TF Serving's SSLConfig: PEM contents (not paths) of key, cert and optional CA."""
    config = read_text_proto(ssl_config_file, SSLConfig)
    if not config.server_key or not config.server_cert:
        raise ValueError(f"{ssl_config_file}: server_key and server_cert are required")
    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() or None,
        require_client_auth=config.client_verify)


class ModelServer:
    """Start with start(), stop with stop() (or use as a context manager).
    port / rest_port are the bound ports (give 0 to pick free ones)."""

    def __init__(self, options: ServerOptions):
        if not options.model_base_path and not options.model_config_file:
            raise ValueError("give --model-base-path or --model-config-file")
        self.options = options
        model_config = read_model_config(options.model_config_file) if options.model_config_file else None
        self.manager = ModelManager(
            ManagerOptions(poll_wait_seconds=options.file_system_poll_wait_seconds,
                           max_load_retries=options.max_num_load_retries,
                           batching=_batching(options),
                           enable_warmup=options.enable_model_warmup,
                           max_image_pixels=options.max_image_pixels),
            model_config=model_config, model_base_path=options.model_base_path)
        self.metrics = Metrics()
        prometheus_path = None
        if options.monitoring_config_file:
            monitoring = read_text_proto(options.monitoring_config_file, MonitoringConfig)
            if monitoring.prometheus_config.enable:
                prometheus_path = monitoring.prometheus_config.path or "/monitoring/prometheus/metrics"
        grpc_options = [
            # gRPC itself answers RESOURCE_EXHAUSTED to messages over the limit.
            ("grpc.max_receive_message_length", options.max_request_bytes),
            ("grpc.max_send_message_length", -1),
            # gRPC Python sets SO_REUSEPORT by default: a second server would
            # share a busy port and take half its requests. Refuse instead.
            ("grpc.so_reuseport", 0),
        ]
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=options.grpc_max_threads,
                                                            thread_name_prefix="grpc"),
                                 options=grpc_options)
        add_services(self._grpc, self.manager, self.metrics)
        self.port = self._bind_grpc(f"{options.host}:{options.port}")
        self._rest = None
        self.rest_port = None
        if options.rest_api_port is not None:
            api = RestApi(self.manager, self.metrics, options.max_request_bytes, prometheus_path)
            try:
                self._rest = RestServer(api, options.host, options.rest_api_port)
            except OSError as error:
                self._grpc.stop(None)
                raise OSError(f"cannot listen for REST on {options.host}:{options.rest_api_port}: "
                              f"{error.strerror or error}") from None
            self.rest_port = self._rest.port

    def _bind_grpc(self, address: str) -> int:
        try:
            if self.options.ssl_config_file:
                port = self._grpc.add_secure_port(address, _server_credentials(self.options.ssl_config_file))
            else:
                port = self._grpc.add_insecure_port(address)
        except RuntimeError:  # grpc raises instead of returning 0 in recent releases
            port = 0
        if port == 0:
            raise OSError(f"cannot listen for gRPC on {address}: the port is in use or the address "
                          "is not available")
        return port

    def start(self) -> "ModelServer":
        """Loads the models found now (blocking), then serves."""
        self.manager.start()
        self._grpc.start()
        if self._rest is not None:
            self._rest.start()
        log.info("serving %s on gRPC port %d%s", self.manager.describe(),
                 self.port, f", REST port {self.rest_port}" if self._rest else "")
        return self

    def stop(self, grace_seconds: float = 2.0) -> None:
        self._grpc.stop(grace_seconds).wait()
        if self._rest is not None:
            self._rest.stop()
        self.manager.stop()

    def wait(self) -> None:
        self._grpc.wait_for_termination()

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
