"""Pusher and TF Serving layout: blessing gate, versions, warmup, interrupted pushes."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from components import contract
from components.evaluation import baseline, decision
from components.formats import warmup as warmup_format
from components.formats.examples import read_images
from components.pusher import serving_layout, warmup
from components.pusher.component import push_blessed_model
from pipeline import model_registry
from tests import examples_artifacts
from tests import marker_model as support

MODEL_NAME = model_registry.get("scratch").served_name
OTHER_MODEL_NAME = model_registry.get("vgg16").served_name
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """Two different real SavedModels with the contract's signatures, real test examples."""
    root = tmp_path_factory.mktemp("push")
    model = support.marker_model()
    return {
        "model": support.export_model(model, str(root / "model_a")),
        "other_model": support.export_model(model, str(root / "model_b"), invert=True),
        "examples": examples_artifacts.write_examples_artifact(str(root / "examples")),
        "blessed": support.write_blessing(str(root / "blessed"), True),
        "not_blessed": support.write_blessing(str(root / "not_blessed"), False, [decision.ThresholdFailure(
            "binary_accuracy", "value", 0.55, 0.70, 0.15)]),
    }


def push(artifacts, serving_dir, model="model", blessing="blessed", **kwargs):
    return push_blessed_model(
        model_dir=artifacts[model], blessing_uri=artifacts[blessing],
        warmup_split_uri=examples_artifacts.split_uri(artifacts["examples"]),
        serving_model_dir=str(serving_dir), model_name=MODEL_NAME,
        num_warmup_requests=kwargs.pop("num_warmup_requests", 3), **kwargs)


def test_blessed_model_is_pushed_loadable_with_real_warmup_requests(artifacts, tmp_path):
    outcome = push(artifacts, tmp_path)
    assert outcome["pushed"] == 1 and outcome["already_serving"] == 0
    version_dir = outcome["pushed_destination"]
    assert os.path.dirname(version_dir) == str(tmp_path / MODEL_NAME)
    assert os.path.basename(version_dir) == str(outcome["pushed_version"])

    loaded = tf.saved_model.load(version_dir)
    assert {contract.SERVING_SIGNATURE, contract.EXAMPLES_SIGNATURE} <= set(loaded.signatures)

    logs = list(warmup_format.read_records(os.path.join(version_dir, serving_layout.WARMUP_FILE)))
    test_images = {image.image_bytes for image in read_images(examples_artifacts.split_uri(artifacts["examples"]))}
    assert len(logs) == 3
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == MODEL_NAME
        assert request.model_spec.signature_name == contract.SERVING_SIGNATURE
        image = tf.make_ndarray(request.inputs[contract.SERVING_INPUT_KEY])
        assert image.shape == (1,) and image[0] in test_images
        answer = loaded.signatures[contract.SERVING_SIGNATURE](
            **{contract.SERVING_INPUT_KEY: tf.constant(image)})
        assert answer[contract.PROBABILITIES_KEY].shape == (1, 2)


def test_model_that_is_not_blessed_is_not_pushed_and_the_reason_says_by_how_much(artifacts, tmp_path):
    outcome = push(artifacts, tmp_path, blessing="not_blessed")
    assert outcome["pushed"] == 0
    assert "binary_accuracy = 0.5500 is below the required 0.7000 (short by 0.1500)" in outcome["reason"]
    assert serving_layout.list_versions(str(tmp_path / MODEL_NAME)) == []


def test_unchanged_model_is_not_pushed_twice_but_a_new_one_is(artifacts, tmp_path):
    first = push(artifacts, tmp_path)
    again = push(artifacts, tmp_path)
    assert again["already_serving"] == 1
    assert again["pushed_version"] == first["pushed_version"]
    assert [v.version for v in serving_layout.list_versions(str(tmp_path / MODEL_NAME))] == \
        [first["pushed_version"]]
    other = push(artifacts, tmp_path, model="other_model")
    assert other["already_serving"] == 0 and other["pushed_version"] > first["pushed_version"]


@pytest.mark.parametrize("strategy", [serving_layout.STAGED, serving_layout.DIRECT])
def test_versions_strictly_increase_within_one_second_and_with_a_clock_going_back(
        artifacts, tmp_path, strategy):
    model_base = str(tmp_path / MODEL_NAME)
    clock = iter([1_700_000_000, 1_700_000_000, 1_600_000_000])
    versions = [serving_layout.publish(artifacts["model"], model_base, {}, strategy=strategy,
                                       now=lambda: next(clock)).version for _ in range(3)]
    assert versions == [1_700_000_000, 1_700_000_001, 1_700_000_002]
    assert all(v.complete for v in serving_layout.list_versions(model_base))


def test_saved_model_pb_is_written_last(artifacts, tmp_path):
    written = []
    serving_layout.publish(artifacts["model"], str(tmp_path / MODEL_NAME),
                           {serving_layout.WARMUP_FILE: b"x"}, on_file_written=written.append)
    assert written[-1] == serving_layout.SAVED_MODEL_FILE
    assert serving_layout.WARMUP_FILE in written and len(written) == len(set(written))


@pytest.mark.parametrize("strategy", [serving_layout.STAGED, serving_layout.DIRECT])
def test_failed_push_removes_what_it_wrote(artifacts, tmp_path, strategy):
    model_base = str(tmp_path / MODEL_NAME)

    def fail_after_variables(relative):
        if relative.startswith("variables"):
            raise OSError("disk full (simulated)")

    with pytest.raises(OSError, match="disk full"):
        serving_layout.publish(artifacts["model"], model_base, {}, strategy=strategy,
                               on_file_written=fail_after_variables)
    assert os.listdir(model_base) == []


KILLED_PUSH = textwrap.dedent("""
    import os, signal, sys
    from components.pusher import serving_layout
    source, model_base, strategy = sys.argv[1:]
    def die(relative):
        if relative.startswith("variables"):
            os.kill(os.getpid(), signal.SIGKILL)
    serving_layout.publish(source, model_base, {}, strategy=strategy, on_file_written=die)
""")


@pytest.mark.parametrize("strategy", [serving_layout.STAGED, serving_layout.DIRECT])
def test_push_killed_midway_leaves_no_loadable_half_version(artifacts, tmp_path, strategy):
    model_base = str(tmp_path / MODEL_NAME)
    process = subprocess.run([sys.executable, "-c", KILLED_PUSH, artifacts["model"], model_base, strategy],
                             cwd=REPO_ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                             capture_output=True)
    assert process.returncode == -signal.SIGKILL
    leftovers = os.listdir(model_base)
    assert leftovers, "the killed push should have left its partial copy behind"
    for version in serving_layout.list_versions(model_base):
        assert not version.complete
        with pytest.raises(Exception):
            tf.saved_model.load(version.path)
    assert serving_layout.latest_complete_version(model_base) is None
    assert not baseline.find_baseline(str(tmp_path), MODEL_NAME).found

    outcome = push(artifacts, tmp_path)
    assert outcome["pushed_version"] > max([v.version for v in serving_layout.list_versions(model_base)
                                            if not v.complete] or [0])
    tf.saved_model.load(outcome["pushed_destination"])


def test_baseline_is_the_latest_complete_version(artifacts, tmp_path):
    serving_dir = str(tmp_path)
    first = baseline.find_baseline(serving_dir, MODEL_NAME)
    assert not first.found and not first.unusable and "first push" in first.reason

    pushed = push(artifacts, tmp_path)
    found = baseline.find_baseline(serving_dir, MODEL_NAME)
    assert found.found and found.version == pushed["pushed_version"]
    assert found.digest == serving_layout.model_digest(artifacts["model"])
    assert baseline.check_loads(found.source) is None

    unfinished = os.path.join(serving_dir, MODEL_NAME, str(pushed["pushed_version"] + 5))
    os.makedirs(os.path.join(unfinished, "variables"))
    assert baseline.find_baseline(serving_dir, MODEL_NAME).version == pushed["pushed_version"]


def test_corrupt_latest_version_is_reported_and_means_no_baseline(artifacts, tmp_path):
    push(artifacts, tmp_path)
    second = push(artifacts, tmp_path, model="other_model")
    saved_model_pb = os.path.join(second["pushed_destination"], serving_layout.SAVED_MODEL_FILE)
    with open(saved_model_pb, "r+b") as file:
        file.truncate(100)
    info = baseline.find_baseline(str(tmp_path), MODEL_NAME)
    assert not info.found and info.unusable
    assert f"version {second['pushed_version']} is corrupt" in info.reason


def test_truncated_variables_fail_the_load_check(artifacts, tmp_path):
    copy = str(tmp_path / "copy")
    baseline.copy_tree(artifacts["model"], copy)
    data = [f for f in os.listdir(os.path.join(copy, "variables")) if f.startswith("variables.data")][0]
    with open(os.path.join(copy, "variables", data), "r+b") as file:
        file.truncate(10)
    assert "failed" in baseline.check_loads(copy)


def test_warmup_replay_rejects_requests_the_model_cannot_answer(artifacts):
    bad = warmup.warmup_logs(MODEL_NAME, [b"not an image"])
    with pytest.raises(ValueError, match="warmup request 0"):
        warmup.replay(artifacts["model"], bad)
    with pytest.raises(ValueError, match="no images"):
        warmup.warmup_logs(MODEL_NAME, [])


def test_unreadable_or_corrupt_baseline_record_means_no_baseline(artifacts, tmp_path):
    missing = baseline.read_baseline_info_at(str(tmp_path / "nothing"))
    assert not missing.found and missing.unusable and "unreadable" in missing.reason

    garbled = tmp_path / "garbled"
    garbled.mkdir()
    (garbled / baseline.BASELINE_INFO_FILE).write_text("{not json")
    assert not baseline.read_baseline_info_at(str(garbled)).found

    claims_found = tmp_path / "claims_found"
    os.makedirs(claims_found / "Format-Serving")
    (claims_found / baseline.BASELINE_INFO_FILE).write_text(
        baseline.BaselineInfo(True, "latest pushed version 3", version=3).to_json())
    info = baseline.read_baseline_info_at(str(claims_found))
    assert not info.found and info.unusable and "baseline copy is corrupt" in info.reason


def _backdate(path, seconds):
    """Makes everything under path look written `seconds` ago."""
    then = os.stat(path).st_mtime - seconds
    for directory, _, names in os.walk(path):
        for name in names:
            os.utime(os.path.join(directory, name), (then, then))
        os.utime(directory, (then, then))


def _leave_partial_push(artifacts, folder):
    """What a push killed after copying the variables leaves: variables, no saved_model.pb."""
    import shutil
    shutil.copytree(os.path.join(artifacts["model"], "variables"), os.path.join(folder, "variables"))
    return str(folder)


def test_the_next_push_removes_what_killed_pushes_left_but_not_a_push_at_work(artifacts, tmp_path):
    model_base = tmp_path / MODEL_NAME
    dead_staging = _leave_partial_push(artifacts, model_base / f"{serving_layout.STAGING_PREFIX}100-dead")
    dead_direct = _leave_partial_push(artifacts, model_base / "101")
    for path in (dead_staging, dead_direct):
        _backdate(path, 2 * serving_layout.STALE_PARTIAL_PUSH_SECONDS)
    live_staging = _leave_partial_push(artifacts, model_base / f"{serving_layout.STAGING_PREFIX}102-live")
    outcome = push(artifacts, tmp_path)
    left = sorted(os.listdir(model_base))
    assert left == sorted([os.path.basename(live_staging), str(outcome["pushed_version"])])
    tf.saved_model.load(outcome["pushed_destination"])


def _served_models(serving_root):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2
    with open(os.path.join(serving_root, serving_layout.MODELS_CONFIG_FILE)) as config_file:
        config = text_format.Parse(config_file.read(), model_server_config_pb2.ModelServerConfig())
    return {model.name: model.base_path for model in config.model_config_list.config}


def test_models_config_lists_exactly_the_models_that_have_a_version(artifacts, tmp_path):
    not_blessed = push_blessed_model(
        model_dir=artifacts["model"], blessing_uri=artifacts["not_blessed"],
        warmup_split_uri=examples_artifacts.split_uri(artifacts["examples"]),
        serving_model_dir=str(tmp_path), model_name=OTHER_MODEL_NAME, num_warmup_requests=1)
    assert not_blessed["pushed"] == 0
    # Written on the first run whatever the outcome, listing no model that has no version.
    assert _served_models(tmp_path) == {}
    os.makedirs(tmp_path / "cats_vs_dogs_never_pushed")
    push(artifacts, tmp_path)
    assert _served_models(tmp_path) == {MODEL_NAME: str(tmp_path / MODEL_NAME)}
    push_blessed_model(
        model_dir=artifacts["other_model"], blessing_uri=artifacts["blessed"],
        warmup_split_uri=examples_artifacts.split_uri(artifacts["examples"]),
        serving_model_dir=str(tmp_path), model_name=OTHER_MODEL_NAME, num_warmup_requests=1)
    assert _served_models(tmp_path) == {MODEL_NAME: str(tmp_path / MODEL_NAME),
                                        OTHER_MODEL_NAME: str(tmp_path / OTHER_MODEL_NAME)}
    assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []
