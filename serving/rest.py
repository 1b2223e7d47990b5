"""TF Serving's REST API on a threading HTTP server:

    GET  /v1/models/NAME[/versions/N | /labels/L]            -> model status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata   -> signature defs
    POST /v1/models/NAME[/versions/N | /labels/L]:predict    -> {"predictions"|"outputs": ...}
    GET  <prometheus path>  (when the monitoring config enables it)

Requests are turned into the same PredictRequest protos the gRPC API takes,
so both APIs share one code path and one set of errors. JSON follows TF
Serving's conventions: row ("instances") or columnar ("inputs") format, binary
strings as {"b64": ...}, errors as {"error": message}.
"""
import base64
import http
import http.server
import json
import logging
import re
import threading
from typing import Optional

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2, predict_pb2

from components import contract
from serving.errors import ServingError, invalid_argument, not_found
from serving.grpc_services import SIGNATURE_DEF_FIELD, get_model_metadata, get_model_status
from serving.metrics import Metrics
from serving.model_manager import ModelManager

log = logging.getLogger(__name__)
REST_ENTRYPOINT = "REST"
_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<suffix>/metadata|:predict)?$")
_B64 = "b64"
_BYTES_SUFFIX = "_bytes"


def _model_spec(match) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=match["name"])
    if match["version"]:
        spec.version.value = int(match["version"])
    elif match["label"]:
        spec.version_label = match["label"]
    return spec


def _decode_value(value):
    """JSON value -> Python value; {"b64": s} -> bytes, nested lists kept."""
    if isinstance(value, dict):
        if set(value) == {_B64}:
            try:
                return base64.b64decode(value[_B64], validate=True)
            except (ValueError, TypeError) as error:
                raise invalid_argument(f"bad base64 in a {{\"b64\": ...}} value: {error}") from None
        raise invalid_argument(f"unexpected JSON object where a tensor value was expected: {list(value)}")
    if isinstance(value, list):
        return [_decode_value(item) for item in value]
    return value


def _to_tensor_proto(alias: str, value, dtype_enum: int):
    dtype = tf.dtypes.as_dtype(dtype_enum)
    try:
        if dtype == tf.string:
            array = np.array(value, dtype=object)
            array = np.vectorize(lambda v: v.encode("utf-8") if isinstance(v, str) else v,
                                 otypes=[object])(array) if array.size else array
            if array.size and not all(isinstance(v, bytes) for v in array.flat):
                raise ValueError("expected strings or {\"b64\": ...} values")
        else:
            array = np.array(value, dtype=dtype.as_numpy_dtype)
        return tf.make_tensor_proto(array, dtype=dtype, shape=array.shape)
    except (ValueError, TypeError) as error:
        raise invalid_argument(f"input '{alias}': cannot be read as "
                               f"{types_pb2.DataType.Name(dtype_enum)}: {error}") from None


def predict_request_from_json(body: dict, spec: model_pb2.ModelSpec, signature_def) -> tuple:
    """TF Serving's JSON predict request -> (PredictRequest, row_format)."""
    if not isinstance(body, dict):
        raise invalid_argument("the request body must be a JSON object")
    if ("instances" in body) == ("inputs" in body):
        raise invalid_argument('the request must have exactly one of "instances" or "inputs"')
    aliases = sorted(signature_def.inputs)
    request = predict_pb2.PredictRequest()
    request.model_spec.CopyFrom(spec)
    request.model_spec.signature_name = body.get("signature_name", "") or contract.SERVING_SIGNATURE
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise invalid_argument('"instances" must be a list')
        named = (instances and all(isinstance(i, dict) and set(i) != {_B64} for i in instances))
        if len(aliases) > 1 or named:
            columns = {alias: [] for alias in aliases}
            for index, instance in enumerate(instances):
                if not isinstance(instance, dict) or set(instance) != set(aliases):
                    raise invalid_argument(f"instance {index}: expected an object with keys {aliases}")
                for alias in aliases:
                    columns[alias].append(_decode_value(instance[alias]))
        else:
            columns = {aliases[0]: [_decode_value(i) for i in instances]}
    else:
        inputs = body["inputs"]
        if isinstance(inputs, dict) and set(inputs) != {_B64}:
            columns = {alias: _decode_value(value) for alias, value in inputs.items()}
        elif len(aliases) == 1:
            columns = {aliases[0]: _decode_value(inputs)}
        else:
            raise invalid_argument(f'"inputs" must be an object with keys {aliases}')
    for alias, value in columns.items():
        if alias not in signature_def.inputs:
            raise invalid_argument(f"input tensor alias not found in signature: {alias}. "
                                   f"Inputs expected to be in the set {{{', '.join(aliases)}}}.")
        request.inputs[alias].CopyFrom(_to_tensor_proto(alias, value, signature_def.inputs[alias].dtype))
    return request, "instances" in body


def _json_value(alias: str, array: np.ndarray):
    if array.dtype == object:
        def convert(item):
            if not alias.endswith(_BYTES_SUFFIX):
                try:
                    return item.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return {_B64: base64.b64encode(item).decode("ascii")}
        return np.vectorize(convert, otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()


def predict_response_to_json(response: predict_pb2.PredictResponse, row_format: bool) -> dict:
    arrays = {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}
    values = {alias: _json_value(alias, array) for alias, array in arrays.items()}
    if not row_format:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    rows = {len(value) if isinstance(value, list) else -1 for value in values.values()}
    if len(rows) != 1 or -1 in rows:
        raise invalid_argument("outputs differ in their batch size; use the columnar \"inputs\" format")
    count = rows.pop()
    return {"predictions": [{alias: value[i] for alias, value in values.items()} for i in range(count)]}


class RestApi:
    """The REST handlers, independent of the HTTP server they run in."""

    def __init__(self, manager: ModelManager, metrics: Metrics, max_request_bytes: int,
                 prometheus_path: Optional[str] = None):
        self.manager = manager
        self.metrics = metrics
        self.max_request_bytes = max_request_bytes
        self.prometheus_path = prometheus_path

    def get(self, path: str):
        if self.prometheus_path and path == self.prometheus_path:
            return http.HTTPStatus.OK, self.metrics.prometheus_text(), "text/plain; version=0.0.4"
        match = _MODEL_PATH.match(path)
        if not match or match["suffix"] == ":predict":
            raise not_found(f"Malformed request: GET {path}")
        spec = _model_spec(match)
        if match["suffix"] == "/metadata":
            request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[SIGNATURE_DEF_FIELD])
            request.model_spec.CopyFrom(spec)
            return http.HTTPStatus.OK, self._metadata_json(get_model_metadata(self.manager, request)), None
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
        response = get_model_status(self.manager, request)
        return http.HTTPStatus.OK, json_format.MessageToDict(
            response, preserving_proto_field_name=True, always_print_fields_with_no_presence=True), None

    def _metadata_json(self, response) -> dict:
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
        return {"model_spec": json_format.MessageToDict(response.model_spec, preserving_proto_field_name=True),
                "metadata": {SIGNATURE_DEF_FIELD: json_format.MessageToDict(
                    signature_map, preserving_proto_field_name=True)}}

    def post(self, path: str, body: bytes):
        match = _MODEL_PATH.match(path)
        if not match or match["suffix"] != ":predict":
            raise not_found(f"Malformed request: POST {path}")
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise invalid_argument(f"JSON Parse error: {error}") from None
        spec = _model_spec(match)
        servable = self.manager.resolve(spec)
        signature_name = (document.get("signature_name") if isinstance(document, dict) else None)
        signature_def = servable.signature(signature_name or contract.SERVING_SIGNATURE)
        request, row_format = predict_request_from_json(document, spec, signature_def)
        return http.HTTPStatus.OK, predict_response_to_json(servable.predict(request), row_format), None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: RestApi = None

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, payload, content_type: Optional[str]) -> None:
        if content_type is None:
            data = json.dumps(payload).encode("utf-8")
            content_type = "application/json"
        else:
            data = payload.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, api_name: str, work) -> None:
        match = _MODEL_PATH.match(self.path)
        model_name = match["name"] if match else ""
        with self.api.metrics.track(api_name, model_name, REST_ENTRYPOINT) as outcome:
            try:
                status, payload, content_type = work()
            except ServingError as error:
                outcome.code = error.code
                status, payload, content_type = error.http_status, {"error": error.message}, None
            except Exception as error:  # a bug must cost one request, not the server
                log.exception("REST %s %s failed", self.command, self.path)
                outcome.code = grpc.StatusCode.INTERNAL
                status, payload, content_type = 500, {"error": f"{type(error).__name__}: {error}"}, None
        self._send(status, payload, content_type)

    def _discard(self, length: int) -> None:
        chunk_bytes = 1 << 20
        while length > 0:
            chunk = self.rfile.read(min(chunk_bytes, length))
            if not chunk:
                break
            length -= len(chunk)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._dispatch("get", lambda: self.api.get(self.path))

    def do_POST(self):  # noqa: N802
        def work():
            length = int(self.headers.get("Content-Length") or 0)
            if length > self.api.max_request_bytes:
                self._discard(length)  # read, so that the client gets the answer, not a reset
                raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                   f"request of {length} bytes is over the limit of "
                                   f"{self.api.max_request_bytes} bytes")
            return self.api.post(self.path, self.rfile.read(length))
        self._dispatch("predict", work)


class RestServer:
    """A ThreadingHTTPServer for RestApi on host:port (port 0: any free port)."""

    def __init__(self, api: RestApi, host: str, port: int):
        handler = type("RestHandler", (_Handler,), {"api": api})
        self._server = http.server.ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="rest")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
