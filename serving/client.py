"""A small client for TF Serving's gRPC API (this project's server or the
real tensorflow_model_server): images in, classes and probabilities out.

    with PredictionClient("localhost:8500") as client:
        result = client.predict_files(["cat.jpg"], model="cats_vs_dogs_scratch")
        print(result.version, result.predictions[0].class_name)

Each call has a deadline (retries included); calls failing with UNAVAILABLE
(server starting, restarting, or a connection drop) are retried with
exponential backoff by gRPC itself, from the channel's service config
(https://github.com/grpc/proposal/blob/master/A6-client-retries.md).
"""
import dataclasses
import json
from typing import List, Optional, Sequence

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from components import contract

RETRYABLE = (grpc.StatusCode.UNAVAILABLE,)
SIGNATURE_DEF_FIELD = "signature_def"
SERVICES = ("tensorflow.serving.PredictionService", "tensorflow.serving.ModelService")
MAX_RETRIES = 4
"""gRPC makes at most five attempts per call, whatever the policy asks for."""


@dataclasses.dataclass(frozen=True)
class ClientOptions:
    timeout_seconds: float = 10.0
    """Deadline of each call, its retries included."""
    retries: int = 3
    initial_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 2.0
    """gRPC waits a random time up to the backoff (initial, doubled after each attempt, capped here)."""
    wait_for_ready: bool = False
    """Wait (until the deadline) for a server that is not up yet, instead of failing with UNAVAILABLE."""
    tls: bool = False
    root_certificates_file: Optional[str] = None  # PEM; None: the system's roots
    max_response_bytes: int = 64 * 1024 * 1024

    def __post_init__(self):
        if not 0 <= self.retries <= MAX_RETRIES:
            raise ValueError(f"retries must be 0 to {MAX_RETRIES} (gRPC makes at most "
                             f"{MAX_RETRIES + 1} attempts), got {self.retries}")


def service_config(options: ClientOptions) -> str:
    """The channel's gRPC service config: retry policy and wait-for-ready of TF Serving's services."""
    method_config = {"name": [{"service": service} for service in SERVICES],
                     "waitForReady": options.wait_for_ready}
    if options.retries:
        method_config["retryPolicy"] = {
            "maxAttempts": options.retries + 1,
            "initialBackoff": f"{options.initial_backoff_seconds}s",
            "maxBackoff": f"{options.max_backoff_seconds}s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": [code.name for code in RETRYABLE],
        }
    return json.dumps({"methodConfig": [method_config]})


@dataclasses.dataclass(frozen=True)
class Prediction:
    class_name: str
    class_id: int
    probability: float  # of the predicted class
    probabilities: tuple


@dataclasses.dataclass(frozen=True)
class PredictResult:
    model: str
    version: int
    predictions: List[Prediction]


def predictions_from_response(response: predict_pb2.PredictResponse) -> List[Prediction]:
    outputs = response.outputs
    for key in (contract.PROBABILITIES_KEY, contract.CLASSES_KEY):
        if key not in outputs:
            raise ValueError(f"the response has no '{key}' output (outputs: {sorted(outputs)})")
    probabilities = tf.make_ndarray(outputs[contract.PROBABILITIES_KEY])
    classes = tf.make_ndarray(outputs[contract.CLASSES_KEY])
    class_ids = (tf.make_ndarray(outputs[contract.CLASS_IDS_KEY]) if contract.CLASS_IDS_KEY in outputs
                 else probabilities.argmax(axis=-1))
    return [Prediction(class_name=name.decode("utf-8"), class_id=int(class_id),
                       probability=float(row[int(class_id)]), probabilities=tuple(float(p) for p in row))
            for name, class_id, row in zip(classes, class_ids, probabilities)]


class PredictionClient:
    def __init__(self, target: str, options: ClientOptions = ClientOptions()):
        self.target = target
        self.options = options
        channel_options = [("grpc.max_receive_message_length", options.max_response_bytes),
                           ("grpc.max_send_message_length", -1),
                           ("grpc.enable_retries", 1),
                           ("grpc.service_config", service_config(options))]
        if options.tls:
            root = None
            if options.root_certificates_file:
                with open(options.root_certificates_file, "rb") as pem:
                    root = pem.read()
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root), channel_options)
        else:
            self._channel = grpc.insecure_channel(target, channel_options)
        self._prediction = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "PredictionClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def call(self, method, request):
        """One RPC with the deadline; the channel's retry policy retries it on UNAVAILABLE."""
        return method(request, timeout=self.options.timeout_seconds)

    @staticmethod
    def _spec(message, model: str, version: Optional[int], signature: Optional[str] = None):
        message.model_spec.name = model
        if version is not None:
            message.model_spec.version.value = version
        if signature:
            message.model_spec.signature_name = signature
        return message

    def predict_request(self, images: Sequence[bytes], model: str, version: Optional[int] = None,
                        signature: str = contract.SERVING_SIGNATURE) -> predict_pb2.PredictRequest:
        request = self._spec(predict_pb2.PredictRequest(), model, version, signature)
        request.inputs[contract.SERVING_INPUT_KEY].CopyFrom(
            tf.make_tensor_proto(list(images), dtype=tf.string, shape=[len(images)]))
        return request

    def predict(self, images: Sequence[bytes], model: str, version: Optional[int] = None,
                signature: str = contract.SERVING_SIGNATURE) -> PredictResult:
        """One Predict request holding all `images` (raw JPEG/PNG bytes)."""
        response = self.call(self._prediction.Predict, self.predict_request(images, model, version, signature))
        return PredictResult(model=response.model_spec.name, version=response.model_spec.version.value,
                             predictions=predictions_from_response(response))

    def predict_files(self, paths: Sequence[str], model: str, version: Optional[int] = None,
                      signature: str = contract.SERVING_SIGNATURE) -> PredictResult:
        images = []
        for path in paths:
            with open(path, "rb") as image_file:
                images.append(image_file.read())
        return self.predict(images, model, version, signature)

    def model_status(self, model: str, version: Optional[int] = None):
        """[(version, state name, error message)] as GetModelStatus reports them."""
        request = self._spec(get_model_status_pb2.GetModelStatusRequest(), model, version)
        response = self.call(self._models.GetModelStatus, request)
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return [(status.version, state_name(status.state), status.status.error_message)
                for status in response.model_version_status]

    def metadata(self, model: str, version: Optional[int] = None) -> get_model_metadata_pb2.SignatureDefMap:
        request = self._spec(get_model_metadata_pb2.GetModelMetadataRequest(), model, version)
        request.metadata_field.append(SIGNATURE_DEF_FIELD)
        response = self.call(self._prediction.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
        return signature_map
