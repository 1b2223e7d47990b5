"""What a local run decided, read back from ML Metadata: per served model, the
push outcome (version and folder, or the reason for not pushing) and the path
of the evaluation report. `catsdogs run-local` prints these lines."""
from typing import Dict, List

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components import html_artifact
from components.evaluation import report
from components.formats import pushed_model

PUSHED_MODEL_TYPE = "PushedModel"


def _string(artifact: metadata_store_pb2.Artifact, key: str) -> str:
    return artifact.custom_properties[key].string_value if key in artifact.custom_properties else ""


def _int(artifact: metadata_store_pb2.Artifact, key: str) -> int:
    return artifact.custom_properties[key].int_value if key in artifact.custom_properties else 0


def _latest_by_model(artifacts) -> Dict[str, metadata_store_pb2.Artifact]:
    latest = {}
    for artifact in sorted(artifacts, key=lambda a: a.id):
        name = _string(artifact, pushed_model.MODEL_NAME_KEY)
        if name:
            latest[name] = artifact
    return latest


def summary_lines(sqlite_path: str) -> List[str]:
    """One line per served model for its push, one for its report; newest artifacts win
    (a run served from cache keeps the previous run's answers, which still hold)."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = sqlite_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(config)
    pushes = _latest_by_model(store.get_artifacts_by_type(PUSHED_MODEL_TYPE))
    reports = _latest_by_model(a for a in store.get_artifacts_by_type(html_artifact.HtmlPage.TYPE_NAME)
                               if report.REPORT_PATH_PROPERTY in a.custom_properties)
    lines = []
    for name in sorted(set(pushes) | set(reports)):
        if name in pushes:
            push = pushes[name]
            if _int(push, pushed_model.PUSHED_KEY):
                lines.append(f"{name}: serving version {_int(push, pushed_model.VERSION_KEY)} from "
                             f"{_string(push, pushed_model.DESTINATION_KEY)} "
                             f"({_string(push, pushed_model.REASON_KEY)})")
            else:
                lines.append(f"{name}: NOT pushed: {_string(push, pushed_model.REASON_KEY)}")
        if name in reports:
            lines.append(f"{name}: evaluation report {_string(reports[name], report.REPORT_PATH_PROPERTY)}")
    return lines
