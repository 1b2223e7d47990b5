"""TF Serving's REST API over the same servables as the gRPC API
(tensorflow_serving/model_servers/http_rest_api_handler.cc,
http_rest_api_util.cc, http_server.cc):

    POST /v1/models/NAME[/versions/N | /labels/L]:(predict|classify|regress)
    GET  /v1/models/NAME[/versions/N | /labels/L]            -> model status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata   -> signature defs
    GET  <prometheus path>  (when the monitoring config enables it)

Any other /v1/ request is "Malformed request" (400); other paths are 404.
JSON rules and messages: serving/json_tensors.py.
"""
import re
import urllib.parse
from concurrent import futures
from typing import Optional, Tuple

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from serving import example_inference, json_tensors, predict, tensor_protos
from serving.errors import ServingError, invalid_argument
from serving.http_server import HttpAnswer
from serving.metrics import Metrics
from serving.model_info import SIGNATURE_DEF_FIELD, get_model_metadata, get_model_status
from serving.model_manager import ModelManager
from serving.request_options import RequestOptions
from serving.servable import DEFAULT_SIGNATURE

REST_ENTRYPOINT = "REST"
_API_PATH = re.compile(r"(?i)/v1/.*")
_PREDICTION_PATH = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)")
_MODEL_PATH = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:\/(metadata))?")
_CORS_HEADERS = (("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "POST, GET"),
                 ("Access-Control-Allow-Headers", "Content-Type"))
_PROMETHEUS_CONTENT_TYPE = "text/plain"


def _model_spec(name: Optional[str], version: Optional[str], label: Optional[str]) -> model_pb2.ModelSpec:
    """ParseModelInfo + FillModelSpecWithNameVersionAndLabel."""
    spec = model_pb2.ModelSpec(name=urllib.parse.unquote(name or ""))
    if version:
        number = int(version)
        if number >= 2 ** 63:
            raise invalid_argument(f"Failed to convert version: {version} to numeric.")
        spec.version.value = number
    if label:
        spec.version_label = urllib.parse.unquote(label)
    return spec


def _status_json(response: get_model_status_pb2.GetModelStatusResponse) -> str:
    return json_format.MessageToJson(response, always_print_fields_with_no_presence=True)


def _metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> str:
    """ToJsonString(GetModelMetadataResponse): model_spec and the unpacked
    SignatureDefMap, every field printed, proto field names kept."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)

    def to_json(message) -> str:
        return json_format.MessageToJson(message, always_print_fields_with_no_presence=True,
                                         preserving_proto_field_name=True)
    return ('{\n"model_spec":' + to_json(response.model_spec) + ',\n"metadata": {"signature_def": '
            + to_json(signature_map) + "}\n}\n")


class RestApi:
    """Answers one HTTP request: the `Handler` of serving/http_server.py."""

    def __init__(self, manager: ModelManager, metrics: Metrics, options: RequestOptions,
                 prometheus_path: Optional[str] = None, cors: bool = False, workers: int = 16):
        self.manager = manager
        self.metrics = metrics
        self.options = options
        self.prometheus_path = prometheus_path
        self.cors = cors
        # --rest_api_timeout_in_ms: the answer is DEADLINE_EXCEEDED once it
        # passes (the model run itself finishes in the background).
        self._runs = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rest-run")

    def close(self) -> None:
        self._runs.shutdown(wait=True)

    def _within_deadline(self, work) -> str:
        if not self.options.timeout_ms:
            return work()
        try:
            return self._runs.submit(work).result(timeout=self.options.timeout_ms / 1000)
        except futures.TimeoutError:
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None

    def __call__(self, method: str, path: str, body: bytes) -> HttpAnswer:
        if self.prometheus_path and path == self.prometheus_path:
            return HttpAnswer(200, self.metrics.prometheus_text(), _PROMETHEUS_CONTENT_TYPE)
        if not _API_PATH.fullmatch(path):
            return HttpAnswer(404, json_tensors.error_text(f"Not found: {method} {path}"))
        headers = _CORS_HEADERS if self.cors else ()
        if method == "OPTIONS":  # CORS preflight (http_server.cc)
            return HttpAnswer(200, "", headers=headers)
        api, model_name, work = self._route(method, path, body)
        with self.metrics.track(api, model_name, REST_ENTRYPOINT) as outcome:
            try:
                return HttpAnswer(200, self._within_deadline(work), headers=headers)
            except ServingError as error:
                outcome.code = error.code
                return HttpAnswer(error.http_status, json_tensors.error_text(error.message), headers=headers)

    def _route(self, method: str, path: str, body: bytes):
        """(api name, model name, work() -> JSON text)."""
        if method == "POST":
            match = _PREDICTION_PATH.fullmatch(path)
            if match:
                name, version, label, verb = match.groups()
                handlers = {"predict": self._predict, "classify": self._classify, "regress": self._regress}
                if verb in handlers:
                    return verb, name, lambda: handlers[verb](_model_spec(name, version, label), body)
        elif method == "GET":
            match = _MODEL_PATH.fullmatch(path)
            if match:
                name, version, label, metadata = match.groups()
                if metadata == "metadata":
                    return "get_model_metadata", name or "", lambda: self._metadata(
                        _model_spec(name, version, label))
                if metadata is None:
                    return "get_model_status", name or "", lambda: self._status(_model_spec(name, version, label))

        def malformed():
            raise invalid_argument(f"Malformed request: {method} {path}")
        return method.lower(), "", malformed

    def _predict(self, spec: model_pb2.ModelSpec, body: bytes) -> str:
        document = json_tensors.parse_document(body)
        request = predict_pb2.PredictRequest(model_spec=spec)
        request.model_spec.signature_name = json_tensors.signature_name(document)
        servable = self.manager.resolve(request.model_spec)
        signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
        signature_def = servable.signature_defs.get(signature)
        if signature_def is None:
            raise invalid_argument(f'Serving signature name: "{signature}" not found in signature def')
        dtypes = {alias: info.dtype for alias, info in signature_def.inputs.items()}
        tensors, format_ = json_tensors.predict_inputs(document, dtypes, request.model_spec.signature_name)
        for alias, tensor in tensors.items():
            request.inputs[alias].CopyFrom(tensor)
        response = predict.predict(servable, request, self.options)
        outputs = {alias: tensor_protos.to_array(proto) for alias, proto in response.outputs.items()}
        return json_tensors.predict_response_text(outputs, format_)

    def _examples_request(self, request, body: bytes) -> Tuple[object, object]:
        document = json_tensors.parse_document(body)
        request.model_spec.signature_name = json_tensors.signature_name(document)
        json_tensors.fill_examples(document, request.input)
        return request, self.manager.resolve(request.model_spec)

    def _classify(self, spec: model_pb2.ModelSpec, body: bytes) -> str:
        request, servable = self._examples_request(classification_pb2.ClassificationRequest(model_spec=spec), body)
        response = example_inference.classify(servable, request, self.options)
        return json_tensors.classification_text(response.result)

    def _regress(self, spec: model_pb2.ModelSpec, body: bytes) -> str:
        request, servable = self._examples_request(regression_pb2.RegressionRequest(model_spec=spec), body)
        response = example_inference.regress(servable, request, self.options)
        return json_tensors.regression_text(response.result)

    def _status(self, spec: model_pb2.ModelSpec) -> str:
        if not spec.name:
            raise invalid_argument("Missing model name in request.")
        return _status_json(get_model_status(self.manager, get_model_status_pb2.GetModelStatusRequest(
            model_spec=spec)))

    def _metadata(self, spec: model_pb2.ModelSpec) -> str:
        if not spec.name:
            raise invalid_argument("Missing model name in request.")
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[SIGNATURE_DEF_FIELD])
        request.model_spec.CopyFrom(spec)
        return _metadata_json(get_model_metadata(self.manager, request))

