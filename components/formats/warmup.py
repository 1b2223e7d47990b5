"""TF Serving's SavedModel warmup records: <version>/assets.extra/tf_serving_warmup_requests,
a TFRecord file (uncompressed) of tensorflow.serving.PredictionLog. The server
replays each record once against a freshly loaded version before it takes
traffic, so the first real request does not pay for graph tracing and kernel
initialisation. The Pusher writes the file; the server reads it."""
import os
import tempfile
from typing import Iterable, Iterator, Sequence

import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from components import contract
from components.formats.versions import ASSETS_EXTRA_DIR

WARMUP_FILE_NAME = "tf_serving_warmup_requests"
WARMUP_FILE = os.path.join(ASSETS_EXTRA_DIR, WARMUP_FILE_NAME)
"""Relative to the SavedModel (version) folder."""
MAX_WARMUP_RECORDS = 1000
"""TF Serving stops at (and this server refuses) files with more records than this."""


def warmup_path(saved_model_dir: str) -> str:
    return os.path.join(saved_model_dir, WARMUP_FILE)


def predict_log(model_name: str, images: Sequence[bytes]) -> prediction_log_pb2.PredictionLog:
    """One Predict request for the serving signature holding these encoded images as one batch."""
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(
        name=model_name, signature_name=contract.SERVING_SIGNATURE))
    request.inputs[contract.SERVING_INPUT_KEY].CopyFrom(
        tf.make_tensor_proto(list(images), dtype=tf.string, shape=[len(images)]))
    return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))


def write_records(path: str, logs: Iterable[prediction_log_pb2.PredictionLog]) -> str:
    """Writes the records to path (creating its folder); returns path."""
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def serialize_records(logs: Iterable[prediction_log_pb2.PredictionLog]) -> bytes:
    """The file's bytes, for writers that publish whole files (the Pusher)."""
    with tempfile.TemporaryDirectory() as directory:
        path = write_records(os.path.join(directory, WARMUP_FILE_NAME), logs)
        with open(path, "rb") as file:
            return file.read()


def read_records(path: str) -> Iterator[prediction_log_pb2.PredictionLog]:
    """The file's records in order; ValueError past MAX_WARMUP_RECORDS."""
    for count, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator(), start=1):
        if count > MAX_WARMUP_RECORDS:
            raise ValueError(f"{path}: more than {MAX_WARMUP_RECORDS} warmup records")
        yield prediction_log_pb2.PredictionLog.FromString(record)
