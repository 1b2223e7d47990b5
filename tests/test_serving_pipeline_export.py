"""The server serves what the pipeline's Trainers export
(components.training.export.export_model: Transform's graph + the book's
scratch convnet), unchanged, and answers like the SavedModel in-process; and
on such an export, empty batches and bad bytes get what TF Serving gives."""
import base64
import io
import logging

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
import tensorflow_transform as tft
from PIL import Image
from tensorflow_serving.apis import predict_pb2

from benchmarks import trainer_inputs
from components import contract
from components.models.scratch.network import build_scratch_model
from components.training.export import export_model
from serving.client import ClientOptions, PredictionClient
from tests.serving_helpers import LOOPBACK, MODEL, push, read_bytes, sample_images, start_server

IMAGES = sample_images()


@pytest.fixture(scope="module")
def trainer_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer_export")
    transform_dir = trainer_inputs.build_transform_graph(IMAGES[0][0], str(root / "transform"))
    tft_layer = tft.TFTransformOutput(transform_dir).transform_features_layer()
    return export_model(build_scratch_model(), tft_layer, trainer_inputs.RAW_FEATURE_SPEC,
                        list(contract.CATS_VS_DOGS_CLASSES), str(root / "export"))


@pytest.mark.slow
def test_a_trainer_export_is_served_like_it_runs_in_process(tmp_path, trainer_export):
    push(trainer_export, str(tmp_path), MODEL, 1)
    server = start_server(serving_root=str(tmp_path))
    try:
        images = [read_bytes(path) for path, _ in IMAGES]
        with PredictionClient(f"{LOOPBACK}:{server.port}") as client:
            result = client.predict(images, MODEL)
            signatures = client.metadata(MODEL).signature_def
        serve = tf.saved_model.load(trainer_export).signatures[contract.SERVING_SIGNATURE]
        expected = serve(**{contract.SERVING_INPUT_KEY: tf.constant(images)})
        np.testing.assert_allclose([p.probabilities for p in result.predictions],
                                   expected[contract.PROBABILITIES_KEY].numpy(), rtol=1e-4, atol=1e-6)
        assert [p.class_name for p in result.predictions] == [
            name.decode() for name in expected[contract.CLASSES_KEY].numpy()]
        assert {contract.SERVING_SIGNATURE, contract.EXAMPLES_SIGNATURE} <= set(signatures)
    finally:
        server.stop()


# --- faults, on a tiny real export (fast) ----------------------------------------------------

@pytest.fixture
def pipeline_server(tmp_path, pipeline_export):
    push(pipeline_export, str(tmp_path), MODEL, 1)
    server = start_server(serving_root=str(tmp_path))
    yield server
    server.stop()


def _predict(client, alias, values, signature):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = signature
    request.inputs[alias].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string, shape=[len(values)]))
    return client.call(client._prediction.Predict, request)


def test_an_empty_batch_gives_empty_outputs_on_both_signatures(pipeline_server):
    classes = len(contract.CATS_VS_DOGS_CLASSES)
    with PredictionClient(f"{LOOPBACK}:{pipeline_server.port}", ClientOptions(retries=0)) as client:
        for signature, alias in [(contract.SERVING_SIGNATURE, contract.SERVING_INPUT_KEY),
                                 (contract.EXAMPLES_SIGNATURE, contract.EXAMPLES_INPUT_KEY)]:
            outputs = {name: tf.make_ndarray(proto)
                       for name, proto in _predict(client, alias, [], signature).outputs.items()}
            assert outputs[contract.PROBABILITIES_KEY].shape == (0, classes), signature
            assert outputs[contract.CLASSES_KEY].shape == (0,), signature
            assert outputs[contract.CLASS_IDS_KEY].shape == (0,), signature
        # and a batch of one still goes through the model
        result = client.predict([read_bytes(IMAGES[0][0])], MODEL)
        assert result.predictions[0].class_name in contract.CATS_VS_DOGS_CLASSES
    url = f"http://{LOOPBACK}:{pipeline_server.rest_port}/v1/models/{MODEL}:predict"
    # TF Serving's REST API refuses an empty row list; an empty column is a batch of none.
    reply = requests.post(url, json={"instances": []})
    assert reply.status_code == 400
    assert reply.json() == {"error": "JSON Value: {\"instances\": []} No values in 'instances' array"}
    reply = requests.post(url, json={"inputs": []})
    assert reply.status_code == 200, reply.text
    assert reply.json()["outputs"][contract.CLASSES_KEY] == []


def _bmp(size=300):
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (120, 40, 200)).save(buffer, "BMP")
    return buffer.getvalue()


BAD_BYTES = {
    "BMP": (contract.SERVING_SIGNATURE, contract.SERVING_INPUT_KEY, _bmp),
    "random bytes": (contract.SERVING_SIGNATURE, contract.SERVING_INPUT_KEY, lambda: bytes(range(255, -1, -1)) * 8),
    "JPEG to the examples signature": (contract.EXAMPLES_SIGNATURE, contract.EXAMPLES_INPUT_KEY,
                                       lambda: read_bytes(IMAGES[0][0])),
}


@pytest.mark.parametrize("kind", sorted(BAD_BYTES))
def test_bad_bytes_are_invalid_argument_in_one_line_without_a_traceback(pipeline_server, kind, caplog):
    signature, alias, make = BAD_BYTES[kind]
    data = make()
    with PredictionClient(f"{LOOPBACK}:{pipeline_server.port}", ClientOptions(retries=0)) as client:
        with pytest.raises(grpc.RpcError) as caught:
            _predict(client, alias, [data], signature)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        assert caught.value.details() and "\n" not in caught.value.details()
        assert client.predict([read_bytes(IMAGES[0][0])], MODEL).predictions
    reply = requests.post(f"http://{LOOPBACK}:{pipeline_server.rest_port}/v1/models/{MODEL}:predict", json={
        "signature_name": signature, "instances": [{alias: {"b64": base64.b64encode(data).decode()}}]})
    assert reply.status_code == 400, reply.text
    assert "\n" not in reply.json()["error"]
    assert not [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]


def test_tensorflow_messages_that_are_not_utf8_become_one_line_invalid_argument(pipeline_export):
    """The model's own error for bytes that slip past the server's checks quotes
    those bytes; TensorFlow cannot turn them into text (UnicodeDecodeError)."""
    from serving.errors import ServingError
    from serving.servable import Servable
    servable = Servable.load(MODEL, 1, pipeline_export)
    for signature, alias in [(contract.EXAMPLES_SIGNATURE, contract.EXAMPLES_INPUT_KEY),
                             (contract.SERVING_SIGNATURE, contract.SERVING_INPUT_KEY)]:
        outputs = sorted(servable.signature_defs[signature].outputs)
        with pytest.raises(ServingError) as caught:
            servable.run_signature(signature, {alias: np.array([b"\xff\xfe\xfd\xfc" * 40], dtype=object)}, outputs)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT, caught.value.message
        assert "\n" not in caught.value.message and len(caught.value.message) < 500
