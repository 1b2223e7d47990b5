"""Pipeline configuration: every runner builds one of these and hands it to
create_pipeline(). Defaults reproduce the book; runners override what differs
(paths, Beam args, epoch budgets)."""
import dataclasses
import os
from importlib import metadata
from typing import Optional, Sequence

from components import contract
from components.evaluation.thresholds import BlessingThresholds
from components.image_shape import ImageShape
from components.training.hparams import MnistHParams, ScratchHParams, Vgg16HParams
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


@dataclasses.dataclass(frozen=True)
class IngestionConfig:
    """ImageExampleGen settings (see components/image_example_gen)."""
    max_rejected_fraction: float = 0.01
    max_image_pixels: int = 50_000_000


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """Evaluator blessing thresholds per model (one field per model_registry key),
    Pusher warmup and report sizes (see components/evaluation and components/pusher)."""
    scratch: BlessingThresholds = model_registry.get("scratch").default_thresholds
    vgg16: BlessingThresholds = model_registry.get("vgg16").default_thresholds
    mnist: BlessingThresholds = model_registry.get("mnist").default_thresholds
    num_warmup_requests: int = 5
    num_worst_images: int = 10

    def thresholds_for(self, model_name: str) -> BlessingThresholds:
        return getattr(self, model_registry.get(model_name).key)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """What a runner injects into create_pipeline()."""
    data_root: str
    pipeline_root: str
    serving_model_dir: str
    metadata_path: Optional[str] = None  # SQLite MLMD for local runs; None on KFP
    pipeline_name: str = PIPELINE_NAME
    beam_pipeline_args: Sequence[str] = LOCAL_BEAM_ARGS
    ingestion: IngestionConfig = IngestionConfig()
    train_models: Sequence[str] = (contract.SCRATCH_MODEL_NAME, contract.VGG16_MODEL_NAME)
    scratch: ScratchHParams = ScratchHParams()
    vgg16: Vgg16HParams = Vgg16HParams()
    mnist: MnistHParams = MnistHParams()
    evaluation: EvaluationConfig = EvaluationConfig()
    enable_cache: bool = True

    def hparams_for(self, model_name: str):
        """The hyper-parameters of a model (one field per model_registry key)."""
        return getattr(self, model_registry.get(model_name).key)

    @property
    def image_shape(self) -> ImageShape:
        """What Transform produces: the shape every selected model takes."""
        return model_registry.image_shape_for(self.train_models)

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
