"""The model server under faults, as TF Serving behaves: a relative or wrong
base path, versions deleted or written out of order, a busy port, images over
the pixel limit or in no contract format. Real servers on loopback ports, real
SavedModels, the project's gRPC client."""
import base64
import io
import logging
import os
import shutil
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
from serving.image_header import DEFAULT_MAX_IMAGE_PIXELS, ImageHeaderError, image_size
from serving.server import ModelServer, ServerOptions
from tests.serving_helpers import LOOPBACK, MODEL, push, read_bytes, sample_images, start_server, wait_for

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


# --- the serving root ------------------------------------------------------------------------

def test_a_relative_model_base_path_serves_its_models(tmp_path, exported_models, monkeypatch):
    push(exported_models[1], str(tmp_path / "serving_model"), MODEL, 1)
    monkeypatch.chdir(tmp_path)
    running = start_server(model_base_path="serving_model")
    try:
        with PredictionClient(f"{LOOPBACK}:{running.port}", FAST) as client:
            assert client.predict([read_bytes(IMAGES[0][0])], MODEL).version == 1
    finally:
        running.stop()


@pytest.mark.parametrize("layout, message", [
    ("missing", "does not exist"),
    ("model folder", "holds version folders (1): it is one model's folder, not the serving root"),
    ("version folder", "is one SavedModel (a version folder), not the serving root"),
])
def test_a_base_path_that_is_not_a_serving_root_is_refused_at_start(tmp_path, exported_models,
                                                                   layout, message):
    version_dir = push(exported_models[1], str(tmp_path / "root"), MODEL, 1)
    given = {"missing": tmp_path / "no_such_folder", "model folder": tmp_path / "root" / MODEL,
             "version folder": version_dir}[layout]
    with pytest.raises(ValueError, match="model base path") as caught:
        ModelServer(ServerOptions(model_base_path=str(given), host=LOOPBACK, port=0, rest_api_port=None))
    assert message in str(caught.value)
    if layout != "missing":
        assert f"Pass {tmp_path / 'root'}" in str(caught.value)


def test_models_without_versions_are_reported_at_start(tmp_path, exported_models, caplog):
    caplog.set_level(logging.WARNING, logger="serving.model_manager")
    empty = start_server(model_base_path=str(tmp_path), file_system_poll_wait_seconds=0)
    empty.stop()
    assert f"no models under {tmp_path}" in caplog.text
    caplog.clear()
    os.makedirs(tmp_path / contract.VGG16_MODEL_NAME)
    push(exported_models[1], str(tmp_path), MODEL, 1)
    caplog.set_level(logging.INFO, logger="serving.server")
    running = start_server(model_base_path=str(tmp_path), file_system_poll_wait_seconds=0)
    running.stop()
    assert f"model {contract.VGG16_MODEL_NAME}: no version under" in caplog.text
    assert f"serving {MODEL} (version 1), {contract.VGG16_MODEL_NAME} (no version yet)" in caplog.text


# --- versions on disk ------------------------------------------------------------------------

def test_a_deleted_version_is_unloaded_and_the_previous_one_served_without_a_failed_request(
        tmp_path, exported_models):
    push(exported_models[1], str(tmp_path), MODEL, 1)
    push(exported_models[2], str(tmp_path), MODEL, 2)
    running = start_server(model_base_path=str(tmp_path), file_system_poll_wait_seconds=0.1)
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
    running = start_server(model_base_path=str(tmp_path), file_system_poll_wait_seconds=0.1,
                           max_num_load_retries=1)
    try:
        with PredictionClient(f"{LOOPBACK}:{running.port}", FAST) as client:
            # saved_model.pb first, as a careless copy does: version 2 fails to load ...
            version_dir = tmp_path / MODEL / "2"
            version_dir.mkdir()
            shutil.copyfile(os.path.join(exported_models[2], "saved_model.pb"), version_dir / "saved_model.pb")
            wait_for(lambda: state_of(client, 2) == "END", what="version 2 to fail")
            assert "Failed to load" in client.model_status(MODEL, 2)[0][2]
            time.sleep(1.0)  # longer than the retries allowed at a fixed pace
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
        ModelServer(ServerOptions(model_base_path=str(tmp_path), host=LOOPBACK, port=server.port,
                                  rest_api_port=None))
    with pytest.raises(OSError, match="cannot listen for REST"):
        ModelServer(ServerOptions(model_base_path=str(tmp_path), host=LOOPBACK, port=0,
                                  rest_api_port=server.rest_port))
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
    running = start_server(model_base_path=str(tmp_path), max_image_pixels=200_000)
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


def test_catsdogs_serve_refuses_a_model_folder_or_a_busy_port_in_one_line(server, tmp_path, capsys):
    from pipeline import cli
    model_folder = os.path.dirname(server.manager.resolve(model_pb2.ModelSpec(name=MODEL)).path)
    assert cli.main(["serve", "--model-base-path", model_folder, "--port", "0", "--rest-api-port", "-1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("catsdogs serve: model base path") and "\n" not in error
    assert cli.main(["serve", "--model-base-path", str(tmp_path), "--host", LOOPBACK,
                     "--port", str(server.port), "--rest-api-port", "-1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"catsdogs serve: cannot listen for gRPC on {LOOPBACK}:{server.port}: "
                     "the port is in use or the address is not available")
