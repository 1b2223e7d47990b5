"""Shared pieces of the serving tests: real SavedModels honouring the serving
contract, real sample JPEGs, and servers on free loopback ports. (A module of
helpers, not of tests; the serving test modules import from it.)"""
import glob
import os
import shutil
import socket
import textwrap

import pytest

from components import contract

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DIR = os.path.join(REPO_ROOT, "data", "sample")
LOOPBACK = "127.0.0.1"
MODEL = contract.SCRATCH_MODEL_NAME
OTHER_MODEL = contract.VGG16_MODEL_NAME


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


@pytest.fixture(scope="session")
def exported_models(tmp_path_factory):
    """Two real SavedModels with the contract's signatures, different weights:
    {seed: export dir}."""
    from tests.reference_model import TinyClassifier, export_reference_model
    root = tmp_path_factory.mktemp("exports")
    return {seed: export_reference_model(str(root / f"seed{seed}"), TinyClassifier(2, seed))
            for seed in (1, 2)}


@pytest.fixture(scope="session")
def pipeline_export(tmp_path_factory):
    """What the Trainers export (components.training.export.export_model): the
    real Transform graph of the project's preprocessing_fn in front of a tiny
    untrained Keras 3 convnet ending, like the book's, in one sigmoid unit."""
    import keras
    import tensorflow_transform as tft

    from components.training.export import export_model
    from tests import training_support
    root = tmp_path_factory.mktemp("pipeline_export")
    transform_dir = training_support.build_transform_graph(sample_images()[0][0], str(root / "transform"))
    inputs = keras.Input((contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, contract.IMAGE_CHANNELS))
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(features))
    return export_model(model, tft.TFTransformOutput(transform_dir).transform_features_layer(),
                        training_support.RAW_FEATURE_SPEC, list(contract.CATS_VS_DOGS_CLASSES), str(root / "export"))


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


def start_server(**overrides):
    from serving.server import ModelServer, ServerOptions
    options = dict(host=LOOPBACK, port=0, rest_api_port=0, file_system_poll_wait_seconds=0.2)
    options.update(overrides)
    return ModelServer(ServerOptions(**options)).start()


@pytest.fixture
def server(tmp_path, exported_models):  # noqa: F811
    """This project's server with MODEL version 1 under a polled base path."""
    push(exported_models[1], str(tmp_path), MODEL, 1)
    running = start_server(model_base_path=str(tmp_path))
    yield running
    running.stop()
