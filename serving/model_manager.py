"""Which models and versions are served: TF Serving's file-system source and
availability-preserving version policy.

Each model has a base path holding integer-named version folders; a folder is
a version once it holds saved_model.pb. The manager polls the base paths,
loads the versions the model's version policy asks for (latest N by default),
replays their warmup records, and only once a wanted version is AVAILABLE
unloads the versions no longer wanted, so requests never find no version.
A version deleted from disk is unloaded the same way (at once if no version
is left). A version that fails to load is retried with backoff, and afresh
whenever its folder changes (files still being copied in).
"""
import dataclasses
import logging
import os
import threading
import time
from typing import Dict, List, Optional, Tuple

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_pb2
from tensorflow_serving.config import model_server_config_pb2

from components.formats import versions as version_folders
from serving import warmup
from serving.batching import Batcher, BatchingOptions
from serving.errors import ServingError, invalid_argument, not_found
from serving.image_header import DEFAULT_MAX_IMAGE_PIXELS
from serving.servable import SAVED_MODEL_FILE, Servable, one_line_message

log = logging.getLogger(__name__)
State = get_model_status_pb2.ModelVersionStatus.State
TENSORFLOW_PLATFORM = "tensorflow"


@dataclasses.dataclass
class VersionRecord:
    """What GetModelStatus reports about one version."""
    version: int
    state: int = State.START
    error: str = ""
    failed_loads: int = 0
    servable: Optional[Servable] = None
    # The folder as it was at the last load attempt, and when to try again.
    folder_state: Tuple = ()
    retry_at: float = 0.0


@dataclasses.dataclass
class ManagerOptions:
    poll_wait_seconds: float = 1.0
    max_load_retries: int = 5
    batching: Optional[BatchingOptions] = None
    enable_warmup: bool = True
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_retry_wait_seconds: float = 60.0


def list_versions(base_path: str) -> List[int]:
    """Integer-named sub-folders that hold a saved_model.pb, ascending."""
    return [version for version in version_folders.version_numbers(base_path)
            if version_folders.has_saved_model(os.path.join(base_path, str(version)))]


def aspired_versions(model_config: model_server_config_pb2.ModelConfig, available: List[int]) -> List[int]:
    """The versions the model's version policy asks for, among those on disk."""
    policy = model_config.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return list(available)
    if kind == "specific":
        return [version for version in available if version in set(policy.specific.versions)]
    count = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions > 0 else 1
    return available[-count:]


def folder_state(path: str) -> Tuple:
    """(relative path, size, mtime) of every file under path: changes whenever
    a file is added, removed or rewritten."""
    state = []
    for directory, _, names in os.walk(path):
        for name in names:
            file_path = os.path.join(directory, name)
            try:
                info = os.stat(file_path)
            except OSError:  # removed while walking
                continue
            state.append((os.path.relpath(file_path, path), info.st_size, info.st_mtime_ns))
    return tuple(sorted(state))


def _model_folders(serving_root: str) -> List[str]:
    return sorted(name for name in os.listdir(serving_root)
                  if not name.startswith(".") and os.path.isdir(os.path.join(serving_root, name)))


def check_serving_root(serving_root: str) -> None:
    """Raises ValueError, saying what to pass instead, unless serving_root is a
    folder of model folders (<root>/<model name>/<version>/saved_model.pb)."""
    if not os.path.exists(serving_root):
        raise ValueError(f"model base path {serving_root} does not exist")
    if not os.path.isdir(serving_root):
        raise ValueError(f"model base path {serving_root} is not a folder")
    expected = "the serving root holds one folder per model: <root>/<model name>/<version>/saved_model.pb"
    parent = os.path.dirname(serving_root)
    if os.path.isfile(os.path.join(serving_root, SAVED_MODEL_FILE)):
        raise ValueError(f"model base path {serving_root} is one SavedModel (a version folder), not the "
                         f"serving root; {expected}. Pass {os.path.dirname(parent)}")
    numbered = [name for name in _model_folders(serving_root) if name.isdigit()]
    if numbered:
        raise ValueError(f"model base path {serving_root} holds version folders ({', '.join(numbered[:5])}): "
                         f"it is one model's folder, not the serving root; {expected}. Pass {parent} "
                         f"(serving model '{os.path.basename(serving_root)}'), or name the model in "
                         "a --model-config-file")


def config_for_base_path(model_base_path: str) -> model_server_config_pb2.ModelServerConfig:
    """One model per sub-folder of the serving root, named after the folder;
    integer-named folders are versions, never models, and are skipped."""
    config = model_server_config_pb2.ModelServerConfig()
    if os.path.isdir(model_base_path):
        for name in _model_folders(model_base_path):
            if not name.isdigit():
                config.model_config_list.config.add(
                    name=name, base_path=os.path.join(model_base_path, name), model_platform=TENSORFLOW_PLATFORM)
    return config


class _Model:
    def __init__(self, config: model_server_config_pb2.ModelConfig):
        self.config = config
        self.versions: Dict[int, VersionRecord] = {}

    def latest_available(self) -> Optional[Servable]:
        ready = [record for record in self.versions.values() if record.state == State.AVAILABLE]
        return max(ready, key=lambda record: record.version).servable if ready else None


class ModelManager:
    """Loads, serves and unloads model versions; thread-safe."""

    def __init__(self, options: ManagerOptions,
                 model_config: Optional[model_server_config_pb2.ModelServerConfig] = None,
                 model_base_path: Optional[str] = None):
        if model_config is None and model_base_path is None:
            raise ValueError("give a model base path or a model config")
        # Absolute once, here: a relative root must not be joined onto itself
        # when the model folders found under it are resolved.
        model_base_path = os.path.abspath(model_base_path) if model_base_path is not None else None
        if model_config is None:
            check_serving_root(model_base_path)
        self._options = options
        self._model_base_path = model_base_path
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._models: Dict[str, _Model] = {}
        self._fixed_config = model_config
        if model_config is not None:
            self._apply_config(model_config)

    # --- configuration ----------------------------------------------------------

    def _resolve_base_path(self, base_path: str) -> str:
        if os.path.isabs(base_path) or self._model_base_path is None:
            return os.path.abspath(base_path)
        return os.path.join(self._model_base_path, base_path)

    def _apply_config(self, server_config: model_server_config_pb2.ModelServerConfig) -> None:
        if server_config.WhichOneof("config") == "custom_model_config":
            raise ValueError("custom_model_config is not supported; use model_config_list")
        configs = {}
        for model_config in server_config.model_config_list.config:
            if not model_config.name:
                raise ValueError("every model config needs a name")
            if model_config.name in configs:
                raise ValueError(f"model '{model_config.name}' is configured twice")
            if model_config.model_platform not in ("", TENSORFLOW_PLATFORM):
                raise ValueError(f"model '{model_config.name}': platform "
                                 f"'{model_config.model_platform}' is not supported (only tensorflow)")
            resolved = model_server_config_pb2.ModelConfig()
            resolved.CopyFrom(model_config)
            resolved.base_path = self._resolve_base_path(model_config.base_path)
            configs[model_config.name] = resolved
        with self._lock:
            removed = [self._models.pop(name) for name in list(self._models) if name not in configs]
            for name, model_config in configs.items():
                if name in self._models:
                    self._models[name].config = model_config
                else:
                    self._models[name] = _Model(model_config)
        for model in removed:
            for record in list(model.versions.values()):
                self._unload(model, record)

    def reload_config(self, server_config: model_server_config_pb2.ModelServerConfig) -> None:
        """ModelService.HandleReloadConfigRequest: serve exactly these models from now on."""
        with self._poll_lock:
            self._apply_config(server_config)
            self._fixed_config = server_config
        self.poll()

    # --- polling ----------------------------------------------------------------

    def start(self) -> None:
        """Loads what is on disk now, reports what it could not serve, then
        keeps polling in the background."""
        self.poll()
        self._report_unserved()
        if self._options.poll_wait_seconds > 0:
            self._thread = threading.Thread(target=self._poll_forever, daemon=True, name="model-poller")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            models = list(self._models.values())
        for model in models:
            for record in list(model.versions.values()):
                self._unload(model, record)

    def _report_unserved(self) -> None:
        with self._lock:
            models = list(self._models.values())
        waiting = (f"; polling every {self._options.poll_wait_seconds:g} s" if self._options.poll_wait_seconds > 0
                   else "")
        if not models:
            log.warning("no models under %s: expected <model name>/<version>/saved_model.pb there%s",
                        self._model_base_path, waiting)
        for model in models:
            if model.latest_available() is not None:
                continue
            base_path = model.config.base_path
            if not os.path.isdir(base_path):
                log.warning("model %s: base path %s does not exist%s", model.config.name, base_path, waiting)
            elif not model.versions:
                log.warning("model %s: no version under %s yet (expected <version>/saved_model.pb)%s",
                            model.config.name, base_path, waiting)

    def describe(self) -> str:
        """The served models with their latest AVAILABLE version, for logs."""
        with self._lock:
            models = sorted(self._models.items())
            parts = []
            for name, model in models:
                servable = model.latest_available()
                parts.append(f"{name} (version {servable.version})" if servable else f"{name} (no version yet)")
        return ", ".join(parts) or "no models yet"

    def _poll_forever(self) -> None:
        while not self._stop.wait(self._options.poll_wait_seconds):
            try:
                self.poll()
            except Exception:  # a bad poll must not end polling
                log.exception("polling the model base paths failed")

    def poll(self) -> None:
        """One pass: load wanted versions, then unload unwanted ones if safe."""
        with self._poll_lock:
            if self._fixed_config is None:
                self._apply_config(config_for_base_path(self._model_base_path))
            with self._lock:
                models = list(self._models.values())
            for model in models:
                if self._stop.is_set():
                    return
                self._poll_model(model)

    def _poll_model(self, model: _Model) -> None:
        if not os.path.isdir(model.config.base_path):
            return  # nothing to load; what is loaded stays (a base path can be briefly absent)
        on_disk = list_versions(model.config.base_path)
        wanted = aspired_versions(model.config, on_disk)
        for version in wanted:
            record = model.versions.get(version)
            if record is None:
                record = VersionRecord(version)
                with self._lock:
                    model.versions[version] = record
            if self._should_load(model, record):
                self._load(model, record)
        # TF Serving's availability-preserving policy: a version no longer
        # wanted (a newer one arrived, or its folder was deleted) is unloaded
        # once a wanted version serves, or at once when none is wanted.
        if not wanted or any(model.versions[v].state == State.AVAILABLE for v in wanted):
            for record in list(model.versions.values()):
                if record.version not in wanted and record.state == State.AVAILABLE:
                    self._unload(model, record)

    def _should_load(self, model: _Model, record: VersionRecord) -> bool:
        if record.state == State.START:
            return True
        if record.state != State.END:
            return False
        if not record.error:  # unloaded earlier, wanted again (a newer version was deleted)
            record.failed_loads = 0
            return True
        state = folder_state(os.path.join(model.config.base_path, str(record.version)))
        if state != record.folder_state:  # still being written: start over
            record.failed_loads = 0
            return True
        return record.failed_loads <= self._options.max_load_retries and time.monotonic() >= record.retry_at

    def _retry_wait(self, failed_loads: int) -> float:
        first = max(self._options.poll_wait_seconds, 0.1)
        return min(first * 2 ** (failed_loads - 1), self._options.max_retry_wait_seconds)

    def _load(self, model: _Model, record: VersionRecord) -> None:
        name, version = model.config.name, record.version
        path = os.path.join(model.config.base_path, str(version))
        record.state, record.error = State.LOADING, ""
        record.folder_state = folder_state(path)
        log.info("loading %s version %d from %s", name, version, path)
        try:
            servable = Servable.load(name, version, path, self._options.max_image_pixels)
            if self._options.batching is not None:
                servable.runner = Batcher(servable.run_signature, self._options.batching)
            if self._options.enable_warmup:
                replayed = warmup.replay(servable, warmup.read_warmup_logs(path))
                if replayed:
                    log.info("%s version %d: replayed %d warmup requests", name, version, replayed)
        except Exception as error:  # any failure to load is reported, never raised
            record.failed_loads += 1
            record.retry_at = time.monotonic() + self._retry_wait(record.failed_loads)
            record.state = State.END
            record.error = f"Failed to load {name} version {version} from {path}: {one_line_message(str(error))}"
            if record.failed_loads > self._options.max_load_retries:
                log.error("%s; giving up until its folder changes", record.error)
            else:
                log.error("%s", record.error)
            return
        with self._lock:
            record.servable = servable
            record.state = State.AVAILABLE
        log.info("%s version %d is AVAILABLE", name, version)

    def _unload(self, model: _Model, record: VersionRecord) -> None:
        with self._lock:
            if record.state != State.AVAILABLE:
                return
            record.state = State.UNLOADING
            servable, record.servable = record.servable, None
        if isinstance(servable.runner, Batcher):
            servable.runner.close()
        with self._lock:
            record.state = State.END
        log.info("unloaded %s version %d", model.config.name, record.version)

    # --- lookups ----------------------------------------------------------------

    def model_names(self) -> List[str]:
        with self._lock:
            return sorted(self._models)

    def resolve(self, model_spec: model_pb2.ModelSpec) -> Servable:
        """The servable a request's ModelSpec names (latest AVAILABLE by default)."""
        name = model_spec.name
        if not name:
            raise invalid_argument("Missing ModelSpec name")
        with self._lock:
            model = self._models.get(name)
            choice = model_spec.WhichOneof("version_choice")
            if choice == "version_label":
                label = model_spec.version_label
                if model is None or label not in model.config.version_labels:
                    raise not_found(f"Unrecognized servable version label: {label}")
                version = model.config.version_labels[label]
            elif choice == "version":
                version = model_spec.version.value
            else:
                servable = model.latest_available() if model else None
                if servable is None:
                    raise not_found(f"Servable not found for request: Latest({name})")
                return servable
            record = model.versions.get(version) if model else None
            if record is None or record.state != State.AVAILABLE:
                raise not_found(f"Servable not found for request: Specific({name}, {version})")
            return record.servable

    def status(self, model_spec: model_pb2.ModelSpec) -> List[VersionRecord]:
        """GetModelStatus: every known version of the model, or the one asked for."""
        with self._lock:
            model = self._models.get(model_spec.name)
            records = sorted(model.versions.values(), key=lambda r: r.version) if model else []
            choice = model_spec.WhichOneof("version_choice")
            if choice == "version":
                records = [r for r in records if r.version == model_spec.version.value]
            elif choice == "version_label" and model is not None:
                wanted = model.config.version_labels.get(model_spec.version_label)
                records = [r for r in records if r.version == wanted]
            records = [dataclasses.replace(r, servable=None) for r in records]
        if not records:
            what = (f"version {model_spec.version.value} of model {model_spec.name}"
                    if model_spec.HasField("version") else f"any versions of model {model_spec.name}")
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find {what}")
        return records
