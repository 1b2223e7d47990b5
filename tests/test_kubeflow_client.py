"""`catsdogs upload` / `catsdogs submit` against a fake KFP API server on a loopback port.

No KFP backend can run here; the fake speaks the KFP v2beta1 REST API that
kfp.Client calls (healthz, pipeline lookup, multipart upload / upload_version,
experiment lookup / creation, run creation), records every request, and can
answer with the error bodies the real API server sends.
"""
import email
import email.policy
import http.server
import json
import socket
import threading
import urllib.parse

import pytest
import yaml

from pipeline import cli

PIPELINE_NAME = "cats-vs-dogs"


def _package(tmp_path, parameters=None, pipeline_root="gs://bucket/pipeline_root"):
    """A small but real KFP v2 PipelineSpec document (what `catsdogs compile` writes)."""
    spec = {
        "pipelineInfo": {"name": PIPELINE_NAME},
        "schemaVersion": "2.1.0",
        "sdkVersion": "tfx-1.21.0",
        "root": {
            "inputDefinitions": {"parameters": parameters or {
                "data_root": {"parameterType": "STRING", "defaultValue": "gs://b/data", "isOptional": True},
                "scratch_epochs": {"parameterType": "NUMBER_INTEGER", "defaultValue": 100, "isOptional": True},
                "min_accuracy": {"parameterType": "NUMBER_DOUBLE", "defaultValue": 0.7, "isOptional": True},
            }},
            "dag": {"tasks": {}},
        },
        "components": {},
        "deploymentSpec": {"executors": {}},
    }
    if pipeline_root:
        spec["defaultPipelineRoot"] = pipeline_root
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {
        "Trainer_executor": {"nodeSelector": {"labels": {"pool": "gpu"}}}}}}}}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump_all([spec, platform]))
    return str(path)


class FakeKfpApi:
    """In-memory KFP API: pipelines, versions, experiments, runs; every request recorded."""

    def __init__(self):
        self.requests = []
        self.pipelines = {}  # id -> {"display_name", "versions": [...], "package": bytes}
        self.experiments = {}
        self.runs = {}
        self.fail = {}  # (method, path prefix) -> (status, body)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def paths(self, method=None):
        return [r["path"] for r in self.requests if method in (None, r["method"])]

    def _handler(self):
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, payload):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self):
                url = urllib.parse.urlsplit(self.path)
                query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                record = {"method": self.command, "path": url.path, "query": query,
                          "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                api.requests.append(record)
                for (method, prefix), (status, payload) in api.fail.items():
                    if self.command == method and url.path.startswith(prefix):
                        return self._reply(status, payload)
                status, payload = api.route(self.command, url.path, query, record)
                self._reply(status, payload)

            do_GET = do_POST = do_DELETE = _handle

        return Handler

    def route(self, method, path, query, record):
        if path == "/apis/v2beta1/healthz":
            # kfp_server_api's V2beta1GetHealthzResponse: multi_user, pipeline_store
            return 200, {"multi_user": False, "pipeline_store": "database"}
        if method == "GET" and path == "/apis/v2beta1/pipelines":
            name = _filter_value(query)
            found = [{"pipeline_id": i, "display_name": p["display_name"]}
                     for i, p in self.pipelines.items() if p["display_name"] == name]
            return 200, {"pipelines": found, "total_size": len(found)} if found else {}
        if method == "POST" and path == "/apis/v2beta1/pipelines/upload":
            package = _multipart_file(record)
            pipeline_id = f"pipeline-{len(self.pipelines) + 1}"
            self.pipelines[pipeline_id] = {"display_name": query["name"], "versions": [query["name"]],
                                           "package": package}
            return 200, {"pipeline_id": pipeline_id, "display_name": query["name"]}
        if method == "POST" and path == "/apis/v2beta1/pipelines/upload_version":
            pipeline = self.pipelines.get(query.get("pipelineid"))
            if pipeline is None:
                return 404, {"error": "pipeline not found", "code": 5, "message": "pipeline not found"}
            pipeline["versions"].append(query["name"])
            pipeline["package"] = _multipart_file(record)
            return 200, {"pipeline_id": query["pipelineid"],
                         "pipeline_version_id": f"version-{len(pipeline['versions'])}",
                         "display_name": query["name"]}
        if method == "GET" and path == "/apis/v2beta1/experiments":
            name = _filter_value(query)
            found = [e for e in self.experiments.values() if e["display_name"] == name]
            return 200, {"experiments": found, "total_size": len(found)} if found else {}
        if method == "POST" and path == "/apis/v2beta1/experiments":
            experiment = json.loads(record["body"])
            experiment["experiment_id"] = f"experiment-{len(self.experiments) + 1}"
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment
        if method == "POST" and path == "/apis/v2beta1/runs":
            run = json.loads(record["body"])
            run["run_id"] = f"run-{len(self.runs) + 1}"
            self.runs[run["run_id"]] = run
            return 200, run
        return 404, {"error": f"no route {method} {path}", "code": 5, "message": "Not Found"}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _filter_value(query):
    predicates = json.loads(query["filter"])["predicates"]
    assert predicates[0]["key"] == "display_name"
    return predicates[0]["stringValue"]


def _multipart_file(record):
    """The `uploadfile` part of a multipart/form-data body, as the KFP API server reads it."""
    head = f"Content-Type: {record['headers']['content-type']}\r\n\r\n".encode()
    message = email.message_from_bytes(head + record["body"], policy=email.policy.HTTP)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "uploadfile":
            return part.get_payload(decode=True)
    raise AssertionError("multipart body without an uploadfile part")


@pytest.fixture
def kfp_api():
    with FakeKfpApi() as api:
        yield api


def test_upload_creates_pipeline_then_a_new_version(kfp_api, tmp_path, capsys):
    package = _package(tmp_path)
    assert cli.main(["upload", "--host", kfp_api.host, "--package", package, "--token", "s3cret"]) == 0
    first = json.loads(_json_tail(capsys))
    assert first["created"] == "pipeline"
    stored = kfp_api.pipelines[first["pipeline_id"]]
    assert stored["display_name"] == PIPELINE_NAME
    with open(package, "rb") as f:
        assert stored["package"] == f.read()
    uploads = [r for r in kfp_api.requests if r["path"] == "/apis/v2beta1/pipelines/upload"]
    assert uploads[0]["headers"]["authorization"] == "Bearer s3cret"

    assert cli.main(["upload", "--host", kfp_api.host, "--package", package,
                     "--version", "v2-gpu", "--token", "s3cret"]) == 0
    second = json.loads(_json_tail(capsys))
    assert second["created"] == "version" and second["pipeline_id"] == first["pipeline_id"]
    assert kfp_api.pipelines[first["pipeline_id"]]["versions"] == [PIPELINE_NAME, "v2-gpu"]
    assert "/apis/v2beta1/pipelines/upload_version" in kfp_api.paths("POST")


def test_submit_creates_experiment_and_run_with_typed_parameters(kfp_api, tmp_path, capsys):
    package = _package(tmp_path)
    argv = ["submit", "--host", kfp_api.host, "--package", package, "--experiment", "nightly",
            "--param", "scratch_epochs=3", "--param", "min_accuracy=0.8",
            "--param", "data_root=gs://other/data", "--service-account", "catsdogs-pipeline",
            "--run-name", "smoke"]
    assert cli.main(argv) == 0
    result = json.loads(_json_tail(capsys))
    run = kfp_api.runs[result["run_id"]]
    assert run["display_name"] == "smoke"
    assert kfp_api.experiments[run["experiment_id"]]["display_name"] == "nightly"
    assert run["runtime_config"]["parameters"] == {
        "scratch_epochs": 3, "min_accuracy": 0.8, "data_root": "gs://other/data"}
    # The API server reads only the run's root (the package's default is for the UI).
    assert run["runtime_config"]["pipeline_root"] == "gs://bucket/pipeline_root"
    assert run["service_account"] == "catsdogs-pipeline"
    assert run["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == PIPELINE_NAME
    assert run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]
    # Experiment lookup happens before creation, and a second submit reuses it.
    assert cli.main(argv) == 0
    assert len(kfp_api.experiments) == 1 and len(kfp_api.runs) == 2


def test_submit_pipeline_root_overrides_the_package_and_is_checked(kfp_api, tmp_path, capsys):
    package = _package(tmp_path)
    assert cli.main(["submit", "--host", kfp_api.host, "--package", package,
                     "--pipeline-root", "gs://other/root"]) == 0
    run = kfp_api.runs[json.loads(_json_tail(capsys))["run_id"]]
    assert run["runtime_config"]["pipeline_root"] == "gs://other/root"
    assert cli.main(["submit", "--host", kfp_api.host, "--package", package,
                     "--pipeline-root", "minio://mlpipeline/v2/artifacts"]) == 2
    assert "no minio:// file system" in capsys.readouterr().err
    assert len(kfp_api.runs) == 1


def test_submit_without_any_root_warns_what_the_backend_will_do(kfp_api, tmp_path, capsys):
    package = _package(tmp_path, pipeline_root=None)
    assert cli.main(["submit", "--host", kfp_api.host, "--package", package]) == 0
    assert "minio://mlpipeline/v2/artifacts, which TFX cannot write" in capsys.readouterr().err
    run = next(iter(kfp_api.runs.values()))
    assert not run.get("runtime_config", {}).get("pipeline_root")


def test_submit_rejects_unknown_or_mistyped_parameters_before_calling_kfp(kfp_api, tmp_path, capsys):
    package = _package(tmp_path)
    assert cli.main(["submit", "--host", kfp_api.host, "--package", package,
                     "--param", "epochs=3"]) == 2
    assert "unknown pipeline parameter 'epochs'" in capsys.readouterr().err
    assert cli.main(["submit", "--host", kfp_api.host, "--package", package,
                     "--param", "scratch_epochs=many"]) == 2
    assert "is not a number_integer" in capsys.readouterr().err
    assert kfp_api.requests == []


def test_server_rejection_is_reported_with_its_message(kfp_api, tmp_path, capsys):
    message = "Failed to create a pipeline. invalid pipeline spec: unknown executor"
    kfp_api.fail[("POST", "/apis/v2beta1/pipelines/upload")] = (
        400, {"error": message, "code": 3, "message": message})
    assert cli.main(["upload", "--host", kfp_api.host, "--package", _package(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "rejected the upload" in err and "HTTP 400" in err and "unknown executor" in err

    kfp_api.fail[("POST", "/apis/v2beta1/runs")] = (
        403, {"error": "denied", "code": 7, "message": "User cannot create runs in namespace team-a"})
    assert cli.main(["submit", "--host", kfp_api.host, "--package", _package(tmp_path),
                     "--namespace", "team-a"]) == 1
    err = capsys.readouterr().err
    assert "rejected the run" in err and "HTTP 403" in err and "team-a" in err


def test_unreachable_host_fails_fast_and_clearly(tmp_path, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert cli.main(["submit", "--host", f"http://127.0.0.1:{port}", "--package",
                     _package(tmp_path), "--health-timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach KFP at http://127.0.0.1:{port}" in err


def test_login_page_or_auth_error_is_named(kfp_api, tmp_path, capsys):
    kfp_api.fail[("GET", "/apis/v2beta1/healthz")] = (401, {"error": "Jwt is missing"})
    assert cli.main(["upload", "--host", kfp_api.host, "--package", _package(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "--token" in err


def test_missing_host_and_missing_package_are_named(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KFP_HOST", raising=False)
    assert cli.main(["upload", "--package", _package(tmp_path)]) == 2
    assert "no KFP host" in capsys.readouterr().err
    assert cli.main(["submit", "--host", "http://127.0.0.1:1",
                     "--package", str(tmp_path / "nope.yaml")]) == 2
    assert "catsdogs compile" in capsys.readouterr().err


def _json_tail(capsys):
    """The JSON document the command printed last (kfp.Client prints links before it)."""
    out = capsys.readouterr().out
    return out[out.index("{"):]


def test_a_login_page_instead_of_the_api_is_named(tmp_path, capsys):
    """A proxy's HTML login page answers 200: not JSON, so not the KFP API."""
    class LoginPage(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802 (http.server's name)
            body = b"<html><body>Sign in</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LoginPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"http://127.0.0.1:{server.server_address[1]}"
        assert cli.main(["upload", "--host", host, "--package", _package(tmp_path)]) == 1
    finally:
        server.shutdown()
    assert "did not answer JSON" in capsys.readouterr().err
