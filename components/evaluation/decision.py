"""The blessing decision in words: which threshold failed, by how much."""
import dataclasses
import json
import math
import os
from typing import List, Optional

import tensorflow as tf
from tensorflow_model_analysis.proto import config_pb2, validation_result_pb2

DECISION_FILE = "decision.json"

@dataclasses.dataclass(frozen=True)
class ThresholdFailure:
    metric: str
    kind: str  # "value" or "change"
    value: float  # the metric for "value", candidate minus baseline for "change"
    bound: float
    shortfall: float

    def describe(self) -> str:
        if self.kind == "value":
            return (f"{self.metric} = {self.value:.4f} is below the required {self.bound:.4f} "
                    f"(short by {self.shortfall:.4f})")
        return (f"{self.metric} changed by {self.value:+.4f} against the baseline; at most "
                f"{-self.bound:.4f} drop is allowed (short by {self.shortfall:.4f})")

@dataclasses.dataclass(frozen=True)
class BlessingDecision:
    blessed: bool
    baseline_found: bool
    baseline_reason: str
    baseline_version: int = 0
    failures: List[ThresholdFailure] = dataclasses.field(default_factory=list)
    notes: List[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        head = "BLESSED" if self.blessed else "NOT BLESSED"
        baseline = (f"baseline: version {self.baseline_version}" if self.baseline_found
                    else f"no baseline ({self.baseline_reason})")
        reasons = [f.describe() for f in self.failures] + list(self.notes)
        return f"{head}; {baseline}" + "".join(f"; {r}" for r in reasons)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "BlessingDecision":
        data = json.loads(text)
        data["failures"] = [ThresholdFailure(**f) for f in data.get("failures", [])]
        return cls(**data)

def _failure(failure: validation_result_pb2.ValidationFailure) -> ThresholdFailure:
    name = failure.metric_key.name
    value = failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    if threshold.HasField("value_threshold"):
        bounds = threshold.value_threshold
        if bounds.HasField("lower_bound") and value < bounds.lower_bound.value:
            bound = bounds.lower_bound.value
            return ThresholdFailure(name, "value", value, bound, bound - value)
        bound = bounds.upper_bound.value if bounds.HasField("upper_bound") else math.nan
        return ThresholdFailure(name, "value", value, bound, value - bound)
    change = threshold.change_threshold
    bound = change.absolute.value if change.HasField("absolute") else math.nan
    higher = change.direction == config_pb2.MetricDirection.HIGHER_IS_BETTER
    return ThresholdFailure(name, "change", value, bound, (bound - value) if higher else (value - bound))

def decide(validation: validation_result_pb2.ValidationResult, baseline_found: bool,
           baseline_reason: str, baseline_version: int = 0) -> BlessingDecision:
    failures = [_failure(f) for per_slice in validation.metric_validations_per_slice
                for f in per_slice.failures]
    notes = []
    if validation.missing_thresholds:
        notes.append(f"{len(validation.missing_thresholds)} threshold(s) had no metric to check")
    if validation.missing_slices:
        notes.append(f"slice(s) without data: {len(validation.missing_slices)}")
    return BlessingDecision(validation.validation_ok, baseline_found, baseline_reason,
                            baseline_version, failures, notes)

def write_decision(blessing_uri: str, decision: BlessingDecision) -> None:
    with tf.io.gfile.GFile(os.path.join(blessing_uri, DECISION_FILE), "w") as file:
        file.write(decision.to_json())

def read_decision(blessing_uri: str) -> Optional[BlessingDecision]:
    path = os.path.join(blessing_uri, DECISION_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as file:
        return BlessingDecision.from_json(file.read())
