"""Which models and versions are served: TF Serving's file-system source,
aspired-versions manager and availability-preserving policy
(tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc,
core/aspired_versions_manager.cc, model_servers/server_core.cc).

Each model's base path holds all-digit version folders ('00000123' is
version 123); a folder is a version once it holds saved_model.pb (pushers
write it last). The manager polls the base paths, loads the versions the
model's version policy asks for (latest 1 by default), replays their warmup
records, and only once a wanted version is AVAILABLE unloads the versions no
longer wanted, so requests never find no version. A version that fails to
load is retried --max_num_load_retries times, --load_retry_interval_micros
apart; beyond TF Serving, it is also retried afresh whenever its folder's
files change (files still being copied in).
"""
import dataclasses
import logging
import os
import threading
from typing import Dict, List, Optional, Set, Tuple

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from components.formats import versions as version_folders
from serving import model_config as configs
from serving import warmup
from serving.batching import Batcher, BatchingOptions
from serving.errors import ServingError, invalid_argument, not_found
from serving.request_options import RequestOptions
from serving.servable import SERVE_TAG, Servable, has_saved_model, one_line_message

log = logging.getLogger(__name__)
State = get_model_status_pb2.ModelVersionStatus.State


@dataclasses.dataclass
class VersionRecord:
    """What GetModelStatus reports about one version."""
    version: int
    path: str = ""
    state: int = State.START
    error: str = ""
    error_code: grpc.StatusCode = grpc.StatusCode.OK
    servable: Optional[Servable] = None
    # The folder as it was at the last load attempt.
    folder_state: Tuple = ()


@dataclasses.dataclass
class ManagerOptions:
    file_system_poll_wait_seconds: float = 1.0
    max_num_load_retries: int = 5
    load_retry_interval_seconds: float = 60.0
    batching: Optional[BatchingOptions] = None
    enable_model_warmup: bool = True
    warmup_iterations: int = 1
    saved_model_tags: Tuple[str, ...] = (SERVE_TAG,)
    allow_version_labels_for_unavailable_models: bool = False
    request_options: RequestOptions = RequestOptions()


def list_versions(base_path: str) -> Dict[int, str]:
    """version -> folder of the all-digit sub-folders that hold a saved_model.pb."""
    return {entry.version: entry.path for entry in version_folders.list_versions(base_path)
            if has_saved_model(entry.path)}


def aspired_versions(model_config, available: List[int]) -> List[int]:
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


def no_version_message(name: str, base_path: str) -> str:
    """TF Serving's words for a base path without versions, and what was given instead."""
    if not os.path.isdir(base_path):
        return f"Could not find base path {base_path} for servable {name}"
    message = (f"No versions of servable {name} found under base path {base_path}. Did you forget to name "
               "your leaf directory as a number (eg. '/1/')?")
    if has_saved_model(base_path):
        return (f"{message} Here it is one version's SavedModel: the base path is the folder of the model's "
                f"version folders ({os.path.dirname(base_path)}).")
    models = sorted(name for name in os.listdir(base_path) if list_versions(os.path.join(base_path, name)))
    if models:
        return (f"{message} Here it holds model folders ({', '.join(models[:5])}): give one of them as the "
                "base path, or list them in a --model_config_file.")
    return message


class _Model:
    def __init__(self, config):
        self.config = config
        self.versions: Dict[int, VersionRecord] = {}
        self.warned_no_versions = False

    def available(self) -> List[VersionRecord]:
        return sorted((r for r in self.versions.values() if r.state == State.AVAILABLE), key=lambda r: r.version)


class ModelManager:
    """Loads, serves and unloads model versions; thread-safe."""

    def __init__(self, options: ManagerOptions):
        self._options = options
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._config_lock = threading.Lock()
        self._stop = threading.Event()
        self._changed = threading.Condition(self._lock)
        self._thread: Optional[threading.Thread] = None
        self._models: Dict[str, _Model] = {}
        self._config = configs.ModelServerConfig()
        self._labels: Dict[str, Dict[str, int]] = {}

    # --- configuration ----------------------------------------------------------

    def _available_versions(self, name: str) -> Set[int]:
        with self._lock:
            model = self._models.get(name)
            return {record.version for record in model.available()} if model else set()

    def reload_config(self, config: configs.ModelServerConfig) -> None:
        """ServerCore::ReloadConfig: check, set the labels, add and remove
        models, then wait until every new model is available (or failed).
        ServingError when the config is refused or a new model fails."""
        with self._config_lock:
            configs.check_config(config, self._config)
            if config.WhichOneof("config") is None:
                log.info("Taking no action for empty config.")
                return
            labels = configs.version_labels(config, self._available_versions, self._labels,
                                            self._options.allow_version_labels_for_unavailable_models)
            with self._poll_lock:
                new_models = self._apply(config)
                self._config = config
                with self._lock:
                    self._labels = labels
            self.poll()
            self._wait_until_available(new_models)

    def _apply(self, config) -> List[str]:
        wanted = {model.name: model for model in config.model_config_list.config}
        with self._lock:
            removed = [self._models.pop(name) for name in list(self._models) if name not in wanted]
            new = [name for name in wanted if name not in self._models]
            for name, model_config in wanted.items():
                if name in self._models:
                    self._models[name].config = model_config
                else:
                    self._models[name] = _Model(model_config)
        for model in removed:
            log.info("removing model %s", model.config.name)
            for record in list(model.versions.values()):
                self._unload(model, record)
        return new

    def _wait_until_available(self, names: List[str]) -> None:
        """WaitUntilModelsAvailable: each model's aspired versions loaded (or
        failed) with one AVAILABLE, or an error naming the models that ended
        without one. Waits for as long as a model has no version on disk, as
        TF Serving does."""
        failed = []
        with self._lock:
            for name in names:
                while not self._stop.is_set():
                    model = self._models.get(name)
                    if model is None:
                        break
                    loading = [r for r in model.versions.values() if r.state in (State.START, State.LOADING)]
                    if model.available() and not loading:
                        break
                    errors = [r for r in model.versions.values() if r.state == State.END and r.error]
                    if errors and not loading and not model.available():
                        failed.append((name, max(errors, key=lambda r: r.version)))
                        break
                    self._changed.wait(0.5)
        if failed:
            details = "".join(f"{{{{name: {name} version: {record.version}}} due to error: {record.error}}}, "
                              for name, record in failed)
            raise ServingError(grpc.StatusCode.UNKNOWN,
                               f"{len(failed)} model(s) did not become available: {{{details}}}")

    # --- polling ----------------------------------------------------------------

    def start(self, config: configs.ModelServerConfig) -> None:
        """The first config: polls, loads and waits (see reload_config), then
        keeps polling in the background every --file_system_poll_wait_seconds."""
        if self._options.file_system_poll_wait_seconds > 0:
            self._thread = threading.Thread(target=self._poll_forever, daemon=True, name="model-poller")
            self._thread.start()
        self.reload_config(config)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            models = list(self._models.values())
        for model in models:
            for record in list(model.versions.values()):
                self._unload(model, record)

    def describe(self) -> str:
        """The served models with their latest AVAILABLE version, for logs."""
        with self._lock:
            parts = []
            for name, model in sorted(self._models.items()):
                available = model.available()
                parts.append(f"{name} (version {available[-1].version})" if available
                             else f"{name} (no version yet)")
        return ", ".join(parts) or "no models"

    def _poll_forever(self) -> None:
        while not self._stop.wait(self._options.file_system_poll_wait_seconds):
            try:
                self.poll()
            except Exception:  # a bad poll must not end polling
                log.exception("polling the model base paths failed")

    def poll(self) -> None:
        """One pass: load wanted versions, then unload unwanted ones if safe."""
        with self._poll_lock:
            with self._lock:
                models = list(self._models.values())
            for model in models:
                if self._stop.is_set():
                    return
                self._poll_model(model)

    def _poll_model(self, model: _Model) -> None:
        on_disk = list_versions(model.config.base_path)
        wanted = aspired_versions(model.config, sorted(on_disk))
        if not wanted and not model.warned_no_versions:
            log.warning("%s", no_version_message(model.config.name, model.config.base_path))
        model.warned_no_versions = not wanted
        for version in reversed(wanted):  # the newest first, as TF Serving's policy loads them
            record = model.versions.get(version)
            if record is None or record.path != on_disk[version] and record.state != State.AVAILABLE:
                record = VersionRecord(version, on_disk[version])
                with self._lock:
                    model.versions[version] = record
            if self._should_load(record):
                self._load(model, record)
        # TF Serving's availability-preserving policy: a version no longer
        # wanted (a newer one arrived, or its folder was deleted) is unloaded
        # once a wanted version serves, or at once when none is wanted.
        if not wanted or any(model.versions[v].state == State.AVAILABLE for v in wanted):
            for record in list(model.versions.values()):
                if record.version not in wanted and record.state == State.AVAILABLE:
                    self._unload(model, record)

    @staticmethod
    def _should_load(record: VersionRecord) -> bool:
        if record.state == State.START:
            return True
        if record.state != State.END:
            return False
        if not record.error:  # unloaded earlier, wanted again (a newer version was deleted)
            return True
        return folder_state(record.path) != record.folder_state  # rewritten since it failed

    def _load(self, model: _Model, record: VersionRecord) -> None:
        """Loads with TF Serving's retries; the record ends AVAILABLE or END with the error."""
        name, version, path = model.config.name, record.version, record.path
        with self._lock:
            record.state, record.error, record.error_code = State.LOADING, "", grpc.StatusCode.OK
            self._changed.notify_all()
        attempts = 1 + max(self._options.max_num_load_retries, 0)
        for attempt in range(attempts):
            record.folder_state = folder_state(path)
            log.info("Loading servable version {name: %s version: %d} from %s", name, version, path)
            try:
                servable = self._load_servable(name, version, path)
            except Exception as error:  # any failure to load is reported, never raised
                code = error.code if isinstance(error, ServingError) else grpc.StatusCode.UNKNOWN
                message = error.message if isinstance(error, ServingError) else one_line_message(str(error))
                log.error("Failed to load {name: %s version: %d} from %s (attempt %d of %d): %s",
                          name, version, path, attempt + 1, attempts, message)
                if attempt + 1 < attempts and not self._stop.wait(self._options.load_retry_interval_seconds):
                    continue
                with self._lock:
                    record.state, record.error, record.error_code = State.END, message, code
                    self._changed.notify_all()
                return
            with self._lock:
                record.servable = servable
                record.state = State.AVAILABLE
                self._changed.notify_all()
            log.info("Successfully loaded servable version {name: %s version: %d}", name, version)
            return

    def _load_servable(self, name: str, version: int, path: str) -> Servable:
        servable = Servable.load(name, version, path, self._options.saved_model_tags)
        if self._options.batching is not None:
            servable.runner = Batcher(servable.run_signature, self._options.batching)
        if self._options.enable_model_warmup:
            try:
                replayed = warmup.replay(servable, warmup.read_warmup_logs(path), self._options.request_options,
                                         self._options.warmup_iterations)
            except Exception:
                self._close(servable)
                raise
            if replayed:
                log.info("%s version %d: replayed %d warmup requests", name, version, replayed)
        return servable

    @staticmethod
    def _close(servable: Servable) -> None:
        if isinstance(servable.runner, Batcher):
            servable.runner.close()

    def _unload(self, model: _Model, record: VersionRecord) -> None:
        with self._lock:
            if record.state != State.AVAILABLE:
                return
            record.state = State.UNLOADING
            servable, record.servable = record.servable, None
        # Requests in flight keep their reference to the servable; its session
        # closes when the last of them lets go.
        self._close(servable)
        with self._lock:
            record.state = State.END
            self._changed.notify_all()
        log.info("Unloaded servable version {name: %s version: %d}", model.config.name, record.version)

    # --- lookups ----------------------------------------------------------------

    def model_names(self) -> List[str]:
        with self._lock:
            return sorted(self._models)

    def resolve(self, model_spec: model_pb2.ModelSpec) -> Servable:
        """ServableRequestFromModelSpec, then the servable it names."""
        name = model_spec.name
        if not name:
            raise invalid_argument("ModelSpec has no name specified.")
        with self._lock:
            model = self._models.get(name)
            choice = model_spec.WhichOneof("version_choice")
            if choice == "version_label":
                label = model_spec.version_label
                version = self._labels.get(name, {}).get(label)
                if version is None:
                    raise invalid_argument(f"Unrecognized servable version label: {label}")
            elif choice == "version":
                version = model_spec.version.value
            else:
                available = model.available() if model else []
                if not available:
                    raise not_found(f"Servable not found for request: Latest({name})")
                return available[-1].servable
            record = model.versions.get(version) if model else None
            if record is None or record.state != State.AVAILABLE:
                raise not_found(f"Servable not found for request: Specific({name}, {version})")
            return record.servable

    def status(self, model_spec: model_pb2.ModelSpec) -> List[VersionRecord]:
        """GetModelStatus: every known version of the model, or the one asked
        for by number (a version label is not looked at, as in TF Serving)."""
        with self._lock:
            model = self._models.get(model_spec.name)
            records = sorted(model.versions.values(), key=lambda r: r.version) if model else []
            if model_spec.HasField("version"):
                records = [r for r in records if r.version == model_spec.version.value]
            records = [dataclasses.replace(r, servable=None) for r in records]
        if not records:
            if model_spec.HasField("version"):
                raise not_found(f"Could not find version {model_spec.version.value} of model {model_spec.name}")
            raise not_found(f"Could not find any versions of model {model_spec.name}")
        return records
