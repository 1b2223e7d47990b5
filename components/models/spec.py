"""ModelSpec: everything the pipeline knows about one model, declared once in the
model's own folder (components/models/<model>/__init__.py) and listed in
pipeline/model_registry.py. Importable without TensorFlow (the CLI lists models
and checks settings before any Trainer module is loaded)."""
import dataclasses
import importlib
from typing import Any, Callable, Mapping, Optional, Type

from components.evaluation.thresholds import BlessingThresholds
from components.image_shape import ImageShape


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    key: str
    """Short id: component id suffix (Trainer_<key>), CLI alias (`--models <key>`,
    `--set <key>.NAME=VALUE`, `--min-accuracy <key>=VALUE`), KFP parameter prefix
    (<key>_hparams)."""
    served_name: str
    """TF Serving's model name: the Pusher's sub-folder of the serving base path,
    and the name clients ask for."""
    title: str
    """What logs and reports call it."""
    package: str
    """The model's folder as a dotted package (its __init__'s __name__): the Trainer's
    run_fn is <package>.trainer.run_fn, so a copied folder names its own."""
    default_hparams: Any
    """The model's hyper-parameters unless a run says otherwise: an instance of its
    dataclass (a CustomConfig), over which every custom_config is read."""
    default_thresholds: BlessingThresholds
    image_shape: ImageShape
    """What the model takes: Transform decodes and resizes every image to it."""
    presets: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Named hyper-parameters other than the default (`--preset NAME`); a preset this
    model does not name leaves it at default_hparams."""
    quick_hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Hyper-parameters of a smoke run (`--quick`: run-local and compile), over the preset's."""
    quick_min_accuracy: Optional[float] = None
    """The blessing floor of a smoke run, where the default one would be decided by one
    or two of the shipped sample's 40 test images (2.5 points each); None keeps it."""

    def __post_init__(self):
        for name, hparams in self.presets.items():
            if not isinstance(hparams, self.hparams_type):
                raise TypeError(f"{self.key}'s preset {name!r} is a {type(hparams).__name__}, "
                                f"not its {self.hparams_type.__name__}")
        self.default_hparams.updated(self.quick_hparams)  # a typo fails at import, naming the field

    @property
    def hparams_type(self) -> Type:
        return type(self.default_hparams)

    def hparams(self, custom_config: Optional[Mapping[str, Any]]) -> Any:
        """The Trainer's custom_config read over this model's defaults: a partial one (a KFP
        run's <key>_hparams edited in the UI) keeps every default it does not name."""
        return self.default_hparams.updated(dict(custom_config or {}))

    def preset(self, name: str) -> Any:
        """The hyper-parameters of a named preset (the defaults where this model has none)."""
        return self.presets.get(name, self.default_hparams)

    def component_id(self, component: str) -> str:
        """This model's instance of a per-model component, e.g. Trainer_scratch."""
        return f"{component}_{self.key}"

    @property
    def trainer_id(self) -> str:
        return self.component_id("Trainer")

    @property
    def explain_gallery_id(self) -> str:
        return self.component_id("ExplainGallery")

    @property
    def run_fn(self) -> str:
        """The Trainer's module function, by dotted path."""
        return f"{self.package}.trainer.run_fn"

    def load_run_fn(self) -> Callable:
        """The Trainer's run_fn itself (imports its module, hence TensorFlow)."""
        module_name, function = self.run_fn.rsplit(".", 1)
        return getattr(importlib.import_module(module_name), function)
