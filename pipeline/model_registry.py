"""The models the pipeline can train: one line per model.

Each model is one folder, components/models/<model>/, whose SPEC (a ModelSpec)
says everything about it: its key (component ids Trainer_<key>, Evaluator_<key>,
...; CLI aliases `--models <key>`, `--set <key>.NAME=VALUE`, `--min-accuracy
<key>=VALUE`; KFP parameters <key>_hparams), its served name, the Trainer's
run_fn, its default hyper-parameters and presets, its `--quick` budgets, its
blessing thresholds and the image shape it takes. PipelineConfig.models maps the
selected keys to settings built from these specs. Importable without TensorFlow.

To add a model: a folder under components/models/ (README, "Adding a model"), and
its SPEC in MODELS.
"""
from typing import Dict, Sequence, Tuple

from components.image_shape import ImageShape
from components.models import mnist, scratch, vgg16
from components.models.spec import ModelSpec
from components.training.hparams import DEFAULT_PRESET

MODELS: Tuple[ModelSpec, ...] = (scratch.SPEC, vgg16.SPEC, mnist.SPEC)

DEFAULT_MODELS: Tuple[str, ...] = ("scratch", "vgg16")
"""The book's two cats vs dogs models: what a run trains unless told otherwise."""


def keys() -> Tuple[str, ...]:
    return tuple(m.key for m in MODELS)


def preset_names() -> Tuple[str, ...]:
    """`--preset` choices: the default, then every preset some model names."""
    return (DEFAULT_PRESET,) + tuple(sorted({name for m in MODELS for name in m.presets} - {DEFAULT_PRESET}))


def quick_min_accuracies() -> Dict[str, float]:
    """The smoke-run blessing floors (`--quick`) by model key, for the models that have one."""
    return {m.key: m.quick_min_accuracy for m in MODELS if m.quick_min_accuracy is not None}


def _by_name() -> Dict[str, ModelSpec]:
    """Keys and served names -> specs, read from MODELS at each call (tests extend MODELS)."""
    return {**{m.served_name: m for m in MODELS}, **{m.key: m for m in MODELS}}


def get(name: str) -> ModelSpec:
    """The spec of a served name or a key."""
    by_name = _by_name()
    if name not in by_name:
        raise ValueError(f"unknown model {name!r}; choose from "
                         + ", ".join(f"{m.key} ({m.served_name})" for m in MODELS))
    return by_name[name]


def parse_model_list(text: str) -> Tuple[ModelSpec, ...]:
    """'scratch,vgg16' (keys or served names, comma-separated) -> their specs, in order.
    The one parser of every command's --models."""
    by_name = _by_name()
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in by_name]
    if unknown or not names:
        raise ValueError(f"unknown model(s) {', '.join(unknown) or repr(text)}; choose from {', '.join(keys())}")
    return tuple(by_name[name] for name in names)


def image_shape_for(model_names: Sequence[str]) -> ImageShape:
    """Transform's output for the selected models: the largest height and width any of them takes.

    One run has one Transform graph, the single source of model input for training,
    evaluation and serving; a model taking smaller images resizes them in its own graph
    (training/heads.input_resizing). Models with different channels cannot share a run.
    """
    entries = [get(name) for name in model_names]
    if not entries:
        raise ValueError("no models selected: the pipeline must train at least one model")
    channels = {m.image_shape.channels for m in entries}
    if len(channels) > 1:
        by_shape = "; ".join(f"{shape}: " + ", ".join(m.key for m in entries if m.image_shape == shape)
                             for shape in sorted({m.image_shape for m in entries}, key=str))
        raise ValueError(f"the selected models take images of different channels ({by_shape}); one run "
                         "has one Transform graph, so train them in separate runs (locally: separate --output-dir)")
    return ImageShape(max(m.image_shape.height for m in entries), max(m.image_shape.width for m in entries),
                      channels.pop())
