"""The Pusher's warmup records: one Predict request per real test image, checked
against the SavedModel before the push (the file format: components/formats/warmup.py)."""
from typing import Iterable, List

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from components import contract
from components.formats.warmup import MAX_WARMUP_RECORDS, predict_log


def warmup_logs(model_name: str, images: Iterable[bytes]) -> List[prediction_log_pb2.PredictionLog]:
    logs = [predict_log(model_name, [image]) for image in images]
    if not logs:
        raise ValueError(f"no images to build warmup requests for {model_name}")
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(logs)} warmup records; TF Serving reads at most {MAX_WARMUP_RECORDS}")
    return logs


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
