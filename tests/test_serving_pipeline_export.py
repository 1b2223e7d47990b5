"""The server serves what the pipeline's Trainers export
(components.training.export.export_model: Transform's graph + the book's
scratch convnet), unchanged, and answers like the SavedModel in-process."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from components import contract
from components.training.export import export_model
from components.training.models import build_scratch_model
from serving.client import PredictionClient
from tests import training_support
from tests.test_serving_support import (LOOPBACK, MODEL, push, read_bytes, sample_images,  # noqa: F401
                                        start_server)

IMAGES = sample_images()


@pytest.fixture(scope="module")
def trainer_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer_export")
    transform_dir = training_support.build_transform_graph(IMAGES[0][0], str(root / "transform"))
    tft_layer = tft.TFTransformOutput(transform_dir).transform_features_layer()
    return export_model(build_scratch_model(), tft_layer, training_support.RAW_FEATURE_SPEC,
                        list(contract.CATS_VS_DOGS_CLASSES), str(root / "export"))


@pytest.mark.slow
def test_a_trainer_export_is_served_like_it_runs_in_process(tmp_path, trainer_export):
    push(trainer_export, str(tmp_path), MODEL, 1)
    server = start_server(model_base_path=str(tmp_path))
    try:
        images = [read_bytes(path) for path, _ in IMAGES]
        with PredictionClient(f"{LOOPBACK}:{server.port}") as client:
            result = client.predict(images, MODEL)
            signatures = client.metadata(MODEL).signature_def
        serve = tf.saved_model.load(trainer_export).signatures[contract.SERVING_SIGNATURE]
        expected = serve(**{contract.SERVING_INPUT_KEY: tf.constant(images)})
        np.testing.assert_allclose([p.probabilities for p in result.predictions],
                                   expected[contract.PROBABILITIES_KEY].numpy(), rtol=1e-4, atol=1e-6)
        assert [p.class_name for p in result.predictions] == [
            name.decode() for name in expected[contract.CLASSES_KEY].numpy()]
        assert {contract.SERVING_SIGNATURE, contract.EXAMPLES_SIGNATURE} <= set(signatures)
    finally:
        server.stop()
