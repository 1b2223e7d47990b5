"""The test accuracy a model's recipes reached over seeds on the full data, recorded
beside the model (components/models/<model>/recorded_seeds.json, written by
benchmarks.seed_spread), and how one run's recipe compares with them: what the
evaluation report shows under "Recorded accuracy", so a reader can tell whether a
run's accuracy is what its recipe usually gives.

A record is a list of finished runs: seed, TFMA test accuracy and example count,
kept epoch, epochs run, minutes, and the run's hyper-parameters. Runs whose
hyper-parameters differ only in `seed` are one recipe. Importable without
TensorFlow.
"""
import dataclasses
import importlib
import json
import os
import statistics
from typing import Any, Dict, List, Optional

RECORD_FILE = "recorded_seeds.json"
SEED = "seed"
"""The one hyper-parameter that does not make another recipe."""


def record_path(package: str) -> str:
    """The record of the model whose folder is this dotted package."""
    return os.path.join(os.path.dirname(importlib.import_module(package).__file__), RECORD_FILE)


def load(package: str) -> List[Dict[str, Any]]:
    path = record_path(package)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def save(package: str, runs: List[Dict[str, Any]]) -> None:
    with open(record_path(package), "w") as f:
        json.dump(runs, f, indent=1)
        f.write("\n")


def default_hparams(package: str) -> Dict[str, Any]:
    """The model's default preset (its SPEC's), as custom_config, without the seed."""
    defaults = importlib.import_module(package).SPEC.default_hparams.as_custom_config()
    return {name: value for name, value in defaults.items() if name != SEED}


def changes_from(hparams: Dict[str, Any], defaults: Dict[str, Any]) -> Dict[str, Any]:
    """The hyper-parameters that differ from the default preset (the seed is not one).
    A name the hyper-parameters lack (added to the model after they were recorded) had
    the effect it had then: its default at the time, so it is no change."""
    return {name: value for name, value in hparams.items() if name != SEED and defaults.get(name) != value}


def describe(changes: Dict[str, Any]) -> str:
    """'default preset', or 'default preset with NAME=VALUE, ...' (values as JSON)."""
    if not changes:
        return "default preset"
    return "default preset with " + ", ".join(f"{name}={json.dumps(value)}" for name, value in sorted(changes.items()))


@dataclasses.dataclass(frozen=True)
class RecipeSpread:
    """One recipe's recorded runs, one per seed."""
    changes: Dict[str, Any]
    """Its hyper-parameters that differ from the default preset ({}: the default preset)."""
    runs: List[Dict[str, Any]]

    @property
    def accuracies(self) -> List[float]:
        return [run["test_accuracy"] for run in self.runs]

    @property
    def mean(self) -> float:
        return statistics.mean(self.accuracies)

    @property
    def min(self) -> float:
        return min(self.accuracies)

    @property
    def max(self) -> float:
        return max(self.accuracies)

    @property
    def seeds(self) -> List[int]:
        return [run["seed"] for run in self.runs]

    @property
    def kept_epochs(self) -> List[str]:
        """'<kept epoch> (<epochs run>)'; 'last' where the last epoch's weights were exported."""
        return [f"{run['kept_epoch'] or 'last'} ({run['epochs_run']})" for run in self.runs]

    @property
    def minutes(self) -> List[int]:
        return [round(run["run_seconds"] / 60) for run in self.runs]

    @property
    def test_images(self) -> List[int]:
        return sorted({run["test_images"] for run in self.runs})

    def describe(self) -> str:
        return describe(self.changes)

    @property
    def sets(self) -> List[str]:
        """Each change as the option that makes it: ['--set NAME=VALUE', ...]."""
        return [f"--set {name}={json.dumps(value)}" for name, value in sorted(self.changes.items())]


def recipes(runs: List[Dict[str, Any]], defaults: Dict[str, Any]) -> List[RecipeSpread]:
    """The recorded runs grouped by recipe, in the order each recipe was first run."""
    grouped: Dict[str, List[Dict[str, Any]]] = {}
    for run in runs:
        key = json.dumps(changes_from(run["hparams"], defaults), sort_keys=True)
        grouped.setdefault(key, []).append(run)
    return [RecipeSpread(json.loads(key), group) for key, group in grouped.items()]


@dataclasses.dataclass(frozen=True)
class Comparison:
    """A run's recipe against a model's record."""
    recipes: List[RecipeSpread]
    run_changes: Optional[Dict[str, Any]]
    """This run's hyper-parameters that differ from the default preset (None: unknown)."""

    @property
    def same_recipe(self) -> Optional[RecipeSpread]:
        """The recorded recipe this run used, if any."""
        if self.run_changes is None:
            return None
        return next((recipe for recipe in self.recipes if recipe.changes == self.run_changes), None)


def compare(package: str, run_hparams: Optional[Dict[str, Any]]) -> Comparison:
    """The model's recorded recipes, and which of them (if any) this run's hyper-parameters
    (its training report's; None when unknown) make."""
    defaults = default_hparams(package)
    return Comparison(recipes(load(package), defaults),
                      None if run_hparams is None else changes_from(run_hparams, defaults))
