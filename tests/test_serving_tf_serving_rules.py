"""TF Serving's rules, one by one, on a half_plus_two model built in the
tests (tests/half_plus_two.py): its tolerance for shapes, Classify, Regress
and MultiInference on TF2 signatures, its REST JSON and error texts, its
command line and the gRPC health service. Real servers on loopback ports."""
import json

import grpc
import pytest
import requests
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving import flags
from tests.half_plus_two import ECHO_SIGNATURE, HALF_PLUS_TWO, VERSION, export_half_plus_two
from tests.serving_helpers import LOOPBACK, free_port, start_server

CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"


@pytest.fixture(scope="module")
def model_base_path(tmp_path_factory):
    return export_half_plus_two(str(tmp_path_factory.mktemp("models") / HALF_PLUS_TWO))


def _server(model_base_path, **options):
    return start_server(model_name=HALF_PLUS_TWO, model_base_path=model_base_path, **options)


@pytest.fixture(scope="module")
def served(model_base_path):
    server = _server(model_base_path)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stub(served):
    with grpc.insecure_channel(f"{LOOPBACK}:{served.port}") as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _x_request(shape, signature=""):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = HALF_PLUS_TWO
    request.model_spec.signature_name = signature
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].float_val.append(2.0)
    for size in shape:
        request.inputs["x"].tensor_shape.dim.add().size = size
    return request


def _examples(request, *values):
    for value in values:
        request.input.example_list.examples.add().features.feature["x"].float_list.value.append(value)
    return request


def _rpc_error(call, *args):
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, timeout=30)
    return caught.value.code(), caught.value.details()


# --- gRPC -------------------------------------------------------------------------------------

def test_a_shape_the_signature_does_not_declare_reaches_the_model(stub):
    """[1] where the signature says [-1, 1]: TF Serving hands it to the graph."""
    response = stub.Predict(_x_request([1]), timeout=30)
    assert list(response.outputs["y"].float_val) == [3.0]
    assert response.outputs["y"].tensor_content == b""  # typed fields, as TF Serving answers
    assert (response.model_spec.name, response.model_spec.signature_name,
            response.model_spec.version.value) == (HALF_PLUS_TWO, "serving_default", VERSION)


def test_a_tf1_graph_runs_in_a_session_with_the_same_tolerance(tmp_path):
    from tests.half_plus_two import export_half_plus_two_tf1
    server = _server(export_half_plus_two_tf1(str(tmp_path / HALF_PLUS_TWO)))
    try:
        with grpc.insecure_channel(f"{LOOPBACK}:{server.port}") as channel:
            stub_ = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            assert list(stub_.Predict(_x_request([1]), timeout=30).outputs["y"].float_val) == [3.0]
            request = _x_request([1])
            request.inputs["x"].dtype = types_pb2.DT_INT64
            request.inputs["x"].ClearField("float_val")
            request.inputs["x"].int64_val.append(2)
            code, details = _rpc_error(stub_.Predict, request)
            assert code == grpc.StatusCode.INVALID_ARGUMENT and "\n" not in details
    finally:
        server.stop()


def test_tensor_content_answers_on_request(model_base_path):
    server = _server(model_base_path, enable_serialization_as_tensor_content=True)
    try:
        with grpc.insecure_channel(f"{LOOPBACK}:{server.port}") as channel:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                _x_request([1, 1]), timeout=30)
        assert not response.outputs["y"].float_val
        assert tf.make_ndarray(response.outputs["y"]).tolist() == [[3.0]]
    finally:
        server.stop()


def test_predict_errors_in_tf_servings_words(stub):
    assert _rpc_error(stub.Predict, _x_request([1], "nope")) == (
        grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "nope" not found.')
    request = _x_request([1])
    request.output_filter.append("z")
    assert _rpc_error(stub.Predict, request) == (
        grpc.StatusCode.INVALID_ARGUMENT, "output tensor alias not found in signature: z Outputs expected to be "
                                          "in the set {y}.")
    request = _x_request([1])
    request.inputs["w"].CopyFrom(request.inputs["x"])
    assert _rpc_error(stub.Predict, request) == (
        grpc.StatusCode.INVALID_ARGUMENT, "input size does not match signature: 2!=1 len({w,x}) != len({x}). "
                                          "Sent extra: {w}. Missing but required: {}.")
    request.model_spec.name = "nope"
    assert _rpc_error(stub.Predict, request) == (
        grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)")


def test_classify_regress_and_multi_inference_on_tf2_signatures(stub):
    request = _examples(classification_pb2.ClassificationRequest(), 2.0, 4.0)
    request.model_spec.name, request.model_spec.signature_name = HALF_PLUS_TWO, "classify_x_to_y"
    result = stub.Classify(request, timeout=30).result
    assert [[(c.label, c.score) for c in row.classes] for row in result.classifications] == [[("", 3.0)],
                                                                                              [("", 4.0)]]
    request = _examples(regression_pb2.RegressionRequest(), 2.0)
    request.model_spec.name, request.model_spec.signature_name = HALF_PLUS_TWO, "regress_x_to_y"
    response = stub.Regress(request, timeout=30)
    assert [r.value for r in response.result.regressions] == [3.0]
    assert response.model_spec.version.value == VERSION
    request = _examples(inference_pb2.MultiInferenceRequest(), 6.0)
    for signature, method in (("regress_x_to_y", REGRESS), ("classify_x_to_y", CLASSIFY)):
        task = request.tasks.add(method_name=method)
        task.model_spec.name, task.model_spec.signature_name = HALF_PLUS_TWO, signature
    results = stub.MultiInference(request, timeout=30).results
    assert results[0].regression_result.regressions[0].value == 5.0
    assert results[1].classification_result.classifications[0].classes[0].score == 5.0
    assert [r.model_spec.signature_name for r in results] == ["regress_x_to_y", "classify_x_to_y"]


def test_classify_errors_in_tf_servings_words(stub):
    request = _examples(classification_pb2.ClassificationRequest(), 2.0)
    request.model_spec.name, request.model_spec.signature_name = HALF_PLUS_TWO, "nope"
    assert _rpc_error(stub.Classify, request) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                  "No signature was found with the name: nope")
    request.model_spec.signature_name = "regress_x_to_y"  # its output is 'outputs', not scores/classes
    code, details = _rpc_error(stub.Classify, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith('Expected classification signature outputs to contain at least one of "classes" '
                              'or "scores".')
    empty = classification_pb2.ClassificationRequest()
    empty.model_spec.name, empty.model_spec.signature_name = HALF_PLUS_TWO, "classify_x_to_y"
    assert _rpc_error(stub.Classify, empty) == (grpc.StatusCode.INVALID_ARGUMENT, "Input is empty.")
    request = _examples(inference_pb2.MultiInferenceRequest(), 1.0)
    task = request.tasks.add(method_name="tensorflow/serving/predict")
    task.model_spec.name, task.model_spec.signature_name = HALF_PLUS_TWO, "regress_x_to_y"
    assert _rpc_error(stub.MultiInference, request) == (
        grpc.StatusCode.UNIMPLEMENTED, "Unsupported signature method_name: tensorflow/serving/predict")


def test_the_method_name_check_is_tf_servings_opt_in(model_base_path):
    server = _server(model_base_path, enable_signature_method_name_check=True)
    try:
        with grpc.insecure_channel(f"{LOOPBACK}:{server.port}") as channel:
            stub_ = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = _examples(classification_pb2.ClassificationRequest(), 2.0)
            request.model_spec.name, request.model_spec.signature_name = HALF_PLUS_TWO, "classify_x_to_y"
            assert _rpc_error(stub_.Classify, request) == (
                grpc.StatusCode.INVALID_ARGUMENT, f"Expected classification signature method_name to be {CLASSIFY}. "
                                                  "Was: tensorflow/serving/predict")
            assert list(stub_.Predict(_x_request([1, 1]), timeout=30).outputs["y"].float_val) == [3.0]
    finally:
        server.stop()


def test_the_grpc_health_service_on_request(model_base_path, served):
    from serving.health import HealthCheckRequest, HealthCheckResponse

    def check(port, service):
        with grpc.insecure_channel(f"{LOOPBACK}:{port}") as channel:
            call = channel.unary_unary("/grpc.health.v1.Health/Check",
                                       request_serializer=HealthCheckRequest.SerializeToString,
                                       response_deserializer=HealthCheckResponse.FromString)
            return call(HealthCheckRequest(service=service), timeout=10).status

    assert _rpc_error(lambda **kw: check(served.port, ""))[0] == grpc.StatusCode.UNIMPLEMENTED
    server = _server(model_base_path, enable_grpc_healthcheck_service=True)
    try:
        assert check(server.port, "") == check(server.port, "tensorflow.serving.PredictionService") == 1
        assert _rpc_error(lambda **kw: check(server.port, "nope"))[0] == grpc.StatusCode.NOT_FOUND
    finally:
        server.stop()


# --- REST -------------------------------------------------------------------------------------

def _rest(served, path, body=None):
    url = f"http://{LOOPBACK}:{served.rest_port}{path}"
    if body is None:
        return requests.get(url, timeout=30)
    return requests.post(url, data=body if isinstance(body, bytes) else json.dumps(body), timeout=30)


def test_rest_predict_classify_and_regress_answer_tf_servings_json(served):
    base = f"/v1/models/{HALF_PLUS_TWO}"
    assert _rest(served, f"{base}:predict", {"instances": [2.0, 3.0, 4.0]}).json() == {"predictions": [3.0, 3.5, 4.0]}
    # Floats as TF Serving writes them: float32 2.1 is "2.1", not 2.0999999046325684.
    assert _rest(served, f"{base}:predict", {"inputs": [[2.0], [0.2]]}).text == '{"outputs": [[3.0], [2.1]]}'
    assert _rest(served, f"{base}/versions/{VERSION}:predict", {"instances": [[2.0]]}).json() == {
        "predictions": [[3.0]]}
    assert _rest(served, f"{base}:classify", {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
                 ).json() == {"results": [[["", 3.0]]]}
    assert _rest(served, f"{base}:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}],
                                             "context": {"unused": [1, 2]}}).json() == {"results": [3.0]}
    echo = _rest(served, f"{base}:predict", {"signature_name": ECHO_SIGNATURE, "instances": ["hi"]}).json()
    assert echo == {"predictions": [{"text_bytes": {"b64": "aGk="}, "text_out": "hi"}]}


def test_rest_status_and_metadata_print_every_field(served):
    assert _rest(served, f"/v1/models/{HALF_PLUS_TWO}").json() == {"model_version_status": [
        {"version": str(VERSION), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    metadata = _rest(served, f"/v1/models/{HALF_PLUS_TWO}/metadata").json()
    assert metadata["model_spec"] == {"name": HALF_PLUS_TWO, "signature_name": "", "version": str(VERSION)}
    serving = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert serving["inputs"]["x"]["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}, {"size": "1", "name": ""}],
                                                      "unknown_rank": False}
    assert serving["defaults"] == {} and serving["method_name"] == "tensorflow/serving/predict"


@pytest.mark.parametrize("method, path, body, status, error", [
    ("POST", f"/v1/models/{HALF_PLUS_TWO}:predict", b"", 400, "JSON Parse error: The document is empty"),
    ("POST", f"/v1/models/{HALF_PLUS_TWO}:predict", {"instances": [2.0], "inputs": [2.0]}, 400,
     'JSON Value: {"instances": [2.0], "inputs": [2.0]} Not formatted correctly expecting only one of '
     "'inputs' or 'instances' keys to exist "),
    ("POST", f"/v1/models/{HALF_PLUS_TWO}:predict", {"instances": ["two"]}, 400,
     "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: \"two\" "
     "Type: String is not of expected type: float"),
    ("POST", f"/v1/models/{HALF_PLUS_TWO}:predict", {"signature_name": "nope", "instances": [1.0]}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("POST", f"/v1/models/{HALF_PLUS_TWO}:predict", {"instances": [[1.0], [1.0, 2.0]]}, 400,
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 1 "
     "but got: 2"),
    ("POST", f"/v1/models/{HALF_PLUS_TWO}:explain", {"instances": [1.0]}, 400,
     f"Malformed request: POST /v1/models/{HALF_PLUS_TWO}:explain"),
    ("POST", "/v1/models/nope:predict", {"instances": [1.0]}, 404, "Servable not found for request: Latest(nope)"),
    ("POST", f"/v1/models/{HALF_PLUS_TWO}/labels/stable:predict", {"instances": [1.0]}, 400,
     "Unrecognized servable version label: stable"),
    ("GET", "/v1/models", None, 400, "Missing model name in request."),
    ("GET", f"/v1/models/{HALF_PLUS_TWO}/versions/9", None, 404, f"Could not find version 9 of model {HALF_PLUS_TWO}"),
])
def test_rest_errors_carry_tf_servings_status_and_text(served, method, path, body, status, error):
    reply = _rest(served, path, body if method == "POST" else None)
    assert (reply.status_code, reply.json()) == (status, {"error": error})


# --- command line -----------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--no_such_flag=1"], "unknown flag: --no_such_flag"),
    (["--port", "8500"], "--port needs a value, written --port=VALUE"),
    (["--port=eighty"], "--port=eighty: expected an integer"),
    (["--enable_batching=maybe"], "--enable_batching=maybe: expected true or false"),
    (["--prefer_tflite_model=true"], "--prefer_tflite_model=true is not supported by catsdogs serve: "
                                     "TF Lite models are not served"),
    (["--enable_profiler=true"], "--enable_profiler=true is not supported by catsdogs serve: "
                                 "the profiler service is not served; pass --enable_profiler=false"),
])
def test_the_command_line_is_tf_servings_and_refusals_are_one_line(argv, message):
    with pytest.raises(flags.FlagError) as caught:
        flags.parse(argv)
    assert str(caught.value) == message


def test_tf_servings_defaults_and_bare_booleans():
    values, given = flags.parse(["--enable_batching", "--model_name=m", "-model_base_path=/m",
                                 "--flush_filesystem_caches=false", "--enable_profiler=false"])
    assert values["enable_batching"] is True and values["model_name"] == "m" and values["model_base_path"] == "/m"
    assert (values["port"], values["rest_api_port"], values["file_system_poll_wait_seconds"],
            values["model_config_file_poll_wait_seconds"], values["enable_model_warmup"]) == (8500, 0, 1, 0, True)
    assert flags.not_applicable_notes(given) == [
        "--flush_filesystem_caches has no effect in catsdogs serve: TensorFlow's file-system caches are flushed "
        "by the C++ server only"]
    assert "not TensorFlow ModelServer" in flags.version_text()


def test_rest_api_port_0_means_no_rest_api_and_port_0_needs_a_socket(model_base_path):
    from serving.errors import ServingError
    server = _server(model_base_path, rest_api_port=0)
    try:
        assert server.rest_port is None
    finally:
        server.stop()
    with pytest.raises(ServingError, match="At least one of server_options.grpc_port or "
                                           "server_options.grpc_socket_path must be set."):
        _server(model_base_path, port=0)


def test_a_bad_model_config_file_is_reported_in_protobufs_words(tmp_path, capsys):
    from pipeline import cli
    config = tmp_path / "models.config"
    config.write_text("improperly formatted file")
    assert cli.main(["serve", f"--model_config_file={config}", f"--port={free_port()}"]) == 2
    error = capsys.readouterr().err
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in error
    assert error.splitlines()[-1].startswith("catsdogs serve: Failed to start server. Error: ")


def test_version_policies_pick_from_zero_padded_folders(tmp_path, model_base_path):
    import shutil
    for name in ("7", "0012", "00000123"):
        shutil.copytree(f"{model_base_path}/00000123", tmp_path / "m" / name)
    for policy, expected in [("all {}", [7, 12, 123]), ("latest { num_versions: 2 }", [12, 123]),
                             ("specific { versions: 7 versions: 99 }", [7])]:
        config = tmp_path / "models.config"
        config.write_text(f'model_config_list {{ config {{ name: "m" base_path: "{tmp_path / "m"}" '
                          f'model_platform: "tensorflow" model_version_policy {{ {policy} }} }} }}')
        server = start_server(model_config_file=str(config), rest_api_port=free_port())
        try:
            status = requests.get(f"http://{LOOPBACK}:{server.rest_port}/v1/models/m", timeout=30).json()
            assert sorted(int(s["version"]) for s in status["model_version_status"]
                          if s["state"] == "AVAILABLE") == expected, policy
        finally:
            server.stop()


def test_the_clusters_tensorflow_model_server_args_are_tf_serving_flags():
    """k8s runs the official image with these args; each is a TF Serving flag
    this server also takes, none one of its own."""
    import os

    import yaml

    from tests.serving_helpers import REPO_ROOT
    with open(os.path.join(REPO_ROOT, "k8s", "base", "tf-serving", "deployment.yaml")) as manifest:
        container = yaml.safe_load(manifest)["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["tensorflow_model_server"]
    values, given = flags.parse(container["args"])
    assert given and not [name for name in given if name.startswith(flags.OWN_PREFIX)]
    assert values["model_config_file"] == "/models/models.config"
