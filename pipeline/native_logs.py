"""Keeps TensorFlow's C++ start-up log from the user (`catsdogs` without --verbose).

TensorFlow writes its start-up lines (oneDNN, CUDA drivers, CPU features)
through absl before absl's log is initialised, so TF_CPP_MIN_LOG_LEVEL does not
reach them: they are taken out of file descriptor 2 while TensorFlow is
imported, and everything else written meanwhile is passed on. C++ messages
after the import (such as "failed call to cuInit" on a machine without a GPU)
follow TF_CPP_MIN_LOG_LEVEL, set to 3 unless the user set it: TensorFlow's
errors reach Python as exceptions anyway.
"""
import contextlib
import os
import re
import sys
import tempfile

# absl's C++ log line: severity letter, MMDD, time, thread id, file:line]
NOISE = re.compile(r"[IWE]\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] "
                   r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                   r"|To enable the following instructions: ")  # the 2nd line of cpu_feature_guard's message


@contextlib.contextmanager
def native_stderr_filtered():
    """Within the block, whatever is written to file descriptor 2 (by Python or
    C++) is held back; at the end, all of it but NOISE lines goes to stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not NOISE.match(line)))
            sys.stderr.flush()


def quiet_tensorflow_start() -> None:
    """Imports TensorFlow with its start-up log filtered out; later C++ logging
    follows TF_CPP_MIN_LOG_LEVEL (3 unless already set)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    with native_stderr_filtered():
        import tensorflow  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
