"""TF Serving's server-side config messages that the tensorflow-serving-api
wheel does not ship (it carries the API and model_server_config protos only).

They are declared here field for field as in TF Serving's .proto files, same
package and field numbers, so that the text-format files TF Serving reads
(--batching_parameters_file, --monitoring_config_file, --ssl_config_file) parse
with protobuf's own text_format, unchanged:

- BatchingParameters: tensorflow_serving/servables/tensorflow/session_bundle_config.proto
- MonitoringConfig, PrometheusConfig: tensorflow_serving/config/monitoring_config.proto
- SSLConfig: tensorflow_serving/config/ssl_config.proto
"""
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

_FIELD = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "tensorflow.serving"


def _message(file_proto, name, fields):
    message = file_proto.message_type.add(name=name)
    for number, (field_name, field_type, type_name, repeated) in enumerate(fields, start=1):
        field = message.field.add(
            name=field_name, number=number, type=field_type,
            label=_FIELD.LABEL_REPEATED if repeated else _FIELD.LABEL_OPTIONAL)
        if type_name:
            field.type_name = type_name


def _build_file():
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="catsdogs/serving/tf_serving_server_configs.proto", package=_PACKAGE, syntax="proto3",
        dependency=[wrappers_pb2.DESCRIPTOR.name])
    int64_value, string_value = ".google.protobuf.Int64Value", ".google.protobuf.StringValue"
    _message(file_proto, "BatchingParameters", [
        ("max_batch_size", _FIELD.TYPE_MESSAGE, int64_value, False),
        ("batch_timeout_micros", _FIELD.TYPE_MESSAGE, int64_value, False),
        ("max_enqueued_batches", _FIELD.TYPE_MESSAGE, int64_value, False),
        ("num_batch_threads", _FIELD.TYPE_MESSAGE, int64_value, False),
        ("thread_pool_name", _FIELD.TYPE_MESSAGE, string_value, False),
        ("allowed_batch_sizes", _FIELD.TYPE_INT64, None, True),
        ("pad_variable_length_inputs", _FIELD.TYPE_BOOL, None, False),
    ])
    _message(file_proto, "PrometheusConfig", [
        ("enable", _FIELD.TYPE_BOOL, None, False),
        ("path", _FIELD.TYPE_STRING, None, False),
    ])
    _message(file_proto, "MonitoringConfig", [
        ("prometheus_config", _FIELD.TYPE_MESSAGE, f".{_PACKAGE}.PrometheusConfig", False),
    ])
    _message(file_proto, "SSLConfig", [
        ("server_key", _FIELD.TYPE_STRING, None, False),
        ("server_cert", _FIELD.TYPE_STRING, None, False),
        ("custom_ca", _FIELD.TYPE_STRING, None, False),
        ("client_verify", _FIELD.TYPE_BOOL, None, False),
    ])
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file_descriptor = pool.AddSerializedFile(file_proto.SerializeToString())
    return {name: message_factory.GetMessageClass(file_descriptor.message_types_by_name[name])
            for name in ("BatchingParameters", "PrometheusConfig", "MonitoringConfig", "SSLConfig")}


_CLASSES = _build_file()
BatchingParameters = _CLASSES["BatchingParameters"]
MonitoringConfig = _CLASSES["MonitoringConfig"]
SSLConfig = _CLASSES["SSLConfig"]


def read_text_proto(path: str, message_class):
    """Parses a text-format config file; a bad file raises ValueError naming it."""
    with open(path, encoding="utf-8") as config_file:
        text = config_file.read()
    try:
        return text_format.Parse(text, message_class())
    except text_format.ParseError as error:
        raise ValueError(f"{path}: not a valid {message_class.DESCRIPTOR.full_name} "
                         f"text proto: {error}") from error
