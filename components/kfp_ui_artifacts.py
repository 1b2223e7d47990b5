"""The artifact types KFP's UI draws as metrics: `system.Metrics` (scalars) and
`system.ClassificationMetrics` (confusion matrix, ROC curve). Kept apart from
the code that fills them (components/evaluation/ui_metrics.py) so that TFX's KFP
entrypoint, which imports every artifact type of a task before it starts
(through the package `system`, components/kfp_system), does not import TFMA.
"""
from tfx.types import artifact


class Metrics(artifact.Artifact):
    """Scalar metrics of one evaluated model version, as custom properties."""
    TYPE_NAME = "system.Metrics"


class ClassificationMetrics(artifact.Artifact):
    """Confusion matrix and ROC curve of one evaluated model version, as custom properties."""
    TYPE_NAME = "system.ClassificationMetrics"
