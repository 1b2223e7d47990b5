"""The model server under faults, as TF Serving behaves: a relative or wrong
base path, zero-padded versions, versions deleted or written out of order, a
busy port, images over the pixel limit or in no contract format. Real servers on loopback ports, real
SavedModels, the project's gRPC client."""
import base64
import io
import logging
import os
import shutil
import socket
import threading
import time
import zlib

import grpc
import pytest
import requests
from PIL import Image
from tensorflow_serving.apis import model_pb2

from components import contract
from serving.client import ClientOptions, PredictionClient
from serving.errors import ServingError
from serving.image_header import DEFAULT_MAX_IMAGE_PIXELS, ImageHeaderError, image_size
from serving.server import ModelServer, ServerOptions
from tests.serving_helpers import (
    LOOPBACK,
    MODEL,
    OTHER_MODEL,
    free_port,
    push,
    read_bytes,
    sample_images,
    server_options,
    start_server,
    wait_for,
)

IMAGES = sample_images()
FAST = ClientOptions(timeout_seconds=30, retries=0)


def state_of(client, version):
    try:
        return client.model_status(MODEL, version)[0][1]
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
        return None


def png_bytes(width, height, color=(200, 30, 30)):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def png_header_only(width, height):
    """A PNG whose header claims width x height and whose data is one empty row:
    what a decompression bomb looks like before it is decoded."""
    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))


# --- the model base path ---------------------------------------------------------------------

def test_a_relative_model_base_path_is_refused_as_tf_serving_refuses_it(tmp_path, exported_models, monkeypatch):
    push(exported_models[1], str(tmp_path / "serving_model"), MODEL, 1)
    monkeypatch.chdir(tmp_path)
    relative = os.path.join("serving_model", MODEL)
    with pytest.raises(ServingError) as caught:
        start_server(model_name=MODEL, model_base_path=relative)
    assert caught.value.message == (f"Expected model {MODEL} to have an absolute path or URI; "
                                    f"got base_path()={relative}")


def test_zero_padded_version_folders_are_versions(tmp_path, exported_models):
    shutil.copytree(exported_models[1], tmp_path / MODEL / "00000007")
    running = start_server(serving_root=str(tmp_path))
    try:
        with PredictionClient(f"{LOOPBACK}:{running.port}", FAST) as client:
            assert client.predict([read_bytes(IMAGES[0][0])], MODEL).version == 7
    finally:
        running.stop()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((LOOPBACK, port)) == 0


@pytest.mark.parametrize("layout, hint", [
    ("serving root", "it holds model folders"),
    ("version folder", "it is one version's SavedModel"),
    ("missing", "Could not find base path"),
])
def test_no_port_opens_until_the_model_has_a_version(tmp_path, exported_models, caplog, layout, hint):
    """TF Serving loads before it listens, and waits for as long as the
    model's base path holds no version; the log says why, and what to pass."""
    caplog.set_level(logging.WARNING, logger="serving.model_manager")
    version_dir = push(exported_models[1], str(tmp_path / "root"), OTHER_MODEL, 1)
    given = {"serving root": tmp_path / "root", "version folder": version_dir,
             "missing": tmp_path / "root" / MODEL}[layout]
    server = ModelServer(server_options(model_name=MODEL, model_base_path=str(given),
                                        file_system_poll_wait_seconds=0.1))
    starting = threading.Thread(target=server.start)
    starting.start()
    try:
        wait_for(lambda: hint in caplog.text, what="the warning")
        assert not _listening(server.options.port) and starting.is_alive()
        if layout == "missing":
            push(exported_models[1], str(tmp_path / "root"), MODEL, 3)
            starting.join(timeout=60)
            assert _listening(server.options.port)
            with PredictionClient(f"{LOOPBACK}:{server.port}", FAST) as client:
                assert client.predict([read_bytes(IMAGES[0][0])], MODEL).version == 3
    finally:
        server.stop()
        starting.join(timeout=60)


# --- versions on disk ------------------------------------------------------------------------

def test_a_deleted_version_is_unloaded_and_the_previous_one_served_without_a_failed_request(
        tmp_path, exported_models):
    push(exported_models[1], str(tmp_path), MODEL, 1)
    push(exported_models[2], str(tmp_path), MODEL, 2)
    running = start_server(serving_root=str(tmp_path), file_system_poll_wait_seconds=0.1)
    image = [read_bytes(IMAGES[0][0])]
    served, failures, stop = [], [], threading.Event()

    def keep_predicting():
        with PredictionClient(f"{LOOPBACK}:{running.port}", FAST) as client:
            while not stop.is_set():
                try:
                    served.append(client.predict(image, MODEL).version)
                except grpc.RpcError as error:
                    failures.append(f"{error.code().name}: {error.details()}")

    caller = threading.Thread(target=keep_predicting)
    try:
        with PredictionClient(f"{LOOPBACK}:{running.port}", FAST) as client:
            assert client.predict(image, MODEL).version == 2
            caller.start()
            shutil.rmtree(tmp_path / MODEL / "2")
            wait_for(lambda: served and served[-1] == 1, what="version 1 to serve again")
            stop.set()
            caller.join()
            assert failures == []
            assert state_of(client, 2) == "END" and state_of(client, 1) == "AVAILABLE"
            # With no version left on disk, nothing is served (TF Serving's behaviour).
            shutil.rmtree(tmp_path / MODEL / "1")
            wait_for(lambda: state_of(client, 1) == "END", what="version 1 to unload")
            with pytest.raises(grpc.RpcError) as caught:
                client.predict(image, MODEL)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        stop.set()
        running.stop()


def test_a_version_whose_files_arrive_out_of_order_is_retried_until_it_loads(tmp_path, exported_models):
    push(exported_models[1], str(tmp_path), MODEL, 1)
    running = start_server(serving_root=str(tmp_path), file_system_poll_wait_seconds=0.1,
                           max_num_load_retries=1, load_retry_interval_micros=100_000)
    try:
        with PredictionClient(f"{LOOPBACK}:{running.port}", FAST) as client:
            # saved_model.pb first, as a careless copy does: version 2 fails to load ...
            version_dir = tmp_path / MODEL / "2"
            version_dir.mkdir()
            shutil.copyfile(os.path.join(exported_models[2], "saved_model.pb"), version_dir / "saved_model.pb")
            wait_for(lambda: state_of(client, 2) == "END", what="version 2 to fail")
            assert client.model_status(MODEL, 2)[0][2]
            time.sleep(1.0)  # longer than the one retry allowed
            assert client.predict([read_bytes(IMAGES[0][0])], MODEL).version == 1
            # ... and loads once the rest of its files arrive.
            shutil.copytree(os.path.join(exported_models[2], "variables"), version_dir / "variables")
            wait_for(lambda: state_of(client, 2) == "AVAILABLE", what="version 2 to load after all")
            assert client.predict([read_bytes(IMAGES[0][0])], MODEL).version == 2
    finally:
        running.stop()


# --- ports -----------------------------------------------------------------------------------

def test_a_busy_grpc_port_is_refused(server, tmp_path):
    with pytest.raises(OSError, match=f"cannot listen for gRPC on {LOOPBACK}:{server.port}"):
        start_server(serving_root=str(tmp_path), port=server.port)
    with pytest.raises(OSError, match="cannot listen for REST"):
        start_server(serving_root=str(tmp_path), rest_api_port=server.rest_port)
    with PredictionClient(f"{LOOPBACK}:{server.port}", FAST) as client:
        for _ in range(8):  # every request reaches the one server that holds the model
            assert client.predict([read_bytes(IMAGES[0][0])], MODEL).version == 1


# --- images ----------------------------------------------------------------------------------

def test_the_default_pixel_limit_is_ingestions():
    from components.image_example_gen.image_checks import ImageLimits
    assert ServerOptions().max_image_pixels == DEFAULT_MAX_IMAGE_PIXELS == ImageLimits().max_pixels


def test_images_over_the_pixel_limit_are_invalid_argument_before_decoding(tmp_path, exported_models):
    push(exported_models[1], str(tmp_path), MODEL, 1)
    photo = read_bytes(IMAGES[0][0])  # 490x500 = 245,000 pixels
    running = start_server(serving_root=str(tmp_path), max_image_pixels=200_000)
    try:
        with PredictionClient(f"{LOOPBACK}:{running.port}", FAST) as client:
            assert client.predict([png_bytes(400, 400)], MODEL).predictions
            with pytest.raises(grpc.RpcError) as caught:
                client.predict([png_bytes(20, 20), photo], MODEL)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert caught.value.details() == (f"{contract.SERVING_INPUT_KEY}[1]: JPEG of 490x500 = 0.245 megapixels "
                                              "is over the limit of 0.2 megapixels")
        reply = requests.post(f"http://{LOOPBACK}:{running.rest_port}/v1/models/{MODEL}:predict",
                              json={"instances": [{"b64": base64.b64encode(photo).decode()}]})
        assert reply.status_code == 400 and "over the limit" in reply.json()["error"]
    finally:
        running.stop()


def test_a_decompression_bomb_is_refused_from_its_header(server):
    bomb = png_header_only(20_000, 20_000)  # 400 megapixels in 66 bytes
    with PredictionClient(f"{LOOPBACK}:{server.port}", FAST) as client:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            client.predict([bomb] * 4, MODEL)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "20000x20000 = 400 megapixels is over the limit of 50 megapixels" in caught.value.details()
        assert time.monotonic() - started < 5


@pytest.mark.parametrize("kind", ["BMP", "GIF", "random bytes", "text"])
def test_bytes_in_no_contract_format_are_invalid_argument(server, kind):
    if kind in ("BMP", "GIF"):
        buffer = io.BytesIO()
        Image.new("RGB", (300, 300), (10, 200, 10)).save(buffer, kind)
        data = buffer.getvalue()
    else:
        data = bytes(range(256)) * 4 if kind == "random bytes" else b"certainly not an image"
    with PredictionClient(f"{LOOPBACK}:{server.port}", FAST) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.predict([data], MODEL)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a JPEG or PNG image (first bytes: " in caught.value.details()
        assert "\n" not in caught.value.details()


def test_image_header_sizes():
    for path, _ in IMAGES[:20]:
        with Image.open(path) as image:
            assert image_size(read_bytes(path)) == ("JPEG", *image.size)
    assert image_size(png_bytes(31, 17)) == ("PNG", 31, 17)
    progressive = io.BytesIO()
    Image.new("RGB", (64, 48)).save(progressive, "JPEG", progressive=True)
    assert image_size(progressive.getvalue()) == ("JPEG", 64, 48)
    photo = read_bytes(IMAGES[0][0])
    for broken, reason in [(photo[:40], "truncated JPEG"), (b"\xff\xd8\xff\xda\x00\x02", "image data before"),
                           (png_bytes(4, 4)[:20], "corrupt PNG"), (b"", "0 bytes")]:
        with pytest.raises(ImageHeaderError, match=reason):
            image_size(broken)


def test_catsdogs_serve_refuses_a_relative_path_or_a_busy_port_in_one_line(server, tmp_path, capsys):
    from pipeline import cli
    model_folder = os.path.dirname(server.manager.resolve(model_pb2.ModelSpec(name=MODEL)).path)
    relative = os.path.relpath(model_folder)
    assert cli.main(["serve", f"--model_base_path={relative}", f"--port={free_port()}"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == ("catsdogs serve: Failed to start server. Error: Expected model default to have an absolute "
                     f"path or URI; got base_path()={relative}")
    assert cli.main(["serve", f"--model_base_path={model_folder}", f"--catsdogs_host={LOOPBACK}",
                     f"--port={server.port}", "--load_retry_interval_micros=0"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (f"catsdogs serve: Failed to start server. Error: cannot listen for gRPC on "
                     f"{LOOPBACK}:{server.port}: the port is in use or the address is not available")
