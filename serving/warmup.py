"""TF Serving's SavedModel warmup: assets.extra/tf_serving_warmup_requests, a
TFRecord file of tensorflow.serving.PredictionLog, replayed against a freshly
loaded version before it is marked AVAILABLE (so the first real request does not
pay for graph tracing and kernel initialisation)."""
import os
from typing import Iterable, Iterator, Sequence

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from components import contract

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
# TF Serving refuses warmup files with more records than this.
MAX_WARMUP_RECORDS = 1000


def warmup_path(saved_model_dir: str) -> str:
    return os.path.join(saved_model_dir, WARMUP_DIR, WARMUP_FILE)


def read_warmup_logs(saved_model_dir: str) -> Iterator[prediction_log_pb2.PredictionLog]:
    """The version's warmup records; none if it has no warmup file."""
    path = warmup_path(saved_model_dir)
    if not tf.io.gfile.exists(path):
        return
    for count, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator(), start=1):
        if count > MAX_WARMUP_RECORDS:
            raise ValueError(f"{path}: more than {MAX_WARMUP_RECORDS} warmup records")
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record)
        yield log


def replay(servable, logs: Iterable[prediction_log_pb2.PredictionLog]) -> int:
    """Runs each record against `servable`; any failure fails the load. Returns the count."""
    count = 0
    for log in logs:
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            servable.predict(log.predict_log.request)
        elif kind == "classify_log":
            servable.classify(log.classify_log.request)
        else:
            raise ValueError(f"unsupported warmup record type: {kind}")
        count += 1
    return count


def write_warmup_requests(saved_model_dir: str, model_name: str, images: Sequence[bytes],
                          batch_sizes: Sequence[int] = (1,)) -> str:
    """Writes Predict warmup records (one per batch size) with these image bytes
    into the SavedModel's assets.extra; returns the file's path."""
    path = warmup_path(saved_model_dir)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for batch_size in batch_sizes:
            batch = [images[i % len(images)] for i in range(batch_size)]
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = contract.SERVING_SIGNATURE
            request.inputs[contract.SERVING_INPUT_KEY].CopyFrom(
                tf.make_tensor_proto(batch, dtype=tf.string, shape=[len(batch)]))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path
