"""gRPC's standard health service (grpc.health.v1.Health/Check), as TF
Serving enables it with --enable_grpc_healthcheck_service: the server as a
whole ("") and its two services answer SERVING
(tensorflow_serving/model_servers/server.cc).

The messages are declared here field for field as in grpc's health.proto
(the grpcio-health-checking package is not among the dependencies).
"""
import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "grpc.health.v1.Health"
SERVING = 1
SERVING_SERVICES = ("", "tensorflow.serving.ModelService", "tensorflow.serving.PredictionService",
                    "ModelService", "PredictionService")


def _messages():
    field = descriptor_pb2.FieldDescriptorProto
    file_proto = descriptor_pb2.FileDescriptorProto(name="catsdogs/serving/grpc_health.proto",
                                                    package="grpc.health.v1", syntax="proto3")
    request = file_proto.message_type.add(name="HealthCheckRequest")
    request.field.add(name="service", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    response = file_proto.message_type.add(name="HealthCheckResponse")
    response.field.add(name="status", number=1, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    described = pool.AddSerializedFile(file_proto.SerializeToString())
    return (message_factory.GetMessageClass(described.message_types_by_name["HealthCheckRequest"]),
            message_factory.GetMessageClass(described.message_types_by_name["HealthCheckResponse"]))


HealthCheckRequest, HealthCheckResponse = _messages()


def _check(request, context):
    if request.service not in SERVING_SERVICES:
        context.abort(grpc.StatusCode.NOT_FOUND, "service name unknown")
    return HealthCheckResponse(status=SERVING)


def add_health_service(server: grpc.Server) -> None:
    handler = grpc.unary_unary_rpc_method_handler(
        _check, request_deserializer=HealthCheckRequest.FromString,
        response_serializer=HealthCheckResponse.SerializeToString)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {"Check": handler})])
