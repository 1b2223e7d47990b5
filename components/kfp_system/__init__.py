"""KFP's `system.*` artifact types, importable under the names KFP gives them.

Installed as the top-level package `system` (see setup.py's package_dir), so
that `system.HTML` is both:
- the MLMD type name KFP's UI renders as a page (its run view lists artifacts
  of type `system.HTML` under "HTML" and shows the file at their URI), and
- an importable `module.Class` path: TFX's KFP v2 container entrypoint
  (kubeflow_v2_entrypoint_utils._retrieve_class_path) imports every custom
  artifact type by its schema title before it runs an executor.

Likewise `system.Metrics` and `system.ClassificationMetrics`, which the UI
draws as scalar metrics, a confusion matrix and a ROC curve.
"""
from components.html_artifact import HtmlPage as HTML
from components.kfp_ui_artifacts import ClassificationMetrics, Metrics

__all__ = ["HTML", "Metrics", "ClassificationMetrics"]
