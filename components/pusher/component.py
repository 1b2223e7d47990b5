"""Pusher: copies a blessed model into <serving base>/<served name>/<version>/
and keeps <serving base>/models.config listing the models that have a version.

Replaces TFX's stock Pusher, whose versions are Unix seconds (two pushes in one
second collide) and whose copy can expose saved_model.pb before the variables.
"""
import json
import os
import time

import tensorflow as tf
from absl import logging
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import path_utils

from components import contract
from components.evaluation import decision as blessing_decision
from components.formats import examples as examples_format
from components.formats import versions as serving_versions
from components.formats import warmup as warmup_format
from components.formats.pushed_model import (
    ALREADY_SERVING_KEY,
    DESTINATION_KEY,
    MODEL_NAME_KEY,
    PUSHED_KEY,
    REASON_KEY,
    VERSION_KEY,
)
from components.pusher import serving_layout, warmup

BLESSED_FILE = "BLESSED"

def is_blessed(blessing_uri: str) -> bool:
    """The Evaluator writes a BLESSED (or NOT_BLESSED) file into its blessing."""
    return tf.io.gfile.exists(os.path.join(blessing_uri, BLESSED_FILE))

def refusal_reason(blessing_uri: str) -> str:
    decision = blessing_decision.read_decision(blessing_uri)
    if decision is None:
        return f"the Evaluator did not bless it (no {blessing_decision.DECISION_FILE} in {blessing_uri})"
    return decision.summary()

def push_blessed_model(model_dir: str, blessing_uri: str, warmup_split_uri: str, serving_model_dir: str,
                       model_name: str, num_warmup_requests: int, strategy: str = "",
                       verify_warmup: bool = True) -> dict:
    """Pushes unless not blessed or already serving, then rewrites the serving
    root's models.config (whatever the outcome, so that it exists after the
    first run); returns what happened. Warmup requests are built from the first
    images of warmup_split_uri (a split folder of the Examples artifact).

    Keys: pushed (0/1), pushed_destination, pushed_version, already_serving (0/1), reason.
    """
    outcome = _push(model_dir, blessing_uri, warmup_split_uri, serving_model_dir, model_name,
                    num_warmup_requests, strategy, verify_warmup)
    served = serving_layout.write_models_config(serving_model_dir)
    logging.info("Pusher: %s lists %s", os.path.join(serving_model_dir, serving_layout.MODELS_CONFIG_FILE),
                 ", ".join(served) or "no models yet")
    return outcome

def _push(model_dir, blessing_uri, warmup_split_uri, serving_model_dir, model_name, num_warmup_requests,
          strategy, verify_warmup) -> dict:
    if not is_blessed(blessing_uri):
        reason = refusal_reason(blessing_uri)
        logging.warning("Pusher: NOT pushing %s: %s", model_name, reason)
        return {PUSHED_KEY: 0, DESTINATION_KEY: "", VERSION_KEY: 0, ALREADY_SERVING_KEY: 0,
                REASON_KEY: reason}
    model_base = os.path.join(serving_model_dir, model_name)
    digest = serving_layout.model_digest(model_dir)
    latest = serving_layout.latest_complete_version(model_base)
    if latest and latest.push_info().get("digest") == digest:
        reason = f"the same model (sha256 {digest[:12]}) is already serving as version {latest.version}"
        logging.info("Pusher: not pushing a duplicate of %s: %s", model_name, reason)
        return {PUSHED_KEY: 1, DESTINATION_KEY: latest.path, VERSION_KEY: latest.version,
                ALREADY_SERVING_KEY: 1, REASON_KEY: reason}

    images = [image.image_bytes
              for image in examples_format.read_images(warmup_split_uri, limit=num_warmup_requests)]
    logs = warmup.warmup_logs(model_name, images)
    if verify_warmup:
        warmup.replay(model_dir, logs)
    push_info = {"digest": digest, "source": model_dir, "blessing": blessing_uri,
                 "pushed_at": time.time(), "warmup_requests": len(logs)}
    extra_files = {serving_layout.WARMUP_FILE: warmup_format.serialize_records(logs),
                   serving_versions.PUSH_INFO_FILE: json.dumps(push_info, indent=2).encode()}
    version = serving_layout.publish(model_dir, model_base, extra_files, strategy=strategy or None)
    logging.info("Pusher: pushed %s as version %d to %s (%d warmup requests)",
                model_name, version.version, version.path, len(logs))
    return {PUSHED_KEY: 1, DESTINATION_KEY: version.path, VERSION_KEY: version.version,
            ALREADY_SERVING_KEY: 0, REASON_KEY: f"blessed; pushed as version {version.version}"}

@component
def Pusher(
        model: InputArtifact[standard_artifacts.Model],
        model_blessing: InputArtifact[standard_artifacts.ModelBlessing],
        examples: InputArtifact[standard_artifacts.Examples],
        pushed_model: OutputArtifact[standard_artifacts.PushedModel],
        serving_model_dir: Parameter[str],
        model_name: Parameter[str],
        num_warmup_requests: Parameter[int] = 5,
        publish_strategy: Parameter[str] = "",
) -> None:
    """Pushes a blessed model with warmup requests built from real test images.

    serving_model_dir is TF Serving's model base path; publish_strategy is
    'staged' (hidden folder + rename), 'direct' (saved_model.pb last) or ''
    (staged on local paths, direct on gs:// and other object stores).
    """
    outcome = push_blessed_model(
        model_dir=path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model)),
        blessing_uri=model_blessing.uri,
        warmup_split_uri=artifact_utils.get_split_uri([examples], contract.TEST_SPLIT),
        serving_model_dir=serving_model_dir, model_name=model_name,
        num_warmup_requests=num_warmup_requests, strategy=publish_strategy)
    logging.info("Pusher (%s): %s", model_name,
                 f"serving version {outcome[VERSION_KEY]} at {outcome[DESTINATION_KEY]} ({outcome[REASON_KEY]})"
                 if outcome[PUSHED_KEY] else f"NOT pushed: {outcome[REASON_KEY]}")
    pushed_model.set_int_custom_property(PUSHED_KEY, outcome[PUSHED_KEY])
    pushed_model.set_string_custom_property(DESTINATION_KEY, outcome[DESTINATION_KEY])
    pushed_model.set_int_custom_property(VERSION_KEY, outcome[VERSION_KEY])
    pushed_model.set_int_custom_property(ALREADY_SERVING_KEY, outcome[ALREADY_SERVING_KEY])
    pushed_model.set_string_custom_property(REASON_KEY, outcome[REASON_KEY])
    pushed_model.set_string_custom_property(MODEL_NAME_KEY, model_name)
    tf.io.gfile.makedirs(pushed_model.uri)
    with tf.io.gfile.GFile(os.path.join(pushed_model.uri, "push.json"), "w") as file:
        file.write(json.dumps(outcome, indent=2))
