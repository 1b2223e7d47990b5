"""Pipeline configuration: every runner builds one of these and hands it to
create_pipeline(). Defaults are the `default` preset (the book's models; the
scratch convnet's recipe aims at 85%: each model's SPEC, components/models/); runners
override what differs (paths, Beam args, presets, epoch budgets)."""
import dataclasses
import os
from importlib import metadata
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from components import contract
from components.evaluation.thresholds import BlessingThresholds
from components.image_shape import ImageShape
from components.models.spec import ModelSpec
from pipeline import model_registry

PIPELINE_NAME = "cats-vs-dogs"

# Beam 2.68+ tries its Prism runner first, which downloads a binary (no
# internet here: a failed download and a fallback in every component). Setting
# the update-compatibility version (to the running version: a no-op otherwise)
# makes the DirectRunner skip Prism (see its SwitchingDirectRunner); in_memory
# is the mode TFX's own tests use. The version comes from the package metadata:
# importing apache_beam takes seconds, too slow for `catsdogs run-local --help`.
LOCAL_BEAM_ARGS = ("--direct_running_mode=in_memory", "--direct_num_workers=1",
                   f"--update_compatibility_version={metadata.version('apache-beam')}")

PIPELINE_IMAGE = "catsdogs-tfx:0.1.0"
"""The image the Dockerfile builds (README): every KFP task's and remote Beam worker's."""

# The Beam flags that tell TFX how workers get their Python packages: with none of
# them, every Beam executor builds and stages an sdist of TFX itself (47 MB and
# 1-2 s per component, left in the temp folder: make_beam_dependency_flags in
# tfx/utils/dependency_utils.py; benchmarks/RESULTS-ingestion.md), which the
# in-process DirectRunner never reads and a remote worker could not use (it lacks
# this project's components).
BEAM_DEPENDENCY_FLAGS = frozenset({"--extra_package", "--setup_file", "--requirements_file",
                                   "--worker_harness_container_image", "--sdk_container_image"})


def with_worker_image(beam_args: Sequence[str], image: str = PIPELINE_IMAGE) -> Tuple[str, ...]:
    """beam_args, plus --sdk_container_image=image unless they already say how workers
    get their packages: remote workers (Dataflow) run the pipeline's image, which holds
    TFX and this project; the DirectRunner ignores the flag."""
    if {arg.split("=", 1)[0] for arg in beam_args} & BEAM_DEPENDENCY_FLAGS:
        return tuple(beam_args)
    return (*beam_args, f"--sdk_container_image={image}")


LOCAL_EXECUTOR_BEAM_ARGS = with_worker_image(LOCAL_BEAM_ARGS)
"""For pipelines and executors run outside create_pipeline() (tests, benchmarks)."""


@dataclasses.dataclass(frozen=True)
class IngestionConfig:
    """ImageExampleGen settings (see components/image_example_gen)."""
    max_rejected_fraction: float = contract.DEFAULT_MAX_REJECTED_FRACTION
    max_image_pixels: int = contract.DEFAULT_MAX_IMAGE_PIXELS


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """Pusher warmup and report sizes (see components/evaluation and components/pusher);
    each model's blessing thresholds are in its ModelSettings."""
    num_warmup_requests: int = 5
    num_worst_images: int = 10


@dataclasses.dataclass(frozen=True)
class ModelSettings:
    """One model of a run: its spec, with this run's hyper-parameters and blessing
    thresholds (the spec's defaults unless a runner overrides them)."""
    spec: ModelSpec
    hparams: Any
    """An instance of spec.hparams_type (spec.default_hparams unless overridden)."""
    thresholds: BlessingThresholds

    @classmethod
    def defaults(cls, name: str) -> "ModelSettings":
        spec = model_registry.get(name)
        return cls(spec, spec.default_hparams, spec.default_thresholds)

    def with_min_accuracy(self, floor: float) -> "ModelSettings":
        """These settings with another blessing floor (validated as any threshold)."""
        return dataclasses.replace(self, thresholds=dataclasses.replace(self.thresholds, min_accuracy=floor))

    def with_hparams(self, values: Mapping[str, Any]) -> "ModelSettings":
        """These hyper-parameters with `values` (custom_config names) replaced, validated."""
        return dataclasses.replace(self, hparams=self.hparams.updated(dict(values)))


def select_models(names: Sequence[str]) -> Dict[str, ModelSettings]:
    """PipelineConfig.models for these models (keys or served names), with their defaults."""
    settings = {}
    for name in names:
        model = ModelSettings.defaults(name)
        settings[model.spec.key] = model
    return settings


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """What a runner injects into create_pipeline()."""
    data_root: str
    pipeline_root: str
    serving_model_dir: str
    metadata_path: Optional[str] = None  # SQLite MLMD for local runs; None on KFP
    pipeline_name: str = PIPELINE_NAME
    beam_pipeline_args: Sequence[str] = LOCAL_BEAM_ARGS
    beam_worker_image: str = PIPELINE_IMAGE
    """Remote Beam workers' image, unless beam_pipeline_args name their packages (with_worker_image)."""
    ingestion: IngestionConfig = IngestionConfig()
    models: Mapping[str, ModelSettings] = dataclasses.field(
        default_factory=lambda: select_models(model_registry.DEFAULT_MODELS))
    """The models to train, by registry key, in training order."""
    evaluation: EvaluationConfig = EvaluationConfig()
    enable_cache: bool = True

    def __post_init__(self):
        for key, model in self.models.items():
            if key != model.spec.key:
                raise ValueError(f"models[{key!r}] holds the settings of {model.spec.key!r}")
        model_registry.image_shape_for(list(self.models))  # at least one model; one number of channels

    @property
    def served_names(self) -> Tuple[str, ...]:
        return tuple(model.spec.served_name for model in self.models.values())

    @property
    def executor_beam_args(self) -> Tuple[str, ...]:
        """What the pipeline's Beam executors get (with_worker_image)."""
        return with_worker_image(self.beam_pipeline_args, self.beam_worker_image)

    @property
    def image_shape(self) -> ImageShape:
        """What Transform produces: the largest shape a selected model takes."""
        return model_registry.image_shape_for(list(self.models))

    @classmethod
    def for_local_run(cls, data_root: str, output_dir: str, **overrides) -> "PipelineConfig":
        output_dir = os.path.abspath(output_dir)
        return cls(
            data_root=os.path.abspath(data_root),
            pipeline_root=os.path.join(output_dir, "pipeline_root"),
            serving_model_dir=os.path.join(output_dir, "serving_model"),
            metadata_path=os.path.join(output_dir, "metadata.sqlite"),
            **overrides,
        )
