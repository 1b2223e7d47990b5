"""TF Serving's model base path: <base>/<model name>/<integer version>/ holding a
SavedModel (complete once saved_model.pb exists: publishers write it last).
Other names (staging folders, files) are not versions. The Pusher writes
these folders; the baseline lookup, the server and explanations read them."""
import dataclasses
import json
import os
from typing import Dict, List, Optional

import tensorflow as tf
from absl import logging

SAVED_MODEL_FILE = "saved_model.pb"
ASSETS_EXTRA_DIR = "assets.extra"
PUSH_INFO_FILE = os.path.join(ASSETS_EXTRA_DIR, "push_info.json")


def has_saved_model(version_dir: str) -> bool:
    return tf.io.gfile.exists(os.path.join(version_dir, SAVED_MODEL_FILE))


@dataclasses.dataclass(frozen=True)
class VersionDir:
    version: int
    path: str

    @property
    def complete(self) -> bool:
        """A version is published once saved_model.pb exists (it is written last)."""
        return has_saved_model(self.path)

    def push_info(self) -> Dict:
        """What the Pusher recorded about this version ({} for versions pushed by others)."""
        path = os.path.join(self.path, PUSH_INFO_FILE)
        if not tf.io.gfile.exists(path):
            return {}
        try:
            with tf.io.gfile.GFile(path) as file:
                return json.load(file)
        except (ValueError, tf.errors.OpError) as error:
            logging.warning("Unreadable %s: %s", path, error)
            return {}


def _version_children(model_base: str) -> Dict[int, str]:
    """version -> child folder name, for every all-digit child (TF Serving reads
    '00000123' as version 123). Of two names for one version the last in sorted
    order wins, as TF Serving keeps the last it lists."""
    if not tf.io.gfile.isdir(model_base):
        return {}
    names = sorted(name.rstrip("/") for name in tf.io.gfile.listdir(model_base))
    return {int(name): name for name in names if name.isdigit()}


def version_numbers(model_base: str) -> List[int]:
    """The integer-named children of a served model's folder, ascending; [] if
    the folder does not exist."""
    return sorted(_version_children(model_base))


def list_versions(model_base: str) -> List[VersionDir]:
    """Integer-named children of a served model's folder, oldest first."""
    return [VersionDir(version, os.path.join(model_base, name))
            for version, name in sorted(_version_children(model_base).items())]


def latest_complete_version(model_base: str) -> Optional[VersionDir]:
    complete = [v for v in list_versions(model_base) if v.complete]
    return complete[-1] if complete else None


def latest_version_dir(model_base: str) -> Optional[str]:
    """The highest integer-named child of model_base (complete or not), or None."""
    versions = list_versions(model_base)
    return versions[-1].path if versions else None
