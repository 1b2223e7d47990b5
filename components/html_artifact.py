"""The artifact type of the pipeline's human-readable pages (evaluation report,
explanation gallery).

Its type name is KFP v2's `system.HTML`: Kubeflow's UI renders the file at such
an artifact's URI. On KFP, TFX's container entrypoint imports a custom type by
that name as `module.Class`; the package `system` (components/kfp_system,
installed under that name) makes `system.HTML` this class. Locally TFX makes
every output URI a directory, so the page goes inside it, and the component
logs the page's path.
"""
import os

import tensorflow as tf
from tfx.types import artifact


class HtmlPage(artifact.Artifact):
    """A self-contained HTML page (pictures embedded or beside it)."""
    TYPE_NAME = "system.HTML"


def page_path(uri: str, file_name: str) -> str:
    """Where the page goes: inside the URI when it is a directory (local runs),
    else the URI itself (KFP, where the UI reads the URI). The folder that holds
    the URI is created if missing: orchestrators need not create it (the
    open-source KFP launcher creates folders only for its local copies of
    bucket paths, component/launcher_v2.go prepareOutputFolders)."""
    if tf.io.gfile.isdir(uri):
        return os.path.join(uri, file_name)
    parent = os.path.dirname(uri)
    if parent:
        tf.io.gfile.makedirs(parent)
    return uri
