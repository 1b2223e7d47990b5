"""What `catsdogs run-local` shows without --verbose: a logging filter that keeps
the lines a person follows a run by."""
import logging
import os


class ProgressLogFilter(logging.Filter):
    """Keeps what a person follows a run by: this project's own log lines
    (ingestion counts, training epochs, push decisions), component start and
    finish, and every warning. TFX's INFO output is mostly multi-line dumps of
    MLMD artifacts and executions, which bury the progress."""

    PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    PROJECT_DIRS = (os.path.join(PROJECT_ROOT, "pipeline", ""), os.path.join(PROJECT_ROOT, "components", ""),
                    os.path.join(PROJECT_ROOT, "serving", ""))

    # Warnings TFX repeats for every input resolution on a SQLite MLMD (it has
    # no ZetaSQL); they say nothing about the run.
    KNOWN_NOISE = ("ArtifactQuery.property_predicate is not supported",
                   "Fallback to non-ZetaSQL contexts execution query")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.pathname.startswith(self.PROJECT_DIRS):
            return True
        if record.levelno >= logging.WARNING:
            return not str(record.msg).startswith(self.KNOWN_NOISE)
        message = str(record.msg)
        return message.startswith("Component ") and message.rstrip(".").endswith(("running", "finished"))


def show_progress_only() -> None:
    """Every handler of the root logger keeps only progress lines."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(ProgressLogFilter())
