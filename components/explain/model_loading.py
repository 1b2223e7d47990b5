"""Find and load the trained Keras model behind any of the pipeline's model paths.

Accepted: a `.keras` file; an exported SavedModel directory (the Trainer's
serving export or a version the Pusher pushed), which holds the Keras model at
contract.KERAS_MODEL_PATH; a Trainer model artifact directory (export under
Format-Serving/); a served model's directory (<serving base>/<name>/) whose
highest integer version is used.
"""
import json
import os
from typing import List, Optional

import keras
import tensorflow as tf
from tfx.utils import path_utils

from components import contract
from components.explain.errors import ModelNotFoundError
from components.formats import versions as version_folders

KERAS_SUFFIX = ".keras"


def _candidates(path: str) -> List[str]:
    candidates = [os.path.join(path, contract.KERAS_MODEL_PATH),
                  os.path.join(path_utils.serving_model_dir(path), contract.KERAS_MODEL_PATH)]
    latest = version_folders.latest_version_dir(path)
    if latest is not None:
        candidates.append(os.path.join(latest, contract.KERAS_MODEL_PATH))
    return candidates


def resolve_keras_model_file(path: str) -> str:
    """The .keras file for `path`; ModelNotFoundError saying where it looked otherwise."""
    if path.endswith(KERAS_SUFFIX):
        if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path):
            return path
        raise ModelNotFoundError(f"{path}: no such Keras model file")
    if not tf.io.gfile.isdir(path):
        raise ModelNotFoundError(
            f"{path}: no such model directory (give a SavedModel export, a Trainer "
            f"model artifact, a pushed model directory or a {KERAS_SUFFIX} file)")
    candidates = _candidates(path)
    for candidate in candidates:
        if tf.io.gfile.exists(candidate):
            return candidate
    is_saved_model = tf.io.gfile.exists(os.path.join(path, "saved_model.pb"))
    what = "a SavedModel without its Keras model" if is_saved_model else "no Keras model"
    raise ModelNotFoundError(
        f"{path}: {what}; looked for {', '.join(candidates)}. Explanations need the "
        f"trained Keras model that the Trainer saves at <export>/{contract.KERAS_MODEL_PATH}.")


def load_keras_model(path: str, safe_mode: bool = True) -> keras.Model:
    """Load the Keras model behind `path` (see module doc), without its optimizer."""
    model_file = resolve_keras_model_file(path)
    return keras.saving.load_model(model_file, compile=False, safe_mode=safe_mode)


def load_class_names(path: str) -> Optional[List[str]]:
    """The class names the Trainer saved beside the Keras model, or None (older exports)."""
    names_file = os.path.join(os.path.dirname(resolve_keras_model_file(path)),
                              os.path.basename(contract.KERAS_CLASS_NAMES_PATH))
    if not tf.io.gfile.exists(names_file):
        return None
    with tf.io.gfile.GFile(names_file) as file:
        return [str(name) for name in json.load(file)]
