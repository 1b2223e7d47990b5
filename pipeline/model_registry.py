"""The models the pipeline can train: one entry per model, everything about it in one place.

Each entry names the served model, the short key used for component ids
(Trainer_<key>, Evaluator_<key>, ...), CLI aliases (`--models <key>`,
`--set <key>.NAME=VALUE`) and the PipelineConfig / EvaluationConfig fields, the
Trainer's run_fn, its hyper-parameter dataclass, its default blessing threshold
and the image shape it takes (what Transform must produce). Importable without
TensorFlow.
"""
import dataclasses
from typing import Sequence, Tuple, Type

from components import contract
from components.evaluation.thresholds import BlessingThresholds
from components.image_shape import BOOK_IMAGE_SHAPE, MNIST_IMAGE_SHAPE, ImageShape
from components.training.hparams import MnistHParams, ScratchHParams, Vgg16HParams


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    served_name: str
    """TF Serving's model name (the Pusher's sub-folder of the serving base path)."""
    key: str
    """Short id: component id suffix, CLI alias, PipelineConfig/EvaluationConfig field name."""
    run_fn: str
    """The Trainer's module function, by dotted path."""
    hparams_type: Type
    default_thresholds: BlessingThresholds
    image_shape: ImageShape
    description: str

    @property
    def trainer_id(self) -> str:
        return f"Trainer_{self.key}"

    @property
    def explain_gallery_id(self) -> str:
        return f"ExplainGallery_{self.key}"


MODELS: Tuple[ModelEntry, ...] = (
    ModelEntry(contract.SCRATCH_MODEL_NAME, "scratch", "components.training.scratch.run_fn",
               ScratchHParams, BlessingThresholds(min_accuracy=0.70), BOOK_IMAGE_SHAPE,
               "the small convnet trained from scratch with augmentation (listings 5.5-5.14)"),
    ModelEntry(contract.VGG16_MODEL_NAME, "vgg16", "components.training.vgg16.run_fn",
               Vgg16HParams, BlessingThresholds(min_accuracy=0.90), BOOK_IMAGE_SHAPE,
               "VGG16 feature extraction and fine-tuning (listings 5.16-5.23)"),
    ModelEntry(contract.MNIST_MODEL_NAME, "mnist", "components.training.mnist.run_fn",
               MnistHParams, BlessingThresholds(min_accuracy=0.97), MNIST_IMAGE_SHAPE,
               "the MNIST convnet on 28x28 grayscale digits (listings 5.1-5.3)"),
)
_BY_NAME = {**{m.served_name: m for m in MODELS}, **{m.key: m for m in MODELS}}


def keys() -> Tuple[str, ...]:
    return tuple(m.key for m in MODELS)


def get(name: str) -> ModelEntry:
    """The entry for a served name or a key."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown model {name!r}; choose from "
                         + ", ".join(f"{m.key} ({m.served_name})" for m in MODELS))
    return _BY_NAME[name]


def image_shape_for(model_names: Sequence[str]) -> ImageShape:
    """The one image shape every selected model takes: Transform's output.

    Models taking different shapes cannot share a run (one Transform graph is
    the single source of model input for training, evaluation and serving).
    """
    entries = [get(name) for name in model_names]
    if not entries:
        raise ValueError("no models selected: the pipeline must train at least one model")
    shapes = {m.image_shape for m in entries}
    if len(shapes) > 1:
        by_shape = "; ".join(f"{shape}: " + ", ".join(m.key for m in entries if m.image_shape == shape)
                             for shape in sorted(shapes, key=str))
        raise ValueError(f"the selected models take different image shapes ({by_shape}); one run "
                         "has one Transform graph, so train them in separate runs (locally: separate --output-dir)")
    return entries[0].image_shape
