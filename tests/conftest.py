"""Fixtures shared by several test modules (helpers: serving_helpers.py,
marker_model.py, evidence_models.py, examples_artifacts.py, image_files.py)."""
import pytest

from components import contract
from tests.serving_helpers import MODEL, push, sample_images, start_server


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

    from benchmarks import trainer_inputs
    from components.training.export import export_model
    root = tmp_path_factory.mktemp("pipeline_export")
    transform_dir = trainer_inputs.build_transform_graph(sample_images()[0][0], str(root / "transform"))
    inputs = keras.Input((contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, contract.IMAGE_CHANNELS))
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(features))
    return export_model(model, tft.TFTransformOutput(transform_dir).transform_features_layer(),
                        trainer_inputs.RAW_FEATURE_SPEC, list(contract.CATS_VS_DOGS_CLASSES), str(root / "export"))


@pytest.fixture(scope="session")
def pipeline_inputs(tmp_path_factory):
    """(examples, transform graph) for the Trainers' run_fn: a few images per class of
    data/sample in ImageExampleGen's layout, and Transform's graph of the project's
    preprocessing_fn."""
    from benchmarks import trainer_inputs
    from tests.examples_artifacts import TRAINING_IMAGES_PER_CLASS
    from tests.image_files import SAMPLE_DIR
    root = tmp_path_factory.mktemp("training_inputs")
    examples = trainer_inputs.write_examples(SAMPLE_DIR, str(root / "examples"),
                                             limit_per_class=TRAINING_IMAGES_PER_CLASS)
    first = trainer_inputs.image_files(SAMPLE_DIR, contract.TRAIN_SPLIT, 1)["cats"][0]
    transform = trainer_inputs.build_transform_graph(first, str(root / "transform"))
    return examples, transform


@pytest.fixture
def server(tmp_path, exported_models):
    """This project's server with MODEL version 1 under a polled base path."""
    push(exported_models[1], str(tmp_path), MODEL, 1)
    running = start_server(serving_root=str(tmp_path), load_retry_interval_micros=100_000)
    yield running
    running.stop()
