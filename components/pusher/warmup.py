"""TF Serving warmup records: real PredictRequests replayed by the server at load.

TF Serving reads <version>/assets.extra/tf_serving_warmup_requests (a TFRecord
file of PredictionLog) and runs each request once before the version takes
traffic, so the first user request does not pay for graph initialisation.
"""
import os
import tempfile
from typing import Iterable, List

import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from components import contract

MAX_WARMUP_RECORDS = 1000
"""TF Serving stops reading warmup records after this many."""

def predict_request(model_name: str, image_bytes: bytes) -> predict_pb2.PredictRequest:
    """A request for the serving signature with one encoded image."""
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(
        name=model_name, signature_name=contract.SERVING_SIGNATURE))
    request.inputs[contract.SERVING_INPUT_KEY].CopyFrom(
        tf.make_tensor_proto([image_bytes], dtype=tf.string, shape=[1]))
    return request

def warmup_logs(model_name: str, images: Iterable[bytes]) -> List[prediction_log_pb2.PredictionLog]:
    logs = [prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=predict_request(model_name, image)))
        for image in images]
    if not logs:
        raise ValueError(f"no images to build warmup requests for {model_name}")
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(logs)} warmup records; TF Serving reads at most {MAX_WARMUP_RECORDS}")
    return logs

def serialize(logs: Iterable[prediction_log_pb2.PredictionLog]) -> bytes:
    """The TFRecord file's bytes (uncompressed, as TF Serving expects)."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "warmup")
        with tf.io.TFRecordWriter(path) as writer:
            for log in logs:
                writer.write(log.SerializeToString())
        with open(path, "rb") as file:
            return file.read()

def read(path: str) -> List[prediction_log_pb2.PredictionLog]:
    return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(path)]

def replay(saved_model_dir: str, logs: Iterable[prediction_log_pb2.PredictionLog]) -> None:
    """Runs every request through the SavedModel's signature, as TF Serving will.

    Raises ValueError naming the request and the problem when a request does
    not fit the signature or the answer lacks the contract's outputs.
    """
    loaded = tf.saved_model.load(saved_model_dir)
    for index, log in enumerate(logs):
        request = log.predict_log.request
        signature_name = request.model_spec.signature_name or contract.SERVING_SIGNATURE
        if signature_name not in loaded.signatures:
            raise ValueError(f"warmup request {index}: the model has no signature {signature_name!r}")
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        try:
            outputs = loaded.signatures[signature_name](**{k: tf.constant(v) for k, v in inputs.items()})
        except (TypeError, ValueError, tf.errors.OpError) as error:
            raise ValueError(f"warmup request {index} fails on {saved_model_dir}: {error}") from error
        missing = {contract.PROBABILITIES_KEY, contract.CLASSES_KEY} - set(outputs)
        if missing:
            raise ValueError(f"warmup request {index}: the answer lacks {sorted(missing)}")
