"""The data contract: names every stage of the pipeline agrees on.

Ingestion writes these feature keys, Transform reads them, the Trainers export
signatures with these tensor names, TFMA and the serving client rely on them.
Import from here; never repeat the strings.
"""

IMAGE_KEY = "image_raw"
"""bytes: the original file's bytes, unchanged (JPEG or PNG)."""

LABEL_KEY = "label"
"""int64: index of the class in the sorted class names."""

FILENAME_KEY = "filename"
"""bytes: the file's path relative to its split folder, e.g. b"dogs/dog.7.jpg"."""

TRANSFORMED_IMAGE_KEY = "image"
"""float32 [height, width, channels] in [0, 1]: Transform's output, the model input."""

SPLITS = ("train", "validation", "test")
TRAIN_SPLIT, EVAL_SPLIT, TEST_SPLIT = SPLITS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

CLASS_NAMES_FILE = "class_names.json"
"""Written into the Examples artifact by ImageExampleGen: the sorted class names."""

# The book's data set; real class names always come from the folders (sorted).
CATS_VS_DOGS_CLASSES = ("cats", "dogs")

IMAGE_HEIGHT = 150
IMAGE_WIDTH = 150
IMAGE_CHANNELS = 3

# Serving signatures.
SERVING_SIGNATURE = "serving_default"
SERVING_INPUT_KEY = "image_bytes"
"""tf.string [None]: raw JPEG/PNG bytes, one image per element."""
EXAMPLES_SIGNATURE = "serving_examples"
"""Takes serialized tf.Example (for TFMA); never the default signature."""
EXAMPLES_INPUT_KEY = "examples"
PROBABILITIES_KEY = "probabilities"
"""float32 [None, n_classes]."""
CLASSES_KEY = "classes"
"""tf.string [None]: the predicted class name."""
CLASS_IDS_KEY = "class_ids"
"""int64 [None]: the predicted class index."""


POSITIVE_PROBABILITY_KEY = "probability"
"""float32 [None]: P(class index 1). Only in the tf.Example signature of
two-class models, for TFMA's binary metrics (label 1 = the second sorted class)."""

KERAS_MODEL_PATH = "keras/model.keras"
"""Inside every exported SavedModel directory: the trained Keras 3 model, for
explanations (Grad-CAM needs its layers). TF Serving ignores the folder."""

KERAS_CLASS_NAMES_PATH = "keras/class_names.json"
"""Beside the Keras model: its class names in label order (JSON list)."""

TRAINING_REPORT_DIR = "training_report"
"""Inside the Trainer's model_run artifact: curves and augmentation grids (PNG)."""
TRAINING_HISTORY_FILE = "history.json"
"""In TRAINING_REPORT_DIR: the per-epoch history, hyper-parameters and kept epoch."""

# Ingestion's limits (ImageExampleGen; serving applies the same pixel limit).
DEFAULT_MAX_REJECTED_FRACTION = 0.01
"""Ingestion fails when more than this share of the image files is rejected."""
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
"""width x height read from an image's header before decoding (a decompression bomb's guard)."""
