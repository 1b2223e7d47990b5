"""A run's model settings: the command line's small languages for them
(`--models a,b`, `--set MODEL.NAME=VALUE`, `--min-accuracy MODEL=VALUE`; MODEL is
a registry key, pipeline/model_registry.py) and model_settings(), the one
function every runner applies them with. Importable without TensorFlow."""
import dataclasses
import json
from typing import Dict, Mapping, Sequence

from components.training.hparams import DEFAULT_PRESET
from pipeline import model_registry
from pipeline.configs import ModelSettings


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """What a run changes in its models' settings. model_settings() applies them in
    the order of the fields, each over the ones before, all over the model's spec's
    defaults (hyper-parameters, blessing thresholds)."""
    preset: str = DEFAULT_PRESET
    """--preset: named hyper-parameters (each ModelSpec's presets; model_registry.preset_names())."""
    quick: bool = False
    """--quick: each spec's smoke-run budgets (quick_hparams) and floor (quick_min_accuracy)."""
    hparams: Mapping[str, Mapping[str, object]] = dataclasses.field(default_factory=dict)
    """--set, by model key: hyper-parameters by custom_config name."""
    min_accuracy: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """--min-accuracy, by model key: blessing floors."""

    def __post_init__(self):
        if self.preset not in model_registry.preset_names():
            raise ValueError(f"unknown preset {self.preset!r}; choose from {', '.join(model_registry.preset_names())}")


def model_settings(keys: Sequence[str], settings: RunSettings) -> Dict[str, ModelSettings]:
    """PipelineConfig.models for these models (keys or served names) under `settings`.

    Values for a model the run does not train are checked all the same (a typo
    fails now, not in a later run). On Kubeflow a run's <model>_hparams JSON (the
    KFP UI) comes last: it replaces the compiled hyper-parameters, and the Trainer
    reads a partial one over the spec's defaults."""
    models = {model.spec.key: model for model in map(ModelSettings.defaults, keys)}
    checked_only = {model.key: ModelSettings.defaults(model.key) for model in model_registry.MODELS}

    def update(name, change):
        key = model_registry.get(name).key  # ValueError naming the models for an unknown one
        target = models if key in models else checked_only
        target[key] = change(target[key])

    for spec in model_registry.MODELS:
        if settings.preset in spec.presets:
            update(spec.key, lambda model: model.with_hparams(spec.presets[settings.preset].as_custom_config()))
    if settings.quick:
        for spec in model_registry.MODELS:
            update(spec.key, lambda model: model.with_hparams(spec.quick_hparams))
        for key, floor in model_registry.quick_min_accuracies().items():
            update(key, lambda model: model.with_min_accuracy(floor))
    for key, values in settings.hparams.items():
        update(key, lambda model: model.with_hparams(values))
    for key, floor in settings.min_accuracy.items():
        update(key, lambda model: model.with_min_accuracy(floor))
    return models


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
