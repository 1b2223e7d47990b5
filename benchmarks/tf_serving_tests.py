"""TF Serving's own integration tests, run unmodified against `catsdogs serve`.

    .venv/bin/python -m benchmarks.tf_serving_tests --tf-serving-src DIR [--only TEST ...]

DIR is a checkout of github.com/tensorflow/serving (or TF_SERVING_SRC). Its
tensorflow_serving/model_servers/tensorflow_model_server_test.py runs as it
is, with its test models; nothing of it is copied here. The test locates the
server as $TEST_SRCDIR/tf_serving/tensorflow_serving/model_servers/tensorflow_model_server
(test_util/tensorflow_model_server_test_base.py); this script makes a
temporary TEST_SRCDIR whose `servables` is the checkout's and whose
`tensorflow_model_server` is a two-line launcher running `catsdogs serve`
with every flag passed through as-is. The launcher exists only in that
temporary folder (its --version says what it is), so nothing else can take
it for the real binary. The test's `tensorflow_serving.model_servers`
modules come from the checkout, `tensorflow_serving.apis` from the installed
tensorflow-serving-api.

Writes the pass count and each test's outcome into benchmarks/RESULTS-serving.md.
"""
import argparse
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree

from benchmarks.results_file import replace_section

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO_ROOT, "benchmarks", "RESULTS-serving.md")
TEST_FILE = os.path.join("tensorflow_serving", "model_servers", "tensorflow_model_server_test.py")
SRC_ENV = "TF_SERVING_SRC"
SECTION = "tf-serving-integration-tests"
# Tests that cannot pass here, and why (the goal counts the others).
EXPECTED_FAILURES = {
    "testPredictOnTfLite": "TF Lite models are not served (--prefer_tflite_model is refused)",
    "testPredictWithSignatureDefOnTfLite": "TF Lite models are not served (--prefer_tflite_model is refused)",
    "test_profiler_service_with_valid_trace_request": "the profiler service is not served",
    "test_tf_text": "its model (tf_text_regression/01/saved_model.pb) is not in the public tree",
}


def _launcher(folder: str) -> str:
    path = os.path.join(folder, "tensorflow_model_server")
    with open(path, "w", encoding="utf-8") as script:
        script.write("#!/bin/sh\n"
                     f"PYTHONPATH={shlex.quote(REPO_ROOT)} exec {shlex.quote(sys.executable)} "
                     '-m pipeline.cli serve "$@"\n')
    os.chmod(path, 0o755)
    return path


def _test_srcdir(root: str, tf_serving_src: str) -> str:
    tree = os.path.join(root, "tf_serving", "tensorflow_serving")
    os.makedirs(os.path.join(tree, "model_servers"))
    os.symlink(os.path.join(tf_serving_src, "tensorflow_serving", "servables"), os.path.join(tree, "servables"))
    _launcher(os.path.join(tree, "model_servers"))
    return root


def _python_overlay(root: str, tf_serving_src: str) -> str:
    """A `tensorflow_serving` package spanning the installed API and the checkout."""
    installed = os.path.dirname(importlib.util.find_spec("tensorflow_serving").origin)
    package = os.path.join(root, "tensorflow_serving")
    os.makedirs(package)
    with open(os.path.join(package, "__init__.py"), "w", encoding="utf-8") as init:
        init.write(f"__path__ = [{installed!r}, {os.path.join(tf_serving_src, 'tensorflow_serving')!r}]\n")
    return root


def run_tests(tf_serving_src: str, only) -> dict:
    """{test name: (outcome, message)} from the test file's XML report."""
    with tempfile.TemporaryDirectory() as scratch:
        srcdir = _test_srcdir(os.path.join(scratch, "srcdir"), tf_serving_src)
        overlay = _python_overlay(os.path.join(scratch, "python"), tf_serving_src)
        report = os.path.join(scratch, "report.xml")
        # TF_USE_LEGACY_KERAS: the test file's tf.keras models are Keras 2
        # models (their serving signature takes the Input's name, 'x'); under
        # Keras 3 tf.saved_model.save names it 'inputs', and the test's request
        # would fail against any server.
        env = dict(os.environ, TEST_SRCDIR=srcdir, PYTHONPATH=overlay, TF_CPP_MIN_LOG_LEVEL="2",
                   TEST_TMPDIR=os.path.join(scratch, "tmp"), TF_USE_LEGACY_KERAS="1")
        os.makedirs(env["TEST_TMPDIR"])
        command = [sys.executable, os.path.join(tf_serving_src, TEST_FILE), f"--xml_output_file={report}"]
        command += [f"TensorflowModelServerTest.{name}" for name in only or []]
        subprocess.run(command, env=env, cwd=scratch, check=False)
        with open(os.path.join(tf_serving_src, TEST_FILE), encoding="utf-8") as test_file:
            defined = set(re.findall(r"^  def (test\w*)\(", test_file.read(), re.MULTILINE))
        outcomes = {}
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            if case.get("name") not in defined:  # tf.test.TestCase's own test_session()
                continue
            failure = case.find("failure")
            if failure is None:
                failure = case.find("error")
            outcomes[case.get("name")] = (
                "passed" if failure is None else "failed",
                "" if failure is None else " ".join((failure.get("message") or "").split())[:200])
        return outcomes


def write_results(outcomes: dict, command: str, seconds: float) -> str:
    passed = sum(outcome == "passed" for outcome, _ in outcomes.values())
    lines = [
        "## TF Serving's own integration tests", "",
        f"Command: `{command}` ({seconds / 60:.0f} min on {os.cpu_count()} cores).",
        f"Test file: `{TEST_FILE}` of github.com/tensorflow/serving, unmodified, with its test models; "
        "`tensorflow_model_server` is a launcher of `catsdogs serve` (every flag passed through as-is).", "",
        f"**{passed} of {len(outcomes)} passed.**", "",
        "| test | outcome | note |", "| --- | --- | --- |",
    ]
    for name in sorted(outcomes):
        outcome, message = outcomes[name]
        note = EXPECTED_FAILURES.get(name, message) if outcome != "passed" else ""
        lines.append(f"| {name} | {outcome} | {note.replace('|', '/')} |")
    text = "\n".join(lines) + "\n"
    replace_section(RESULTS, SECTION, text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tf-serving-src", default=os.environ.get(SRC_ENV),
                        help=f"checkout of github.com/tensorflow/serving (default: ${SRC_ENV})")
    parser.add_argument("--only", nargs="*", help="run just these test methods (results are not written)")
    args = parser.parse_args(argv)
    if not args.tf_serving_src or not os.path.isfile(os.path.join(args.tf_serving_src, TEST_FILE)):
        parser.error(f"give --tf-serving-src (or ${SRC_ENV}): a checkout of github.com/tensorflow/serving "
                     f"holding {TEST_FILE}")
    start = time.monotonic()
    outcomes = run_tests(os.path.abspath(args.tf_serving_src), args.only)
    if args.only:
        for name, (outcome, message) in sorted(outcomes.items()):
            print(f"{name}: {outcome} {message}")
        return 0
    command = "python -m benchmarks.tf_serving_tests --tf-serving-src DIR"
    print(write_results(outcomes, command, time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
