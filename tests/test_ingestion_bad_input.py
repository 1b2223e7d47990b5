"""ImageExampleGen on odd files that could end or break the run: each one is
now an example, a rejected file with its reason, or a skipped file, and the run goes on.

One executor run over a tree holding every kind of odd file keeps this module fast;
the driver and `catsdogs run-local` are exercised on their own small trees.
"""
import csv
import json
import logging
import os

import pytest
import tensorflow as tf
from tfx.dsl.io import filesystem
from tfx.utils import io_utils

from components import contract
from components.image_example_gen import executor as executor_lib
from components.image_example_gen.component import input_config_for
from components.image_example_gen.driver import ImageFolderInputProcessor, split_fingerprint
from components.image_example_gen.layout import DataLayoutError, scan_layout
from components.preprocessing import decode_image
from pipeline import cli
from tests import image_files
from tests.examples_artifacts import feature, read_split, run_image_example_gen

NOT_UTF8_NAME = b"caf\xe9.jpg"  # Latin-1 bytes, as an old camera or Windows share writes them
TAB_NAME, NEWLINE_NAME, QUOTE_NAME, CR_NAME = "tab\there.jpg", "two\nlines.jpg", 'say "cheese".jpg', "cr\rname.jpg"


def write_odd_files(data, outside):
    """Every kind of odd file under `data` (a copy of the sample); returns
    {relative path: expected outcome} for the files it adds."""
    jpeg = image_files.sample_jpeg_bytes()
    write = lambda relative, content: image_files.write(os.path.join(data, relative), content)  # noqa: E731
    write("train/cats/bomb.png", image_files.png_claiming_size(20000, 20000))  # over PIL's hard limit
    write("train/dogs/big.png", image_files.png_claiming_size(10000, 10000))  # PIL only warns; our limit
    os.symlink(os.path.join(outside, "moved-away.jpg"), os.path.join(data, "train/cats/gone.jpg"))
    image_files.write(os.path.join(os.fsencode(data), b"train/dogs/" + NOT_UTF8_NAME), jpeg)
    write(f"validation/cats/{TAB_NAME}", b"")
    write(f"validation/dogs/{NEWLINE_NAME}", b"not an image\n")
    write(f"validation/dogs/{QUOTE_NAME}", jpeg[:200])
    write(f"validation/cats/{CR_NAME}", b"")
    write("test/cats/phone.jpg", image_files.mpo_bytes())
    write("train/cats/._cat.0.jpg", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + b"\0" * 64)
    write("train/cats/.hidden.jpg", jpeg)
    write("train/.DS_Store", b"\0\0\0\1Bud1")
    write("train/stray.jpg", jpeg)
    write("train/dogs/rotated.jpg", image_files.jpeg_with_exif_orientation(6))
    write("train/dogs/upright.jpg", image_files.jpeg_with_exif_orientation(1))
    os.mkfifo(os.path.join(data, "test/dogs/pipe.jpg"))
    return {
        "train/cats/bomb.png": "rejected", "train/dogs/big.png": "rejected", "train/cats/gone.jpg": "rejected",
        "train/dogs/caf\\xe9.jpg": "rejected", f"validation/cats/{TAB_NAME}": "rejected",
        f"validation/dogs/{NEWLINE_NAME}": "rejected", f"validation/dogs/{QUOTE_NAME}": "rejected",
        f"validation/cats/{CR_NAME}": "rejected", "test/dogs/pipe.jpg": "rejected",
        "test/cats/phone.jpg": "written", "train/dogs/rotated.jpg": "written", "train/dogs/upright.jpg": "written",
        "train/cats/._cat.0.jpg": "skipped", "train/cats/.hidden.jpg": "skipped", "train/.DS_Store": "skipped",
        "train/stray.jpg": "skipped",
    }


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd")
    data = str(root / "data")
    counts = image_files.copy_sample(data, per_class=3)
    expected = write_odd_files(data, str(root))
    examples = run_image_example_gen(data, str(root / "out"), max_rejected_fraction=0.5)
    with open(os.path.join(examples.uri, executor_lib.REPORT_FILE)) as file:
        report = json.load(file)
    return {"data": data, "counts": counts, "expected": expected, "examples": examples, "report": report}


def outcome_of(run, relative):
    path = os.path.join(run["data"], relative)
    rejected = {item["path"]: item["reason"] for item in run["report"]["rejected"]}
    skipped = {item["path"]: item["reason"] for split in run["report"]["splits"].values()
               for item in split["skipped"]}
    return ("rejected", rejected[path]) if path in rejected else \
        ("skipped", skipped[path]) if path in skipped else (None, None)


def test_every_odd_file_is_accounted_for_and_the_run_goes_on(odd_run):
    for relative, expected in odd_run["expected"].items():
        verdict, _ = outcome_of(odd_run, relative)
        assert verdict == (None if expected == "written" else expected), relative
    totals = odd_run["report"]["totals"]
    assert totals["files_rejected"] == 9 and totals["files_skipped"] == 4
    assert totals["examples_written"] == sum(odd_run["counts"].values()) + 3
    for split, numbers in odd_run["report"]["splits"].items():
        assert numbers["files_seen"] == (numbers["examples_written"] + numbers["files_rejected"]
                                         + numbers["files_skipped"])
        assert numbers["examples_written"] == len(read_split(odd_run["examples"], split))


def test_decompression_bomb_is_rejected_naming_the_file(odd_run):
    verdict, reason = outcome_of(odd_run, "train/cats/bomb.png")
    assert verdict == "rejected" and reason.startswith("image too large") and "400000000 pixels" in reason
    verdict, reason = outcome_of(odd_run, "train/dogs/big.png")
    assert verdict == "rejected" and reason.startswith("image too large: 10000x10000")


def test_broken_symbolic_link_is_rejected_with_its_target(odd_run):
    verdict, reason = outcome_of(odd_run, "train/cats/gone.jpg")
    assert verdict == "rejected" and reason.startswith("broken symbolic link") and "moved-away.jpg" in reason


def test_name_that_is_not_utf8_is_rejected_and_shown_escaped(odd_run):
    verdict, reason = outcome_of(odd_run, "train/dogs/caf\\xe9.jpg")
    assert verdict == "rejected" and reason.startswith("file name is not valid UTF-8")


def test_rejected_files_tsv_reads_back_every_name_intact(odd_run):
    with open(os.path.join(odd_run["examples"].uri, executor_lib.REJECTED_FILE), newline="") as file:
        rows = list(csv.reader(file, dialect="excel-tab"))
    assert rows[0] == ["split", "path", "reason"]
    assert rows[1:] == [[item["split"], item["path"], item["reason"]] for item in odd_run["report"]["rejected"]]
    names = {os.path.basename(row[1]) for row in rows[1:]}
    assert {TAB_NAME, NEWLINE_NAME, QUOTE_NAME, CR_NAME, "caf\\xe9.jpg"} <= names


def test_multi_picture_jpeg_is_accepted_and_decodes_to_its_first_picture(odd_run):
    phone = [record for record in read_split(odd_run["examples"], "test")
             if feature(record, contract.FILENAME_KEY) == [b"cats/phone.jpg"]]
    assert len(phone) == 1
    assert feature(phone[0], contract.IMAGE_KEY)[0] == image_files.mpo_bytes()
    # Transform's (and so serving's) decoder reads it: the first picture is red.
    pixel = decode_image(tf.constant(feature(phone[0], contract.IMAGE_KEY)[0]))[0, 0].numpy()
    assert pixel[0] > 0.6 and pixel[1] < 0.2


def test_hidden_and_appledouble_files_are_skipped_not_rejected(odd_run):
    for relative in ("train/cats/._cat.0.jpg", "train/cats/.hidden.jpg", "train/.DS_Store"):
        verdict, reason = outcome_of(odd_run, relative)
        assert verdict == "skipped" and reason.startswith("hidden file"), relative


def test_image_directly_in_a_split_folder_is_counted_as_skipped(odd_run):
    verdict, reason = outcome_of(odd_run, "train/stray.jpg")
    assert verdict == "skipped" and reason.startswith("not in a class folder")


def test_pipe_with_an_image_name_is_rejected_not_read(odd_run):
    verdict, reason = outcome_of(odd_run, "test/dogs/pipe.jpg")
    assert verdict == "rejected" and reason.startswith("not a regular file")


def test_exif_rotation_is_counted_listed_and_warned_about(odd_run, caplog):
    report = odd_run["report"]
    assert report["totals"]["images_with_exif_rotation"] == 1
    assert report["splits"]["train"]["images_with_exif_rotation"] == 1
    assert [(item["path"], item["orientation"]) for item in report["exif_rotation"]] == [
        (os.path.join(odd_run["data"], "train/dogs/rotated.jpg"), 6)]
    with caplog.at_level(logging.WARNING):
        executor_lib._log_report(report, odd_run["examples"].uri)  # pylint: disable=protected-access
    assert any("1 images carry an EXIF orientation" in message and "not applied" in message
               for message in caplog.messages)


def test_class_folder_name_that_is_not_utf8_is_a_layout_error(tmp_path):
    data = tmp_path / "data"
    image_files.copy_sample(str(data), per_class=1)
    for split in contract.SPLITS:
        os.rename(os.path.join(os.fsencode(data), split.encode(), b"dogs"),
                  os.path.join(os.fsencode(data), split.encode(), b"d\xf6gs"))
    with pytest.raises(DataLayoutError, match=r"d\\xf6gs .* not valid UTF-8"):
        scan_layout(str(data))


def fingerprint_tree(tmp_path):
    data = tmp_path / "data"
    image_files.copy_sample(str(data), per_class=2)
    image_files.write(str(data / "train/cats/._cat.0.jpg"), b"\0" * 10)
    os.makedirs(data / "train/dogs/nested")
    image_files.write(str(data / "train/dogs/nested/x.jpg"), b"\0" * 10)
    return data


def test_fingerprint_equals_tfx_on_ordinary_files(tmp_path):
    """Same text as TFX's own fingerprint, so existing caches stay valid."""
    data = fingerprint_tree(tmp_path)
    for split in input_config_for().splits:
        pattern = os.path.join(str(data), split.pattern)
        assert split_fingerprint(split.name, pattern) == io_utils.generate_fingerprint(split.name, pattern)


def test_fingerprint_survives_broken_link_and_name_that_is_not_utf8(tmp_path):
    data = fingerprint_tree(tmp_path)
    pattern = os.path.join(str(data), "train/*/*")
    before = split_fingerprint("train", pattern)
    link = data / "train/cats/gone.jpg"
    os.symlink(tmp_path / "nowhere.jpg", link)
    with pytest.raises(filesystem.NotFoundError):  # what TFX's driver did
        io_utils.generate_fingerprint("train", pattern)
    with_link = split_fingerprint("train", pattern)
    assert with_link != before and "num_files:7," in with_link
    link.unlink()
    image_files.write(os.path.join(os.fsencode(data), b"train/dogs/" + NOT_UTF8_NAME), b"\0")
    with pytest.raises(UnicodeDecodeError):  # what TFX's driver did
        io_utils.generate_fingerprint("train", pattern)
    assert "num_files:7," in split_fingerprint("train", pattern)
    processor = ImageFolderInputProcessor(str(data), input_config_for().splits)
    assert processor.resolve_span_and_version() == (0, None)
    assert processor.get_input_fingerprint(0, None).splitlines()[0] == split_fingerprint("train", pattern)


@pytest.fixture
def run_local(capsys):
    """Runs `catsdogs run-local` in this process; afterwards takes back the log filter
    it adds to the root logger's handlers (pytest's handlers outlive one test)."""
    handlers = {handler: list(handler.filters) for handler in logging.getLogger().handlers}

    def run(data_dir, output_dir):
        code = cli.main(["run-local", "--data-dir", str(data_dir), "--output-dir", str(output_dir),
                         "--models", "mnist"])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run
    for handler, filters in handlers.items():
        handler.filters[:] = filters


def test_run_local_prints_a_layout_error_in_one_line(tmp_path, run_local):
    data = tmp_path / "data"
    image_files.copy_sample(str(data), per_class=1, splits=("train", "test"))
    code, out, err = run_local(data, tmp_path / "out")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(
        f"catsdogs run-local: error: split folder {data}/validation is missing; expected")
    assert "Traceback" not in out + err


def test_run_local_gets_past_the_driver_and_names_broken_link_and_not_utf8_files(tmp_path, run_local):
    """Through LocalDagRunner: TFX's driver used to fail on these before ImageExampleGen
    could report them; with 2 of 8 image files rejected the 1% limit ends the run cleanly."""
    data = tmp_path / "data"
    image_files.copy_sample(str(data), per_class=1)
    os.symlink(tmp_path / "nowhere.jpg", data / "train/cats/gone.jpg")
    image_files.write(os.path.join(os.fsencode(data), b"test/dogs/" + NOT_UTF8_NAME), image_files.sample_jpeg_bytes())
    code, out, err = run_local(data, tmp_path / "out")
    assert code == 2
    message = err.strip().splitlines()[-1]
    assert message.startswith("catsdogs run-local: error: 2 of 8 image files rejected"), message
    assert "gone.jpg: broken symbolic link" in message and "caf\\xe9.jpg: file name is not valid UTF-8" in message
    listed_in = message.rsplit(" are listed in ", 1)[1]  # TFX deleted the execution's outputs, not this
    with open(listed_in, newline="") as file:
        assert len(list(csv.reader(file, dialect="excel-tab"))) == 1 + 2
    assert "Traceback" not in out + err
