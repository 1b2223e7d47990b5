"""What the Kubernetes probes of k8s/base/tf-serving/deployment.yaml see while
one model has never been pushed (its scratch convnet missed its threshold) and
the other has a version: the local server, on the same model layout, with the
same monitoring config and the same status and metadata URLs as TF Serving.

The probes must answer 200 (the pod serves the pushed model) although every
URL naming the unpushed model answers 404 for as long as it has no version."""
import os
import socket

import pytest
import requests
import yaml

from components.pusher import serving_layout
from pipeline import model_registry
from tests.serving_helpers import LOOPBACK, REPO_ROOT, push, start_server

DEPLOYMENT = os.path.join(REPO_ROOT, "k8s", "base", "tf-serving", "deployment.yaml")
MONITORING_CONFIG = os.path.join(REPO_ROOT, "k8s", "base", "tf-serving", "config", "monitoring.config")
UNPUSHED, PUSHED = model_registry.get("scratch").served_name, model_registry.get("vgg16").served_name


def manifest_container():
    with open(DEPLOYMENT) as manifest:
        deployment = yaml.safe_load(manifest)
    return deployment["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture
def one_model_unpushed(tmp_path, exported_models):
    """The serving volume after a first run that blessed VGG16 only, served
    from the Pusher's models.config as the cluster's tensorflow_model_server is."""
    os.makedirs(tmp_path / UNPUSHED)
    push(exported_models[1], str(tmp_path), PUSHED, 1)
    assert serving_layout.write_models_config(str(tmp_path)) == [PUSHED]
    served = start_server(model_config_file=str(tmp_path / serving_layout.MODELS_CONFIG_FILE),
                          monitoring_config_file=MONITORING_CONFIG)
    yield served
    served.stop()


def test_probes_answer_while_a_model_has_no_version(one_model_unpushed):
    server = one_model_unpushed
    container = manifest_container()
    args = dict(a.lstrip("-").split("=", 1) for a in container["args"])
    # The manifest's ports, by name, as this server bound them.
    local_port = {int(args["port"]): server.port, int(args["rest_api_port"]): server.rest_port}
    ports = {p["name"]: local_port[p["containerPort"]] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container[probe]
        if "httpGet" in spec:
            url = f"http://{LOOPBACK}:{ports[spec['httpGet']['port']]}{spec['httpGet']['path']}"
            assert requests.get(url, timeout=5).status_code == 200, f"{probe}: {url}"
        else:
            with socket.create_connection((LOOPBACK, ports[spec["tcpSocket"]["port"]]), timeout=5):
                pass

    def get(path):
        return requests.get(f"http://{LOOPBACK}:{server.rest_port}{path}", timeout=5)

    # Every URL naming the unpushed model is 404, so no probe may use one.
    for path in (f"/v1/models/{UNPUSHED}", f"/v1/models/{UNPUSHED}/metadata"):
        reply = get(path)
        assert reply.status_code == 404 and UNPUSHED in reply.json()["error"], path
    assert get(f"/v1/models/{PUSHED}").json()["model_version_status"][0]["state"] == "AVAILABLE"
    assert get(f"/v1/models/{PUSHED}/metadata").status_code == 200
