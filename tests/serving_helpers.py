"""Helpers of the serving tests: real sample JPEGs, model folders pushed the
way a pusher does, model configs, and servers on free loopback ports (the
fixtures built from them are in conftest.py)."""
import glob
import os
import shutil
import socket
import textwrap
import time

from components import contract
from pipeline import model_registry

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DIR = os.path.join(REPO_ROOT, "data", "sample")
LOOPBACK = "127.0.0.1"
MODEL = model_registry.get("scratch").served_name
OTHER_MODEL = model_registry.get("vgg16").served_name


def sample_images(split: str = contract.TEST_SPLIT):
    """(path, class name) of the shipped sample's images of a split."""
    paths = sorted(glob.glob(os.path.join(SAMPLE_DIR, split, "*", "*.jpg")))
    assert paths, f"no sample images under {SAMPLE_DIR}/{split}"
    return [(path, os.path.basename(os.path.dirname(path))) for path in paths]


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as image_file:
        return image_file.read()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def push(exported_dir: str, base_path: str, model_name: str, version: int) -> str:
    """Copies a SavedModel into base/name/version the way a pusher does: the
    variables and assets first, saved_model.pb last (the folder only becomes a
    version when saved_model.pb appears)."""
    target = os.path.join(base_path, model_name, str(version))
    os.makedirs(target)
    for entry in os.listdir(exported_dir):
        source = os.path.join(exported_dir, entry)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(target, entry))
    staging = os.path.join(target, "saved_model.pb.tmp")
    shutil.copyfile(os.path.join(exported_dir, "saved_model.pb"), staging)
    os.rename(staging, os.path.join(target, "saved_model.pb"))
    return target


def write_model_config(path: str, entries) -> str:
    """entries: (name, base_path, policy text) -> a models.config text proto."""
    configs = "".join(textwrap.dedent(f"""\
          config {{
            name: "{name}"
            base_path: "{base_path}"
            model_platform: "tensorflow"
            {policy}
          }}
        """) for name, base_path, policy in entries)
    with open(path, "w") as config_file:
        config_file.write("model_config_list {\n" + configs + "}\n")
    return path


def server_options(serving_root: str = "", model: str = MODEL, **overrides):
    """ServerOptions on free loopback ports; with serving_root, serving `model`
    from serving_root/model as --model_name/--model_base_path do."""
    from serving.server import ServerOptions
    options = dict(host=LOOPBACK, port=free_port(), rest_api_port=free_port(), file_system_poll_wait_seconds=0.2)
    if serving_root:
        options.update(model_name=model, model_base_path=os.path.abspath(os.path.join(serving_root, model)))
    options.update(overrides)
    return ServerOptions(**options)


def start_server(serving_root: str = "", model: str = MODEL, **overrides):
    """A started ModelServer (see server_options)."""
    from serving.server import ModelServer
    return ModelServer(server_options(serving_root, model, **overrides)).start()


def wait_for(condition, timeout=30.0, what="condition"):
    """Polls condition() until it is true; AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_until_available(client, model: str, version=None, timeout_seconds: float = 60.0,
                         poll_seconds: float = 0.1) -> int:
    """Blocks until a version of `model` (or that version) is AVAILABLE on the
    PredictionClient's server; returns it."""
    import grpc

    from serving.client import RETRYABLE
    deadline = time.monotonic() + timeout_seconds
    last_error = None
    while time.monotonic() < deadline:
        try:
            available = [v for v, state, _ in client.model_status(model, version) if state == "AVAILABLE"]
            if available:
                return max(available)
        except grpc.RpcError as error:
            if error.code() not in (grpc.StatusCode.NOT_FOUND,) + RETRYABLE:
                raise
            last_error = error
        time.sleep(poll_seconds)
    raise TimeoutError(f"{model} (version {version or 'any'}) not AVAILABLE at {client.target} "
                       f"after {timeout_seconds:.0f} s" + (f": {last_error.details()}" if last_error else ""))
