"""TF Serving's REST API on this project's server: real HTTP on a loopback port."""
import base64
import json
import os

import numpy as np
import pytest
import requests

from components import contract
from tests.serving_helpers import (
    LOOPBACK,
    MODEL,
    REPO_ROOT,
    push,
    read_bytes,
    sample_images,
    start_server,
    write_model_config,
)

IMAGES = sample_images()


@pytest.fixture
def rest(tmp_path, exported_models):
    push(exported_models[1], str(tmp_path), MODEL, 1)
    push(exported_models[2], str(tmp_path), MODEL, 2)
    config = write_model_config(str(tmp_path / "models.config"),
                                [(MODEL, str(tmp_path / MODEL), "model_version_policy { all {} }")])
    server = start_server(model_config_file=config, max_request_bytes=8 * 1024 * 1024,
                          monitoring_config_file=os.path.join(REPO_ROOT, "serving", "configs", "monitoring.config"))
    yield f"http://{LOOPBACK}:{server.rest_port}"
    server.stop()


def b64(path):
    return {"b64": base64.b64encode(read_bytes(path)).decode("ascii")}


def test_predict_row_format_with_b64_instances(rest):
    paths = [path for path, _ in IMAGES[:4]]
    reply = requests.post(f"{rest}/v1/models/{MODEL}:predict", json={"instances": [b64(p) for p in paths]})
    assert reply.status_code == 200, reply.text
    predictions = reply.json()["predictions"]
    assert len(predictions) == 4
    for prediction in predictions:
        assert prediction[contract.CLASSES_KEY] in contract.CATS_VS_DOGS_CLASSES
        assert sum(prediction[contract.PROBABILITIES_KEY]) == pytest.approx(1.0, abs=1e-5)
        assert prediction[contract.CLASS_IDS_KEY] == int(np.argmax(prediction[contract.PROBABILITIES_KEY]))


def test_named_instances_columnar_inputs_and_versions_agree(rest):
    path = IMAGES[7][0]
    row = requests.post(f"{rest}/v1/models/{MODEL}/versions/1:predict",
                        json={"instances": [{contract.SERVING_INPUT_KEY: b64(path)}]}).json()
    columnar = requests.post(f"{rest}/v1/models/{MODEL}/versions/1:predict",
                             json={"inputs": {contract.SERVING_INPUT_KEY: [b64(path)]}}).json()
    latest = requests.post(f"{rest}/v1/models/{MODEL}:predict", json={"inputs": [b64(path)]}).json()
    assert row["predictions"][0][contract.PROBABILITIES_KEY] == columnar["outputs"][contract.PROBABILITIES_KEY][0]
    assert latest["outputs"][contract.PROBABILITIES_KEY][0] != columnar["outputs"][contract.PROBABILITIES_KEY][0]


def test_status_and_metadata(rest):
    status = requests.get(f"{rest}/v1/models/{MODEL}/versions/2").json()
    assert status["model_version_status"] == [
        {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]
    assert len(requests.get(f"{rest}/v1/models/{MODEL}").json()["model_version_status"]) == 2
    assert requests.get(f"{rest}/v1/models/no_such_model").status_code == 404
    metadata = requests.get(f"{rest}/v1/models/{MODEL}/versions/2/metadata").json()
    assert metadata["model_spec"]["version"] == "2"
    serving = metadata["metadata"]["signature_def"]["signature_def"][contract.SERVING_SIGNATURE]
    assert serving["inputs"][contract.SERVING_INPUT_KEY]["dtype"] == "DT_STRING"


@pytest.mark.parametrize("path, body, status", [
    ("/v1/models/no_such_model:predict", {"instances": []}, 404),
    (f"/v1/models/{MODEL}/versions/9:predict", {"instances": []}, 404),
    (f"/v1/models/{MODEL}:predict", {"instances": [{"b64": "%%% not base64"}]}, 400),
    (f"/v1/models/{MODEL}:predict", {"instances": [{"b64": base64.b64encode(b"no image").decode()}]}, 400),
    (f"/v1/models/{MODEL}:predict", {"instances": [{"b64": ""}]}, 400),
    (f"/v1/models/{MODEL}:predict", {"instances": [1.5, 2.5]}, 400),
    (f"/v1/models/{MODEL}:predict", {"neither": 1}, 400),
    (f"/v1/models/{MODEL}:predict", b"{not json", 400),
    (f"/v1/models/{MODEL}:explain", {"instances": []}, 400),  # "Malformed request", as TF Serving says
])
def test_errors_carry_tf_serving_http_codes_and_a_message(rest, path, body, status):
    if isinstance(body, bytes):
        reply = requests.post(rest + path, data=body)
    else:
        reply = requests.post(rest + path, json=body)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]
    assert requests.post(f"{rest}/v1/models/{MODEL}:predict", json={"instances": [b64(IMAGES[0][0])]}).ok


def test_request_over_the_limit_is_429_and_the_server_carries_on(rest):
    body = json.dumps({"instances": [{"b64": base64.b64encode(os.urandom(20 * 1024 * 1024)).decode()}]})
    reply = requests.post(f"{rest}/v1/models/{MODEL}:predict", data=body)
    assert reply.status_code == 429 and "over the limit" in reply.json()["error"]
    assert requests.post(f"{rest}/v1/models/{MODEL}:predict", json={"instances": [b64(IMAGES[0][0])]}).ok


def test_prometheus_metrics_count_requests_by_outcome(rest):
    requests.post(f"{rest}/v1/models/{MODEL}:predict", json={"instances": [b64(IMAGES[0][0])]})
    requests.post(f"{rest}/v1/models/{MODEL}:predict", json={"instances": [{"b64": ""}]})
    text = requests.get(f"{rest}/monitoring/prometheus/metrics").text
    assert f'model_name="{MODEL}",API="predict",entrypoint="REST",status="OK"}} 1' in text
    assert f'model_name="{MODEL}",API="predict",entrypoint="REST",status="INVALID_ARGUMENT"}} 1' in text
    assert ":tensorflow:serving:request_latency_bucket" in text
