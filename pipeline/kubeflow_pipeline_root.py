"""Which pipeline roots a KFP run of this pipeline can use, and why.

Two programs must both reach the root: the KFP backend, which places every
output there (the open-source backend accepts only gs://, s3://, minio:// and
mem:// roots, backend/src/v2/objectstore/config.go ParseBucketPathToConfig),
and TFX's executors, which write their artifacts with tf.io.gfile. TensorFlow
has a gs:// file system built in; s3:// lives in tensorflow-io, which the
pipeline image does not carry, and nothing implements minio:// or mem://.
So gs:// is the root for a cluster. An absolute local path serves where every
task mounts it at the same path (Vertex AI does not, the open-source backend
refuses it; `make test-kfp` runs the spec that way).

Kept free of TFX and TensorFlow imports: `catsdogs submit` checks roots too.
"""
from typing import Optional

CLUSTER_SCHEME = "gs"
BACKEND_SCHEMES = ("gs", "s3", "minio", "mem")
"""The schemes the open-source backend takes (objectstore/config.go)."""
BACKEND_DEFAULT_ROOT = "minio://mlpipeline/v2/artifacts"
"""The open-source backend's root when neither the run nor the kfp-launcher
ConfigMap names one (backend/src/v2/config/env.go defaultPipelineRoot)."""


def scheme_of(root: str) -> str:
    return root.split("://", 1)[0] if "://" in root else ""


def check(root: str) -> Optional[str]:
    """None for a usable root, else a warning to show (a local path); raises
    ValueError, with the reason, for a root TFX cannot write."""
    scheme = scheme_of(root)
    if scheme == CLUSTER_SCHEME:
        return None
    if not scheme:
        if not root.startswith("/"):
            raise ValueError(f"pipeline root {root!r} must be gs://BUCKET/PATH or an absolute path")
        return (f"pipeline root {root} is a local path: only a runner that mounts it into every task "
                "at that path can use it (make test-kfp does); the open-source KFP backend accepts "
                f"only {', '.join(s + '://' for s in BACKEND_SCHEMES)} roots, and of those TFX can "
                f"write only {CLUSTER_SCHEME}://")
    raise ValueError(
        f"pipeline root {root!r}: TFX's executors write artifacts with tf.io.gfile, which has no "
        f"{scheme}:// file system in the pipeline image, so the first task would fail. "
        f"Use a {CLUSTER_SCHEME}://BUCKET/PATH root.")


def missing_root_warning() -> str:
    return ("no --pipeline-root: the package carries no defaultPipelineRoot, so each run must be "
            "given one (`catsdogs submit --pipeline-root`, or the KFP UI's run form); without it "
            "the backend uses the kfp-launcher ConfigMap's defaultPipelineRoot, else "
            f"{BACKEND_DEFAULT_ROOT}, which TFX cannot write (every task would fail)")
