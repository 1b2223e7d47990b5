"""TF Serving's gRPC services (tensorflow_serving.apis' generated servicers):
PredictionService (Predict, Classify, Regress, MultiInference,
GetModelMetadata) and ModelService (GetModelStatus,
HandleReloadConfigRequest), over a ModelManager
(tensorflow_serving/model_servers/prediction_service_impl.cc,
model_service_impl.cc)."""
import logging

import grpc
from tensorflow_serving.apis import (
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from serving import example_inference, model_config, predict
from serving.errors import ServingError
from serving.metrics import Metrics
from serving.model_info import get_model_metadata, get_model_status
from serving.model_manager import ModelManager
from serving.request_options import RequestOptions

log = logging.getLogger(__name__)
GRPC_ENTRYPOINT = "GRPC"
# tensorflow_serving/model_servers/grpc_status_util.cc
MAX_ERROR_MESSAGE_CHARS = 1024


def grpc_message(message: str) -> str:
    if len(message) > MAX_ERROR_MESSAGE_CHARS:
        return message[:MAX_ERROR_MESSAGE_CHARS] + "...TRUNCATED"
    return message


class _Service:
    def __init__(self, manager: ModelManager, metrics: Metrics, options: RequestOptions):
        self.manager = manager
        self.metrics = metrics
        self.options = options

    def _serve(self, api: str, request, context, work):
        """ServingErrors abort with their code; anything unexpected is INTERNAL
        with its message, and the server carries on."""
        spec = getattr(request, "model_spec", None)
        if spec is None and getattr(request, "tasks", None):
            spec = request.tasks[0].model_spec
        with self.metrics.track(api, spec.name if spec is not None else "", GRPC_ENTRYPOINT) as outcome:
            try:
                return work(request)
            except ServingError as error:
                outcome.code = error.code
                context.abort(error.code, grpc_message(error.message))
            except Exception as error:  # a bug must cost one request, not the server
                log.exception("%s failed", api)
                outcome.code = grpc.StatusCode.INTERNAL
                context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")


class PredictionService(_Service, prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request, context):
        return self._serve("predict", request, context,
                           lambda r: predict.predict(self.manager.resolve(r.model_spec), r, self.options))

    def Classify(self, request, context):
        return self._serve("classify", request, context, lambda r: example_inference.classify(
            self.manager.resolve(r.model_spec), r, self.options))

    def Regress(self, request, context):
        return self._serve("regress", request, context, lambda r: example_inference.regress(
            self.manager.resolve(r.model_spec), r, self.options))

    def MultiInference(self, request, context):
        def infer(r):
            # The first task names the model (multi_inference_helper.cc).
            spec = r.tasks[0].model_spec if r.tasks else model_pb2.ModelSpec()
            servable = self.manager.resolve(spec)
            return example_inference.multi_inference(servable, r, self.options)
        return self._serve("multi_inference", request, context, infer)

    def GetModelMetadata(self, request, context):
        return self._serve("get_model_metadata", request, context,
                           lambda r: get_model_metadata(self.manager, r))


class ModelService(_Service, model_service_pb2_grpc.ModelServiceServicer):
    def GetModelStatus(self, request, context):
        return self._serve("get_model_status", request, context,
                           lambda r: get_model_status(self.manager, r))

    def HandleReloadConfigRequest(self, request, context):
        def reload(r):
            model_config.check_reload_request_kind(r.config)
            try:
                self.manager.reload_config(r.config)
            except ServingError as error:
                log.error("ReloadConfig failed: %s", error.message)
                raise
            return model_management_pb2.ReloadConfigResponse()
        return self._serve("reload_config", request, context, reload)


def add_services(server: grpc.Server, manager: ModelManager, metrics: Metrics, options: RequestOptions) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, metrics, options), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager, metrics, options), server)
