"""The model server over gRPC: real SavedModels, real JPEGs, real servers on
loopback ports, the project's client. Tests taking the `backend` fixture also
run against tensorflow_model_server when it is on PATH."""
import os
import shutil
import subprocess
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import classification_pb2, predict_pb2

from components import contract
from pipeline import model_registry
from serving.client import ClientOptions, PredictionClient
from serving.errors import ServingError
from tests.serving_helpers import (
    LOOPBACK,
    MODEL,
    OTHER_MODEL,
    REPO_ROOT,
    free_port,
    push,
    read_bytes,
    sample_images,
    start_server,
    wait_for,
    wait_until_available,
    write_model_config,
)

TF_MODEL_SERVER = "tensorflow_model_server"
IMAGES = sample_images()


def in_process_probabilities(export_dir, images):
    serve = tf.saved_model.load(export_dir).signatures[contract.SERVING_SIGNATURE]
    return serve(**{contract.SERVING_INPUT_KEY: tf.constant(images)})[contract.PROBABILITIES_KEY].numpy()


class Backend:
    """A running server holding MODEL versions 1 (seed 1) and 2 (seed 2), all served."""

    def __init__(self, kind, base_path, exports):
        self.kind, self.exports = kind, exports
        push(exports[1], base_path, MODEL, 1)
        push(exports[2], base_path, MODEL, 2)
        config = write_model_config(os.path.join(base_path, "models.config"),
                                    [(MODEL, os.path.join(base_path, MODEL), "model_version_policy { all {} }")])
        if kind == "catsdogs":
            self.server = start_server(model_config_file=config)
            self.port = self.server.port
        else:
            self.port = free_port()
            self.process = subprocess.Popen([shutil.which(TF_MODEL_SERVER), f"--port={self.port}",
                                             f"--model_config_file={config}"])
        # The same command line runs `catsdogs serve` (and tensorflow_model_server) unchanged.
        self.target = f"{LOOPBACK}:{self.port}"
        self.client = PredictionClient(self.target, ClientOptions(timeout_seconds=30, retries=0))
        wait_until_available(self.client, MODEL, 2)
        wait_until_available(self.client, MODEL, 1)

    def stop(self):
        self.client.close()
        if self.kind == "catsdogs":
            self.server.stop()
        else:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture(params=["catsdogs", TF_MODEL_SERVER])
def backend(request, tmp_path, exported_models):
    if request.param == TF_MODEL_SERVER and shutil.which(TF_MODEL_SERVER) is None:
        pytest.skip(f"{TF_MODEL_SERVER} is not on PATH (TF Serving ships as a container image only)")
    running = Backend(request.param, str(tmp_path), exported_models)
    yield running
    running.stop()


@pytest.fixture
def client(server):
    with PredictionClient(f"{LOOPBACK}:{server.port}", ClientOptions(timeout_seconds=30, retries=0)) as c:
        yield c


def raw_predict(client_, inputs, model=MODEL, version=None, signature=None, output_filter=()):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    if signature:
        request.model_spec.signature_name = signature
    for alias, tensor in inputs.items():
        request.inputs[alias].CopyFrom(tensor)
    request.output_filter.extend(output_filter)
    return client_.call(client_._prediction.Predict, request)


def image_tensor(images):
    return tf.make_tensor_proto(images, dtype=tf.string, shape=[len(images)])


def assert_error(code, call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    assert caught.value.code() == code, caught.value.details()
    return caught.value.details()


def assert_still_serving(client_, model=MODEL):
    result = client_.predict([read_bytes(IMAGES[0][0])], model)
    assert len(result.predictions) == 1


# --- behaviour shared with tensorflow_model_server ------------------------------------------

def test_predict_batch_matches_the_saved_model_in_process(backend):
    images = [read_bytes(path) for path, _ in IMAGES[::5]]
    result = backend.client.predict(images, MODEL, version=1)
    expected = in_process_probabilities(backend.exports[1], images)
    assert (result.model, result.version) == (MODEL, 1)
    got = np.array([p.probabilities for p in result.predictions])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for prediction, row in zip(result.predictions, expected):
        assert prediction.class_name == contract.CATS_VS_DOGS_CLASSES[int(row.argmax())]
        assert prediction.probability == pytest.approx(row.max(), rel=1e-5)


def test_latest_version_by_default_and_a_specific_one_on_request(backend):
    image = [read_bytes(IMAGES[-1][0])]
    latest = backend.client.predict(image, MODEL)
    first = backend.client.predict(image, MODEL, version=1)
    assert (latest.version, first.version) == (2, 1)
    assert latest.predictions[0].probabilities != first.predictions[0].probabilities


def test_unknown_model_or_version_is_not_found(backend):
    image = [read_bytes(IMAGES[0][0])]
    assert_error(grpc.StatusCode.NOT_FOUND, backend.client.predict, image, "no_such_model")
    assert_error(grpc.StatusCode.NOT_FOUND, backend.client.predict, image, MODEL, version=7)
    assert_still_serving(backend.client)


BAD_INPUTS = {
    "unknown input name": {"pixels": tf.make_tensor_proto([b"x"], dtype=tf.string)},
    "wrong dtype": {contract.SERVING_INPUT_KEY: tf.make_tensor_proto([1.0, 2.0], dtype=tf.float32)},
    "wrong rank": {contract.SERVING_INPUT_KEY: tf.make_tensor_proto([[b"a"], [b"b"]], dtype=tf.string)},
    "bytes that are no image": {contract.SERVING_INPUT_KEY: image_tensor([b"certainly not a JPEG"])},
    "0-byte image": {contract.SERVING_INPUT_KEY: image_tensor([b""])},
}


@pytest.mark.parametrize("problem", sorted(BAD_INPUTS))
def test_bad_input_is_invalid_argument_with_a_message(backend, problem):
    details = assert_error(grpc.StatusCode.INVALID_ARGUMENT, raw_predict, backend.client, BAD_INPUTS[problem])
    assert details
    assert_still_serving(backend.client)


def test_empty_batch_gives_empty_outputs(backend):
    response = raw_predict(backend.client, {contract.SERVING_INPUT_KEY: image_tensor([])})
    probabilities = tf.make_ndarray(response.outputs[contract.PROBABILITIES_KEY])
    assert probabilities.shape == (0, len(contract.CATS_VS_DOGS_CLASSES))
    assert tf.make_ndarray(response.outputs[contract.CLASSES_KEY]).shape == (0,)


def test_metadata_and_status(backend):
    signatures = backend.client.metadata(MODEL).signature_def
    serving = signatures[contract.SERVING_SIGNATURE]
    assert serving.inputs[contract.SERVING_INPUT_KEY].dtype == tf.string.as_datatype_enum
    assert {contract.PROBABILITIES_KEY, contract.CLASSES_KEY, contract.CLASS_IDS_KEY} <= set(serving.outputs)
    assert serving.outputs[contract.PROBABILITIES_KEY].dtype == tf.float32.as_datatype_enum
    assert backend.client.model_status(MODEL, 1) == [(1, "AVAILABLE", "")]
    assert {v for v, state, _ in backend.client.model_status(MODEL) if state == "AVAILABLE"} == {1, 2}
    assert_error(grpc.StatusCode.NOT_FOUND, backend.client.model_status, "no_such_model")


def test_classify_on_a_classify_signature(backend):
    paths = [path for path, _ in IMAGES[:3]]
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "classify"
    for path in paths:
        example = request.input.example_list.examples.add()
        example.features.feature[contract.IMAGE_KEY].bytes_list.value.append(read_bytes(path))
    response = backend.client.call(backend.client._prediction.Classify, request)
    predicted = backend.client.predict([read_bytes(p) for p in paths], MODEL)
    assert len(response.result.classifications) == 3
    for classifications, prediction in zip(response.result.classifications, predicted.predictions):
        assert [c.label for c in classifications.classes] == list(contract.CATS_VS_DOGS_CLASSES)
        np.testing.assert_allclose([c.score for c in classifications.classes], prediction.probabilities, rtol=1e-5)
    # serving_default has three outputs; a classification signature has one or two (TF Serving's rule).
    request.model_spec.signature_name = contract.SERVING_SIGNATURE
    assert_error(grpc.StatusCode.INVALID_ARGUMENT, backend.client.call, backend.client._prediction.Classify, request)


# --- this project's server only ----------------------------------------------------------------

def test_unknown_signature_and_output_filter(client):
    good = {contract.SERVING_INPUT_KEY: image_tensor([read_bytes(IMAGES[0][0])])}
    assert_error(grpc.StatusCode.FAILED_PRECONDITION, raw_predict, client, good, signature="nope")
    assert_error(grpc.StatusCode.INVALID_ARGUMENT, raw_predict, client, good, output_filter=["nope"])
    response = raw_predict(client, good, output_filter=[contract.CLASSES_KEY])
    assert list(response.outputs) == [contract.CLASSES_KEY]


def test_malformed_protos_are_rejected_and_the_server_carries_on(client, server):
    channel = grpc.insecure_channel(f"{LOOPBACK}:{server.port}")
    raw_method = channel.unary_unary("/tensorflow.serving.PredictionService/Predict",
                                     request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as caught:
        raw_method(b"\xff\xff\xff this is not a PredictRequest", timeout=10)
    assert caught.value.code() != grpc.StatusCode.OK
    channel.close()
    # A well-formed request carrying an inconsistent TensorProto: 1 string declared, 2 sent.
    tensor = image_tensor([read_bytes(IMAGES[0][0])] * 2)
    tensor.tensor_shape.dim[0].size = 1
    details = assert_error(grpc.StatusCode.INVALID_ARGUMENT, raw_predict, client,
                           {contract.SERVING_INPUT_KEY: tensor})
    assert contract.SERVING_INPUT_KEY in details
    assert_still_serving(client)


def test_request_over_the_size_limit_is_resource_exhausted(tmp_path, exported_models):
    push(exported_models[1], str(tmp_path), MODEL, 1)
    server_ = start_server(serving_root=str(tmp_path), max_request_bytes=8 * 1024 * 1024)
    try:
        with PredictionClient(f"{LOOPBACK}:{server_.port}", ClientOptions(retries=0)) as c:
            twenty_mb = os.urandom(20 * 1024 * 1024)
            assert_error(grpc.StatusCode.RESOURCE_EXHAUSTED, c.predict, [twenty_mb], MODEL)
            assert_still_serving(c)
    finally:
        server_.stop()


def test_twenty_megabyte_request_within_the_limit_is_read_and_judged(client):
    twenty_mb = os.urandom(20 * 1024 * 1024)
    assert_error(grpc.StatusCode.INVALID_ARGUMENT, client.predict, [read_bytes(IMAGES[0][0]), twenty_mb], MODEL)
    assert_still_serving(client)


def state_of(client_, model, version):
    """The version's state name, or None while the server does not know it."""
    try:
        return client_.model_status(model, version)[0][1]
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return None


def test_new_version_is_loaded_then_the_old_one_unloaded(client, server, tmp_path, exported_models):
    image = [read_bytes(IMAGES[0][0])]
    assert client.predict(image, MODEL).version == 1
    # A folder without saved_model.pb is not a version yet.
    half_pushed = tmp_path / MODEL / "3"
    shutil.copytree(os.path.join(exported_models[2], "variables"), half_pushed / "variables")
    push(exported_models[2], str(tmp_path), MODEL, 2)
    wait_for(lambda: client.predict(image, MODEL).version == 2, what="version 2 to serve")
    wait_for(lambda: state_of(client, MODEL, 1) == "END", what="version 1 to unload")
    assert [v for v, state, _ in client.model_status(MODEL) if state == "AVAILABLE"] == [2]
    assert_error(grpc.StatusCode.NOT_FOUND, client.predict, image, MODEL, version=1)
    assert_error(grpc.StatusCode.NOT_FOUND, client.model_status, MODEL, 3)


def test_a_model_added_to_the_polled_models_config_is_served(tmp_path, exported_models):
    push(exported_models[1], str(tmp_path), MODEL, 1)
    push(exported_models[2], str(tmp_path), OTHER_MODEL, 1)
    config = str(tmp_path / "models.config")
    write_model_config(config, [(MODEL, str(tmp_path / MODEL), "")])
    server_ = start_server(model_config_file=config, model_config_file_poll_wait_seconds=1)
    try:
        with PredictionClient(f"{LOOPBACK}:{server_.port}", ClientOptions(retries=0)) as c:
            assert_error(grpc.StatusCode.NOT_FOUND, c.predict, [read_bytes(IMAGES[0][0])], OTHER_MODEL)
            write_model_config(config, [(OTHER_MODEL, str(tmp_path / OTHER_MODEL), "")])
            assert wait_until_available(c, OTHER_MODEL, timeout_seconds=30) == 1
            wait_for(lambda: state_of(c, MODEL, 1) is None, what=f"{MODEL} to be removed")
            (tmp_path / "models.config").write_text("not a config")  # logged; the served models stay
            time.sleep(2)
            assert_still_serving(c, OTHER_MODEL)
    finally:
        server_.stop()


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(client, tmp_path):
    broken = tmp_path / MODEL / "2"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    wait_for(lambda: state_of(client, MODEL, 2) == "END", what="version 2 to fail")
    version, state, error = client.model_status(MODEL, 2)[0]
    assert error
    assert client.predict([read_bytes(IMAGES[0][0])], MODEL).version == 1
    assert client.model_status(MODEL, 1)[0][1] == "AVAILABLE"


def test_warmup_records_are_replayed_at_load(client, tmp_path, exported_models):
    from components.formats import warmup as warmup_format
    good = str(tmp_path / "good")
    shutil.copytree(exported_models[2], good)
    image = read_bytes(IMAGES[0][0])
    warmup_format.write_records(warmup_format.warmup_path(good), [
        warmup_format.predict_log(MODEL, [image] * batch_size) for batch_size in (1, 4)])
    bad = str(tmp_path / "bad")
    shutil.copytree(exported_models[2], bad)
    warmup_format.write_records(warmup_format.warmup_path(bad), [warmup_format.predict_log(MODEL, [b"not an image"])])
    # A version whose warmup fails is not served: the replay really ran.
    push(bad, str(tmp_path), MODEL, 2)
    wait_for(lambda: state_of(client, MODEL, 2) == "END", what="bad warmup to fail the load")
    assert "not a JPEG or PNG image" in client.model_status(MODEL, 2)[0][2]
    push(good, str(tmp_path), MODEL, 3)
    wait_for(lambda: client.predict([read_bytes(IMAGES[0][0])], MODEL).version == 3, what="version 3")


def test_the_pushers_warmup_file_is_replayed(client, tmp_path, exported_models):
    from components.formats.warmup import serialize_records, warmup_path
    from components.pusher import warmup as pusher_warmup
    model_dir = str(tmp_path / "with_pusher_warmup")
    shutil.copytree(exported_models[2], model_dir)
    os.makedirs(os.path.dirname(warmup_path(model_dir)))
    with open(warmup_path(model_dir), "wb") as warmup_file:
        warmup_file.write(serialize_records(pusher_warmup.warmup_logs(MODEL, [b"broken image"])))
    push(model_dir, str(tmp_path), MODEL, 2)
    wait_for(lambda: state_of(client, MODEL, 2) == "END", what="the broken warmup to fail the load")
    with open(warmup_path(model_dir), "wb") as warmup_file:
        warmup_file.write(serialize_records(pusher_warmup.warmup_logs(MODEL, [read_bytes(IMAGES[0][0])])))
    push(model_dir, str(tmp_path), MODEL, 3)
    wait_for(lambda: state_of(client, MODEL, 3) == "AVAILABLE", what="version 3 with a good warmup")


def test_models_config_policies_and_version_labels(tmp_path, exported_models):
    for version in (1, 2, 3):
        push(exported_models[1 + version % 2], str(tmp_path), MODEL, version)
    config = write_model_config(str(tmp_path / "models.config"), [
        (MODEL, str(tmp_path / MODEL), "model_version_policy { specific { versions: 1 versions: 2 } }\n"
                                       "version_labels { key: 'stable' value: 1 }\n"
                                       "version_labels { key: 'canary' value: 2 }")])
    # TF Serving assigns labels only to loaded versions, unless told otherwise (server_core.cc);
    # which label it names first follows the config's map order, which protobuf leaves open.
    with pytest.raises(ServingError, match="Request to assign label to version [12] of model"):
        start_server(model_config_file=config)
    server_ = start_server(model_config_file=config, allow_version_labels_for_unavailable_models=True)
    try:
        with PredictionClient(f"{LOOPBACK}:{server_.port}") as c:
            assert [v for v, state, _ in c.model_status(MODEL) if state == "AVAILABLE"] == [1, 2]
            request = c.predict_request([read_bytes(IMAGES[0][0])], MODEL)
            request.model_spec.version_label = "canary"
            assert c.call(c._prediction.Predict, request).model_spec.version.value == 2
            request.model_spec.version_label = "stable"
            assert c.call(c._prediction.Predict, request).model_spec.version.value == 1
            assert c.predict([read_bytes(IMAGES[0][0])], MODEL).version == 2
            request.model_spec.version_label = "nightly"
            details = assert_error(grpc.StatusCode.INVALID_ARGUMENT, c.call, c._prediction.Predict, request)
            assert details == "Unrecognized servable version label: nightly"
    finally:
        server_.stop()


def test_reload_config_serves_exactly_the_new_model_list(tmp_path, exported_models):
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc
    push(exported_models[1], str(tmp_path), MODEL, 1)
    push(exported_models[2], str(tmp_path), OTHER_MODEL, 1)
    config = write_model_config(str(tmp_path / "models.config"), [(MODEL, str(tmp_path / MODEL), "")])
    server_ = start_server(model_config_file=config)
    try:
        with PredictionClient(f"{LOOPBACK}:{server_.port}", ClientOptions(retries=0)) as c:
            stub = model_service_pb2_grpc.ModelServiceStub(c._channel)
            assert_error(grpc.StatusCode.NOT_FOUND, c.predict, [read_bytes(IMAGES[0][0])], OTHER_MODEL)
            request = model_management_pb2.ReloadConfigRequest()
            text_format.Parse(f'model_config_list {{ config {{ name: "{OTHER_MODEL}" '
                              f'base_path: "{tmp_path / OTHER_MODEL}" model_platform: "tensorflow" }} }}',
                              request.config)
            stub.HandleReloadConfigRequest(request, timeout=30)
            assert c.predict([read_bytes(IMAGES[0][0])], OTHER_MODEL).model == OTHER_MODEL
            assert_error(grpc.StatusCode.NOT_FOUND, c.predict, [read_bytes(IMAGES[0][0])], MODEL)
            twice = model_management_pb2.ReloadConfigRequest()
            twice.config.model_config_list.config.add(name=MODEL, base_path="a")
            twice.config.model_config_list.config.add(name=MODEL, base_path="b")
            details = assert_error(grpc.StatusCode.INVALID_ARGUMENT, stub.HandleReloadConfigRequest, twice)
            assert details == f"Illegal to list model {MODEL} multiple times in config list"
            assert_still_serving(c, OTHER_MODEL)
    finally:
        server_.stop()


def test_shipped_configs_parse_and_name_the_contract_models():
    from tensorflow_serving.config import model_server_config_pb2

    from serving.batching import BatchingOptions
    from serving.config_protos import MonitoringConfig, read_text_proto
    configs = os.path.join(REPO_ROOT, "serving", "configs")
    models = read_text_proto(os.path.join(configs, "models.config"), model_server_config_pb2.ModelServerConfig)
    assert sorted(c.name for c in models.model_config_list.config) == sorted(
        [model_registry.get("scratch").served_name, model_registry.get("vgg16").served_name])
    batching = BatchingOptions.from_file(os.path.join(configs, "batching_parameters.txt"))
    assert batching.max_batch_size >= 32
    monitoring = read_text_proto(os.path.join(configs, "monitoring.config"), MonitoringConfig)
    assert monitoring.prometheus_config.enable


def test_bad_config_files_are_reported_by_name(tmp_path):
    from serving.batching import BatchingOptions
    bad = tmp_path / "batching.txt"
    bad.write_text("max_batch_size { value: 32 }\nno_such_field: 1\n")
    with pytest.raises(ValueError, match="batching.txt"):
        BatchingOptions.from_file(str(bad))
    config = write_model_config(str(tmp_path / "models.config"), [(MODEL, "/a", ""), (MODEL, "/b", "")])
    with pytest.raises(ServingError, match="multiple times in config list"):
        start_server(model_config_file=config)
    relative = write_model_config(str(tmp_path / "relative.config"), [(MODEL, "models/a", "")])
    with pytest.raises(ServingError, match="to have an absolute path or URI; got base_path"):
        start_server(model_config_file=relative)


def test_client_waits_for_a_server_that_is_not_up_yet(tmp_path, exported_models):
    push(exported_models[1], str(tmp_path), MODEL, 1)
    port = free_port()
    outcome = {}

    def predict_early():
        options = ClientOptions(timeout_seconds=30, wait_for_ready=True)
        with PredictionClient(f"{LOOPBACK}:{port}", options) as c:
            outcome["result"] = c.predict([read_bytes(IMAGES[0][0])], MODEL)

    caller = threading.Thread(target=predict_early)
    caller.start()
    time.sleep(1.0)
    assert caller.is_alive(), "the client gave up before the server started"
    server_ = start_server(serving_root=str(tmp_path), port=port)
    try:
        caller.join(timeout=30)
        assert outcome["result"].version == 1
    finally:
        server_.stop()
    with PredictionClient(f"{LOOPBACK}:{port}", ClientOptions(retries=1, initial_backoff_seconds=0.05)) as c:
        assert_error(grpc.StatusCode.UNAVAILABLE, c.predict, [b""], MODEL)
