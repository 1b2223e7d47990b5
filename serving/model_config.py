"""TF Serving's ModelServerConfig: read from --model_config_file, built for
--model_name/--model_base_path, and checked as ServerCore checks it before
serving it (tensorflow_serving/model_servers/server_core.cc and server.cc)."""
import sys

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.errors import failed_precondition, invalid_argument

TENSORFLOW_PLATFORM = "tensorflow"
ModelServerConfig = model_server_config_pb2.ModelServerConfig


def single_model_config(model_name: str, model_base_path: str) -> ModelServerConfig:
    """BuildSingleModelConfig: one model, its base path as given."""
    config = ModelServerConfig()
    config.model_config_list.config.add(name=model_name, base_path=model_base_path,
                                        model_platform=TENSORFLOW_PLATFORM)
    return config


def read_model_config(path: str) -> ModelServerConfig:
    """ParseProtoTextFile: a file that does not parse fails with protobuf's own
    words, which TF Serving's C++ parser also writes to stderr."""
    try:
        with open(path, encoding="utf-8") as config_file:
            text = config_file.read()
    except OSError as error:
        raise invalid_argument(f"{path}: {error.strerror or error}") from None
    try:
        return text_format.Parse(text, ModelServerConfig())
    except text_format.ParseError as error:
        message = f"Error parsing text-format tensorflow.serving.ModelServerConfig: {error}"
        print(message, file=sys.stderr, flush=True)
        raise invalid_argument(f"{path}: {message}") from None


def _is_relative(path: str) -> bool:
    return "://" not in path and not path.startswith("/")


def _platform(model_config) -> str:
    """GetPlatform: model_platform, or the deprecated model_type."""
    if model_config.model_type:
        if model_config.model_platform:
            raise invalid_argument(
                "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                f"ModelServerConfig::model_platform, model name is {model_config.name}")
        if model_config.model_type != model_server_config_pb2.TENSORFLOW:
            raise invalid_argument(f"ModelServerConfig::model_type choice {model_config.model_type} "
                                   "not supported.")
        return TENSORFLOW_PLATFORM
    if not model_config.model_platform:
        raise invalid_argument(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            f"ModelServerConfig::model_platform, model name is {model_config.name}")
    return model_config.model_platform


def check_config(config: ModelServerConfig, current: ModelServerConfig) -> None:
    """What ServerCore::ReloadConfig refuses before it changes anything."""
    kind, current_kind = config.WhichOneof("config"), current.WhichOneof("config")
    if current_kind is not None and config != current and not (
            kind == current_kind == "model_config_list"):
        raise failed_precondition("Cannot transition to requested config. It is only legal to transition "
                                  "from one ModelConfigList to another.")
    if kind == "custom_model_config":
        raise invalid_argument("ModelServer does not yet support custom model config.")
    if kind is None:
        return
    names = set()
    for model_config in config.model_config_list.config:
        if model_config.name in names:
            raise invalid_argument(f"Illegal to list model {model_config.name} multiple times in config list")
        names.add(model_config.name)
    for model_config in config.model_config_list.config:
        if _is_relative(model_config.base_path):
            raise invalid_argument(f"Expected model {model_config.name} to have an absolute path or URI; "
                                   f"got base_path()={model_config.base_path}")
    old_platforms = {model.name: _platform(model) for model in current.model_config_list.config}
    for model_config in config.model_config_list.config:
        platform = _platform(model_config)
        if model_config.name in old_platforms and old_platforms[model_config.name] != platform:
            raise invalid_argument(
                f"Illegal to change a model's platform. For model {model_config.name} platform was "
                f"{old_platforms[model_config.name]} and new platform requested is {platform}")
        if platform != TENSORFLOW_PLATFORM:
            raise failed_precondition(f"PlatformConfigMap has no entry for platform {platform}")


def check_reload_request_kind(config: ModelServerConfig) -> None:
    """HandleReloadConfigRequest takes model config lists only (model_service_impl.cc)."""
    if config.WhichOneof("config") != "model_config_list":
        raise invalid_argument("ServerModelConfig type not supported by HandleReloadConfigRequest. "
                               "Only ModelConfigList is currently supported")


def version_labels(config: ModelServerConfig, available, previous, allow_unavailable: bool):
    """UpdateModelVersionLabelMap: {model: {label: version}}. A label must name
    an AVAILABLE version, unless --allow_version_labels_for_unavailable_models
    and the label is new or keeps its version. available(name) -> set of versions."""
    labels = {}
    for model_config in config.model_config_list.config:
        loaded = available(model_config.name)
        for label, version in model_config.version_labels.items():
            old = previous.get(model_config.name, {}).get(label)
            allowed = allow_unavailable and (old is None or old == version)
            if not allowed and version not in loaded:
                raise failed_precondition(f"Request to assign label to version {version} of model "
                                          f"{model_config.name}, which is not currently available for inference")
            labels.setdefault(model_config.name, {})[label] = version
    return labels

