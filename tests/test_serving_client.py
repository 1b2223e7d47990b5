"""The client's retries are gRPC's retry policy (the channel's service config):
checked against a real gRPC server on loopback that answers UNAVAILABLE a set
number of times before it answers."""
from concurrent import futures

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from components import contract
from serving.client import MAX_RETRIES, ClientOptions, PredictionClient

MODEL = "flaky_model"


class FlakyPredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, failures: int):
        self.failures = failures
        self.attempts = 0

    def Predict(self, request, context):
        self.attempts += 1
        if self.attempts <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"attempt {self.attempts}: not ready")
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = 7
        response.outputs[contract.PROBABILITIES_KEY].CopyFrom(tf.make_tensor_proto([[0.25, 0.75]], tf.float32))
        response.outputs[contract.CLASSES_KEY].CopyFrom(tf.make_tensor_proto([b"dogs"]))
        return response


@pytest.fixture
def flaky_server():
    servers = []

    def start(failures: int):
        service = FlakyPredictionService(failures)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}", service

    yield start
    for server in servers:
        server.stop(None)


FAST_BACKOFF = dict(initial_backoff_seconds=0.01, max_backoff_seconds=0.02, timeout_seconds=10)


def test_unavailable_answers_are_retried_up_to_the_retry_budget(flaky_server):
    target, service = flaky_server(failures=3)
    with PredictionClient(target, ClientOptions(retries=3, **FAST_BACKOFF)) as client:
        result = client.predict([b"image"], MODEL)
    assert service.attempts == 4
    assert (result.version, result.predictions[0].class_name) == (7, "dogs")


def test_past_the_retry_budget_the_error_reaches_the_caller(flaky_server):
    target, service = flaky_server(failures=3)
    with PredictionClient(target, ClientOptions(retries=2, **FAST_BACKOFF)) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.predict([b"image"], MODEL)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE and service.attempts == 3


def test_no_retries_means_one_attempt(flaky_server):
    target, service = flaky_server(failures=1)
    with PredictionClient(target, ClientOptions(retries=0, **FAST_BACKOFF)) as client:
        with pytest.raises(grpc.RpcError):
            client.predict([b"image"], MODEL)
    assert service.attempts == 1


def test_more_retries_than_grpc_allows_are_refused_in_one_line():
    with pytest.raises(ValueError, match=f"retries must be 0 to {MAX_RETRIES}"):
        ClientOptions(retries=MAX_RETRIES + 1)
