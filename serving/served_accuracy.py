"""Accuracy of served models, end to end: serve the models the Pusher listed
in the serving root's models.config (as `catsdogs serve
--model_config_file=...` does) on a private UNIX socket, send an image
folder's split through the gRPC client, stop the server. `catsdogs run-local`
ends with it, so `make run` shows what a client of the pushed models gets."""
import dataclasses
import logging
import os
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from components import contract
from components.pusher.serving_layout import MODELS_CONFIG_FILE
from serving.client import ClientOptions, PredictionClient
from serving.model_config import read_model_config
from serving.server import ModelServer, ServerOptions


@dataclasses.dataclass(frozen=True)
class ModelAccuracy:
    model: str
    version: int
    images: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.images if self.images else 0.0


def labelled_images(image_dir: str, split: str = contract.TEST_SPLIT) -> List[Tuple[str, str]]:
    """(path, class name) for every image of image_dir/split/<class>/."""
    split_dir = os.path.join(image_dir, split)
    if not os.path.isdir(split_dir):
        raise FileNotFoundError(f"no '{split}' folder in {image_dir}")
    images = []
    for class_name in sorted(os.listdir(split_dir)):
        class_dir = os.path.join(split_dir, class_name)
        if os.path.isdir(class_dir):
            images.extend((os.path.join(class_dir, name), class_name) for name in sorted(os.listdir(class_dir))
                          if name.lower().endswith(contract.IMAGE_EXTENSIONS))
    if not images:
        raise FileNotFoundError(f"no images in {split_dir}/<class>/")
    return images


def measure_served_accuracy(model_base_path: str, image_dir: str, split: str = contract.TEST_SPLIT,
                            model_names: Optional[Sequence[str]] = None, batch_size: int = 32,
                            report: Callable[[str], None] = logging.getLogger(__name__).info
                            ) -> Dict[str, ModelAccuracy]:
    """Serves the models of model_base_path/models.config (or those named) over
    gRPC, predicts image_dir/split/<class>/* in batches through the client,
    reports one accuracy line per model and returns them by model name."""
    config_file = os.path.join(model_base_path, MODELS_CONFIG_FILE)
    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"no {MODELS_CONFIG_FILE} under {model_base_path} (the Pusher writes it)")
    served = [config.name for config in read_model_config(config_file).model_config_list.config]
    if not served:
        raise FileNotFoundError(f"no pushed model versions under {model_base_path}")
    names = list(model_names) if model_names else served
    missing = sorted(set(names) - set(served))
    if missing:
        raise FileNotFoundError(f"no pushed versions of {', '.join(missing)} under {model_base_path}")
    images = labelled_images(image_dir, split)
    results = {}
    with tempfile.TemporaryDirectory() as socket_dir:
        socket_path = os.path.join(socket_dir, "grpc.sock")
        options = ServerOptions(model_config_file=config_file, port=0, grpc_socket_path=socket_path,
                                file_system_poll_wait_seconds=0)
        with ModelServer(options), \
                PredictionClient(f"unix:{socket_path}", ClientOptions(timeout_seconds=120)) as client:
            report(f"serving {', '.join(names)} from {config_file} (gRPC); predicting {len(images)} {split} images")
            for name in names:
                results[name] = _accuracy(client, name, images, batch_size, split, report)
    return results


def _accuracy(client: PredictionClient, name: str, images, batch_size: int, split: str, report) -> ModelAccuracy:
    correct, version = 0, 0
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        result = client.predict_files([path for path, _ in batch], name)
        version = result.version
        correct += sum(p.class_name == label for p, (_, label) in zip(result.predictions, batch))
    report(f"{name} version {version}: accuracy {correct / len(images):.3f} "
           f"({correct}/{len(images)} {split} images, via gRPC)")
    return ModelAccuracy(name, version, len(images), correct)
