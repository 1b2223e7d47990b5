"""Replays a version's warmup records (components/formats/warmup.py) against the
freshly loaded servable before it is marked AVAILABLE, as TF Serving does."""
from typing import Iterable, Iterator

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from components.formats import warmup as warmup_format


def read_warmup_logs(saved_model_dir: str) -> Iterator[prediction_log_pb2.PredictionLog]:
    """The version's warmup records; none if it has no warmup file."""
    path = warmup_format.warmup_path(saved_model_dir)
    if not tf.io.gfile.exists(path):
        return
    yield from warmup_format.read_records(path)


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
