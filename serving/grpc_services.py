"""TF Serving's gRPC services (tensorflow_serving.apis' generated servicers):
PredictionService (Predict, Classify, GetModelMetadata) and ModelService
(GetModelStatus, HandleReloadConfigRequest), over a ModelManager."""
import logging

import grpc
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from serving.errors import ServingError, invalid_argument
from serving.metrics import Metrics
from serving.model_manager import ModelManager

log = logging.getLogger(__name__)
SIGNATURE_DEF_FIELD = "signature_def"
GRPC_ENTRYPOINT = "GRPC"


def get_model_metadata(manager: ModelManager, request) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """GetModelMetadata (shared by gRPC and REST): the version's SignatureDefMap."""
    if not request.metadata_field:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    unsupported = [field for field in request.metadata_field if field != SIGNATURE_DEF_FIELD]
    if unsupported:
        raise invalid_argument(f"Metadata field {', '.join(unsupported)} is not supported")
    servable = manager.resolve(request.model_spec)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    servable.fill_model_spec(response.model_spec)
    response.metadata[SIGNATURE_DEF_FIELD].Pack(servable.signature_def_map())
    return response


def get_model_status(manager: ModelManager, request) -> get_model_status_pb2.GetModelStatusResponse:
    response = get_model_status_pb2.GetModelStatusResponse()
    for record in manager.status(request.model_spec):
        status = response.model_version_status.add(version=record.version, state=record.state)
        status.status.SetInParent()  # TF Serving always reports a status, OK included
        if record.error:
            status.status.error_code = error_codes_pb2.UNKNOWN
            status.status.error_message = record.error
    return response


class _Service:
    def __init__(self, manager: ModelManager, metrics: Metrics):
        self.manager = manager
        self.metrics = metrics

    def _serve(self, api: str, request, context, work):
        """ServingErrors abort with their code; anything unexpected is INTERNAL
        with its message, and the server carries on."""
        spec = getattr(request, "model_spec", None)
        with self.metrics.track(api, spec.name if spec is not None else "", GRPC_ENTRYPOINT) as outcome:
            try:
                return work(request)
            except ServingError as error:
                outcome.code = error.code
                context.abort(error.code, error.message)
            except Exception as error:  # a bug must cost one request, not the server
                log.exception("%s failed", api)
                outcome.code = grpc.StatusCode.INTERNAL
                context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")


class PredictionService(_Service, prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request, context):
        return self._serve("predict", request, context,
                           lambda r: self.manager.resolve(r.model_spec).predict(r))

    def Classify(self, request, context):
        return self._serve("classify", request, context,
                           lambda r: self.manager.resolve(r.model_spec).classify(r))

    def GetModelMetadata(self, request, context):
        return self._serve("get_model_metadata", request, context,
                           lambda r: get_model_metadata(self.manager, r))


class ModelService(_Service, model_service_pb2_grpc.ModelServiceServicer):
    def GetModelStatus(self, request, context):
        return self._serve("get_model_status", request, context,
                           lambda r: get_model_status(self.manager, r))

    def HandleReloadConfigRequest(self, request, context):
        def reload(r):
            try:
                self.manager.reload_config(r.config)
            except ValueError as error:
                raise invalid_argument(str(error)) from None
            return model_management_pb2.ReloadConfigResponse()
        return self._serve("reload_config", request, context, reload)


def add_services(server: grpc.Server, manager: ModelManager, metrics: Metrics) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, metrics), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager, metrics), server)
