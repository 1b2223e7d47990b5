"""Replays a version's warmup records (components/formats/warmup.py) against the
freshly loaded servable before it is marked AVAILABLE, as TF Serving does
(tensorflow_serving/servables/tensorflow/saved_model_warmup.cc): each record
--num_request_iterations_for_warmup times (once when 0); any failure fails
the load."""
from typing import Iterable, Iterator

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from components.formats import warmup as warmup_format
from serving import example_inference, predict
from serving.request_options import RequestOptions

_REPLAYS = {
    "predict_log": lambda log: (predict.predict, log.predict_log.request),
    "classify_log": lambda log: (example_inference.classify, log.classify_log.request),
    "regress_log": lambda log: (example_inference.regress, log.regress_log.request),
    "multi_inference_log": lambda log: (example_inference.multi_inference, log.multi_inference_log.request),
}


def read_warmup_logs(saved_model_dir: str) -> Iterator[prediction_log_pb2.PredictionLog]:
    """The version's warmup records; none if it has no warmup file."""
    path = warmup_format.warmup_path(saved_model_dir)
    if not tf.io.gfile.exists(path):
        return
    yield from warmup_format.read_records(path)


def replay(servable, logs: Iterable[prediction_log_pb2.PredictionLog], options: RequestOptions,
           iterations: int = 1) -> int:
    """Runs each record against `servable`. Returns the count of records."""
    count = 0
    for log in logs:
        kind = log.WhichOneof("log_type")
        if kind not in _REPLAYS:
            raise ValueError(f"Unsupported log_type for warmup: {kind}")
        run, request = _REPLAYS[kind](log)
        for _ in range(max(iterations, 1)):
            run(servable, request, options)
        count += 1
    return count
