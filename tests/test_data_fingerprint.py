"""The data fingerprint that keys ImageExampleGen's cache on KFP: what changes it,
what does not, and the files that must not break it."""
import os
import shutil

import pytest
from tfx.utils import proto_utils

from components.image_example_gen import data_fingerprint
from components.image_example_gen.component import input_config_for

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "data", "sample")


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(SAMPLE, root)
    return root


def _fingerprint(root) -> str:
    return data_fingerprint.fingerprint(str(root), input_config_for())


def test_the_same_files_give_the_same_fingerprint_anywhere(data_root, tmp_path):
    first = _fingerprint(data_root)
    assert first.startswith("train:80,validation:40,test:40;sha256:")
    assert _fingerprint(data_root) == first
    copy = tmp_path / "elsewhere"
    shutil.copytree(data_root, copy)  # copytree keeps modification times
    assert _fingerprint(copy) == first


def test_a_relabelled_image_changes_the_fingerprint(data_root):
    """Moving a file to the other class folder keeps count, bytes and times,
    which TFX's own fingerprint sums; its path is what changed."""
    before = _fingerprint(data_root)
    cat = sorted((data_root / "train" / "cats").iterdir())[0]
    cat.rename(data_root / "train" / "dogs" / cat.name)
    assert _fingerprint(data_root) != before


def test_a_rewritten_image_of_the_same_size_changes_the_fingerprint(data_root):
    before = _fingerprint(data_root)
    image = sorted((data_root / "test" / "dogs").iterdir())[0]
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert _fingerprint(data_root) != before


def test_files_ingestion_reports_do_not_break_it(data_root):
    (data_root / "train" / "cats" / "gone.jpg").symlink_to(data_root / "missing.jpg")
    os.close(os.open(os.path.join(os.fsencode(data_root / "train" / "dogs"), b"\xff\xfe.jpg"),
                     os.O_CREAT | os.O_WRONLY))
    assert _fingerprint(data_root).startswith("train:82,")


def test_command_line_writes_the_kfp_output_parameter_file(data_root, tmp_path):
    output = tmp_path / "kfp" / "outputs" / "fingerprint"
    assert data_fingerprint.main(["--data-root", str(data_root), "--input-config",
                                  proto_utils.proto_to_json(input_config_for()),
                                  "--output-file", str(output)]) == 0
    assert output.read_text() == _fingerprint(data_root)
