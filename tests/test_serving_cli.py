"""`catsdogs predict`, `catsdogs serve`, TLS and make run's measure_served_accuracy,
with real servers and real images."""
import datetime
import ipaddress
import json
import os
import signal
import subprocess
import sys

import grpc
import pytest
import requests
import tensorflow as tf

from components import contract
from pipeline import cli
from serving.client import ClientOptions, PredictionClient
from tests.serving_helpers import (
    LOOPBACK,
    MODEL,
    OTHER_MODEL,
    REPO_ROOT,
    SAMPLE_DIR,
    free_port,
    push,
    read_bytes,
    sample_images,
    start_server,
)

IMAGES = sample_images()


def test_predict_prints_file_class_and_probability(server, capsys):
    paths = [path for path, _ in IMAGES[:3]]
    assert cli.main(["predict", "--server", f"{LOOPBACK}:{server.port}", "--model", MODEL, *paths]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    with PredictionClient(f"{LOOPBACK}:{server.port}") as client:
        expected = client.predict_files(paths, MODEL).predictions
    assert len(lines) == 3
    for line, path, prediction in zip(lines, paths, expected):
        file_name, class_name, probability = line.split("\t")
        assert (file_name, class_name) == (path, prediction.class_name)
        assert float(probability) == pytest.approx(prediction.probability, abs=1e-4)


def test_predict_json_and_errors(server, capsys):
    target = f"{LOOPBACK}:{server.port}"
    path = IMAGES[0][0]
    assert cli.main(["predict", "--server", target, "--model", MODEL, "--version", "1", "--json", path]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["model"], document["version"]) == (MODEL, 1)
    assert document["predictions"][0]["file"] == path
    assert document["predictions"][0]["class"] in contract.CATS_VS_DOGS_CLASSES
    assert cli.main(["predict", "--server", target, "--model", "nope", path]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    assert cli.main(["predict", "--server", target, "--model", MODEL, "/no/such.jpg"]) == 2
    assert "/no/such.jpg" in capsys.readouterr().err


def _self_signed_certificate():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([
                       x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_tls_with_tf_serving_ssl_config(tmp_path, exported_models, capsys):
    key_pem, cert_pem = _self_signed_certificate()
    ssl_config = tmp_path / "ssl.config"
    ssl_config.write_text(f"server_key: {json.dumps(key_pem)}\nserver_cert: {json.dumps(cert_pem)}\n")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(cert_pem)
    push(exported_models[1], str(tmp_path / "models"), MODEL, 1)
    server_ = start_server(serving_root=str(tmp_path / "models"), ssl_config_file=str(ssl_config))
    try:
        target = f"localhost:{server_.port}"
        assert cli.main(["predict", "--server", target, "--model", MODEL, "--tls", "--ca-cert", str(ca_file),
                         IMAGES[0][0]]) == 0
        assert IMAGES[0][0] in capsys.readouterr().out
        with PredictionClient(target, ClientOptions(retries=0, timeout_seconds=5)) as plaintext:
            with pytest.raises(grpc.RpcError) as caught:
                plaintext.predict([read_bytes(IMAGES[0][0])], MODEL)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server_.stop()


def test_measure_served_accuracy_reports_each_models_accuracy(tmp_path, exported_models):
    from components.pusher.serving_layout import write_models_config
    from serving.served_accuracy import measure_served_accuracy
    push(exported_models[1], str(tmp_path), MODEL, 1)
    push(exported_models[2], str(tmp_path), OTHER_MODEL, 4)
    write_models_config(str(tmp_path))  # as the Pusher does after every push
    lines = []
    results = measure_served_accuracy(str(tmp_path), SAMPLE_DIR, batch_size=16, report=lines.append)
    assert sorted(results) == sorted([MODEL, OTHER_MODEL])
    assert results[OTHER_MODEL].version == 4
    for name, seed in ((MODEL, 1), (OTHER_MODEL, 2)):
        serve = tf.saved_model.load(exported_models[seed]).signatures[contract.SERVING_SIGNATURE]
        classes = serve(image_bytes=tf.constant([read_bytes(p) for p, _ in IMAGES]))[contract.CLASSES_KEY].numpy()
        expected = sum(c.decode() == label for c, (_, label) in zip(classes, IMAGES))
        assert (results[name].images, results[name].correct) == (len(IMAGES), expected)
    assert any("accuracy" in line and MODEL in line for line in lines)
    with pytest.raises(FileNotFoundError, match="no pushed versions"):
        measure_served_accuracy(str(tmp_path), SAMPLE_DIR, model_names=["absent_model"])
    with pytest.raises(FileNotFoundError, match="no models.config under"):
        measure_served_accuracy(str(tmp_path / "empty"), SAMPLE_DIR)
    write_models_config(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="no pushed model versions"):
        measure_served_accuracy(str(tmp_path / "empty"), SAMPLE_DIR)


@pytest.mark.slow
def test_catsdogs_serve_as_a_process(tmp_path, exported_models, capsys):
    """TF Serving's command line, as its docs and container use it; the server
    says on stderr when it listens, in TF Serving's words."""
    push(exported_models[1], str(tmp_path), MODEL, 1)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO_ROOT)
    port, rest_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "serve", f"--port={port}", f"--rest_api_port={rest_port}",
         f"--model_name={MODEL}", f"--model_base_path={tmp_path / MODEL}", f"--catsdogs_host={LOOPBACK}"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any("Exporting HTTP/REST API at" in line for line in lines):
            lines.append(process.stderr.readline())
            assert lines[-1], "".join(lines)
        assert f"Running gRPC ModelServer at {LOOPBACK}:{port} ..." in "".join(lines)
        assert requests.get(f"http://{LOOPBACK}:{rest_port}/v1/models/{MODEL}").json()[
            "model_version_status"][0]["state"] == "AVAILABLE"
        assert cli.main(["predict", "--server", f"{LOOPBACK}:{port}", "--model", MODEL, IMAGES[0][0]]) == 0
        assert IMAGES[0][0] in capsys.readouterr().out
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
