"""BaselineLookup: the latest pushed (hence blessed) model of a served name.

Why the serving base path and not MLMD: on open-source KFP v2 a component's
container gets no MLMD connection (the TFX entrypoint there hands executors
artifacts, not a metadata store), and TFX's Resolver node, which would query
MLMD, cannot be compiled for it. The serving base path is reachable from every
runner (a local folder here, a bucket or volume on a cluster), and it is the
ground truth of what is being served: the Pusher writes only blessed models
there. The candidate model is an input so that the lookup re-runs (is not
served from cache) whenever there is a new candidate.

The baseline is copied into this component's Model artifact (Format-Serving),
so the Evaluator reads a snapshot that later pushes cannot change, and lineage
records exactly what the candidate was compared with.
"""
import dataclasses
import json
import os
from typing import Optional

import tensorflow as tf
from absl import logging
from tensorflow.core.protobuf import saved_model_pb2
from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components import contract
from components.formats import versions as serving_versions

BASELINE_INFO_FILE = "baseline.json"

@dataclasses.dataclass(frozen=True)
class BaselineInfo:
    """Outcome of a lookup; found=False always carries the reason."""
    found: bool
    reason: str
    version: int = 0
    source: str = ""
    digest: str = ""
    unusable: bool = False
    """True when a baseline exists but cannot be used (corrupt, unreadable):
    reported loudly, and treated as no baseline."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "BaselineInfo":
        return cls(**json.loads(text))

def check_saved_model(saved_model_dir: str) -> Optional[str]:
    """None if the folder holds a parseable SavedModel with the tf.Example
    signature TFMA needs; otherwise what is wrong with it."""
    path = os.path.join(saved_model_dir, serving_versions.SAVED_MODEL_FILE)
    try:
        with tf.io.gfile.GFile(path, "rb") as file:
            saved_model = saved_model_pb2.SavedModel.FromString(file.read())
    except Exception as error:  # a truncated or foreign file raises DecodeError, OpError, ...
        return f"{path} cannot be parsed as a SavedModel ({type(error).__name__}: {error})"
    if not saved_model.meta_graphs:
        return f"{path} holds no meta graph"
    signatures = saved_model.meta_graphs[0].signature_def
    if contract.EXAMPLES_SIGNATURE not in signatures:
        return (f"{path} has no '{contract.EXAMPLES_SIGNATURE}' signature "
                f"(has {sorted(signatures)})")
    return None

def check_loads(saved_model_dir: str) -> Optional[str]:
    """None if TensorFlow loads the SavedModel (variables included) and it has the
    tf.Example signature; otherwise what went wrong."""
    problem = check_saved_model(saved_model_dir)
    if problem:
        return problem
    try:
        loaded = tf.saved_model.load(saved_model_dir)
    except Exception as error:  # missing or truncated variables, unknown ops, ...
        return f"tf.saved_model.load({saved_model_dir}) failed ({type(error).__name__}: {error})"
    if contract.EXAMPLES_SIGNATURE not in loaded.signatures:
        return f"{saved_model_dir} loads without a '{contract.EXAMPLES_SIGNATURE}' signature"
    return None

def find_baseline(serving_model_dir: str, model_name: str) -> BaselineInfo:
    """The latest complete version under <serving_model_dir>/<model_name>/.

    Versions without saved_model.pb are pushes that never finished (it is
    written last) and are skipped. If the latest finished version is unusable,
    it is reported and there is no baseline: falling back to an older version
    would compare against a model that is not the one being served.
    """
    model_base = os.path.join(serving_model_dir, model_name)
    versions = serving_versions.list_versions(model_base)
    unfinished = [v.version for v in versions if not v.complete]
    if unfinished:
        logging.warning("Ignoring unfinished pushes (no %s) under %s: %s",
                       serving_versions.SAVED_MODEL_FILE, model_base, unfinished)
    complete = [v for v in versions if v.complete]
    if not complete:
        return BaselineInfo(False, f"no pushed version under {model_base} (first push)")
    latest = complete[-1]
    problem = check_saved_model(latest.path)
    if problem:
        return BaselineInfo(False, f"latest pushed version {latest.version} is corrupt: {problem}",
                            version=latest.version, source=latest.path, unusable=True)
    return BaselineInfo(True, f"latest pushed version {latest.version}", version=latest.version,
                        source=latest.path, digest=latest.push_info().get("digest", ""))

def copy_tree(source: str, destination: str) -> None:
    for directory, _, names in tf.io.gfile.walk(source):
        target_dir = os.path.join(destination, os.path.relpath(directory, source))
        tf.io.gfile.makedirs(target_dir)
        for name in names:
            tf.io.gfile.copy(os.path.join(directory, name), os.path.join(target_dir, name),
                             overwrite=True)

def read_baseline_info(baseline: types.Artifact) -> BaselineInfo:
    """What BaselineLookup wrote; a missing or unreadable record means no baseline."""
    return read_baseline_info_at(baseline.uri)


def read_baseline_info_at(baseline_uri: str) -> BaselineInfo:
    path = os.path.join(baseline_uri, BASELINE_INFO_FILE)
    try:
        with tf.io.gfile.GFile(path) as file:
            info = BaselineInfo.from_json(file.read())
    except Exception as error:  # missing file, bad JSON, unexpected keys
        return BaselineInfo(False, f"baseline record {path} is unreadable ({error})", unusable=True)
    if info.found:
        problem = check_saved_model(path_utils.serving_model_path(baseline_uri))
        if problem:
            return dataclasses.replace(info, found=False, unusable=True,
                                       reason=f"baseline copy is corrupt: {problem}")
    return info

@component
def BaselineLookup(
        candidate_model: InputArtifact[standard_artifacts.Model],
        baseline_model: OutputArtifact[standard_artifacts.Model],
        serving_model_dir: Parameter[str],
        model_name: Parameter[str],
) -> None:
    """Copies the latest pushed version of model_name into baseline_model.

    Always emits the artifact; when there is no usable baseline it holds only
    baseline.json with found=false and the reason, and the Evaluator then
    blesses on absolute thresholds alone.
    """
    del candidate_model  # an input only so that a new candidate re-runs the lookup
    info = find_baseline(serving_model_dir, model_name)
    if info.found:
        copy = path_utils.serving_model_dir(baseline_model.uri)
        copy_tree(info.source, copy)
        problem = check_loads(copy)
        if problem:
            info = dataclasses.replace(
                info, found=False, unusable=True,
                reason=f"latest pushed version {info.version} is corrupt: {problem}")
            tf.io.gfile.rmtree(copy)
    if info.found:
        logging.info("Baseline for %s: version %d (%s)", model_name, info.version, info.source)
    else:  # a first push is normal; an unusable pushed version is worth a warning
        (logging.warning if info.unusable else logging.info)("No baseline for %s: %s", model_name, info.reason)
    tf.io.gfile.makedirs(baseline_model.uri)
    with tf.io.gfile.GFile(os.path.join(baseline_model.uri, BASELINE_INFO_FILE), "w") as file:
        file.write(info.to_json())
    baseline_model.set_int_custom_property("baseline_found", int(info.found))
    baseline_model.set_int_custom_property("baseline_version", info.version)
    baseline_model.set_string_custom_property("baseline_source", info.source)
    baseline_model.set_string_custom_property("baseline_reason", info.reason)
