"""GetModelMetadata and GetModelStatus, shared by the gRPC and REST APIs
(tensorflow_serving/servables/tensorflow/get_model_metadata_impl.cc,
model_servers/get_model_status_impl.cc)."""
import grpc
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from serving.errors import invalid_argument
from serving.model_manager import ModelManager

SIGNATURE_DEF_FIELD = "signature_def"


def get_model_metadata(manager: ModelManager, request) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """The version's SignatureDefMap, every signature included."""
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    if not request.metadata_field:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != SIGNATURE_DEF_FIELD:
            raise invalid_argument(f"Metadata field {field} is not supported")
    servable = manager.resolve(request.model_spec)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.metadata[SIGNATURE_DEF_FIELD].Pack(servable.signature_def_map())
    return response


def get_model_status(manager: ModelManager, request) -> get_model_status_pb2.GetModelStatusResponse:
    """Every known version's state, with the status of its last load."""
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    response = get_model_status_pb2.GetModelStatusResponse()
    for record in manager.status(request.model_spec):
        status = response.model_version_status.add(version=record.version, state=record.state)
        status.status.SetInParent()  # TF Serving always reports a status, OK included
        if record.error:
            status.status.error_code = record.error_code.value[0] if record.error_code != grpc.StatusCode.OK \
                else grpc.StatusCode.UNKNOWN.value[0]
            status.status.error_message = record.error
    return response
