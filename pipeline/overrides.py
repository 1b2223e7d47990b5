"""The command line's small languages for a run's model settings:
`--set MODEL.NAME=VALUE` (hyper-parameters), `--min-accuracy MODEL=VALUE`
(blessing floors) and `--models a,b`, and how they apply to a PipelineConfig.
MODEL is a registry key (pipeline/model_registry.py). Importable without TensorFlow."""
import json
from typing import Dict, Mapping, Sequence

from pipeline import model_registry
from pipeline.configs import ModelSettings, PipelineConfig


def parse_models(text: str) -> tuple:
    """'scratch,vgg16' (keys or served names) -> their registry keys, in order."""
    return tuple(model.key for model in model_registry.parse_model_list(text))


def parse_overrides(assignments: Sequence[str]) -> Dict[str, Dict[str, object]]:
    """['scratch.epochs=3', ...] -> {'scratch': {'epochs': 3}}; values are JSON (bare words are strings)."""
    overrides: Dict[str, Dict[str, object]] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in model_registry.keys():
            raise ValueError(f"--set {assignment!r}: expected MODEL.NAME=VALUE with MODEL one of "
                             f"{', '.join(model_registry.keys())}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        overrides.setdefault(section, {})[name] = value
    return overrides


def parse_min_accuracy(assignments: Sequence[str]) -> Dict[str, float]:
    """['scratch=0.6', ...] -> {'scratch': 0.6}."""
    floors: Dict[str, float] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        try:
            floors[key] = float(raw)
        except ValueError:
            sep = ""
        if not sep or key not in model_registry.keys():
            raise ValueError(f"--min-accuracy {assignment!r}: expected MODEL=VALUE with MODEL one of "
                             f"{', '.join(model_registry.keys())} and VALUE a number")
    return floors


def with_hparams(config: PipelineConfig, key: str, values: Mapping[str, object]) -> PipelineConfig:
    """The model's hyper-parameters with `values` replaced. A model the run does not
    train has its values checked all the same (a typo fails now, not in a later run)."""
    if key not in config.models:
        ModelSettings.defaults(key).with_hparams(values)
        return config
    return config.with_model(config.models[key].with_hparams(values))


def with_min_accuracy(config: PipelineConfig, key: str, floor: float) -> PipelineConfig:
    """The model's blessing floor replaced (checked as any threshold; ignored, once
    checked, for a model the run does not train)."""
    model = (config.models.get(key) or ModelSettings.defaults(key)).with_min_accuracy(floor)
    return config.with_model(model) if key in config.models else config
