"""ImageExampleGen on real JPEGs and on broken files the tests write."""
import json
import os

import pytest
from tfx.types import standard_component_specs

from components import contract
from components.image_example_gen import executor as executor_lib
from components.image_example_gen.component import ImageExampleGen, input_config_for
from components.image_example_gen.image_checks import ImageLimits, check_image
from components.image_example_gen.layout import DataLayoutError, scan_layout
from tests import image_files
from tests.examples_artifacts import feature, read_split, run_image_example_gen


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    counts = image_files.copy_sample(str(root / "data"), per_class=5)
    return counts, run_image_example_gen(str(root / "data"), str(root / "out"))


def test_writes_every_image_with_contract_features(clean_run):
    counts, examples = clean_run
    for split in contract.SPLITS:
        records = read_split(examples, split)
        assert len(records) == counts[split] == 10
        for record in records:
            filename = feature(record, contract.FILENAME_KEY)[0].decode()
            class_name, base = filename.split("/")
            source = os.path.join(image_files.SAMPLE_DIR, split, class_name, base)
            with open(source, "rb") as file:
                assert feature(record, contract.IMAGE_KEY)[0] == file.read()
            # label 1 = dogs: the index in the sorted class folder names
            assert feature(record, contract.LABEL_KEY) == [["cats", "dogs"].index(class_name)]


def test_records_class_names_and_report(clean_run):
    _, examples = clean_run
    with open(os.path.join(examples.uri, contract.CLASS_NAMES_FILE)) as file:
        assert json.load(file) == ["cats", "dogs"]
    with open(os.path.join(examples.uri, executor_lib.REPORT_FILE)) as file:
        report = json.load(file)
    assert report["totals"] == {"files_seen": 30, "examples_written": 30, "files_rejected": 0, "files_skipped": 0,
                                "images_with_exif_rotation": 0}
    assert examples.get_string_custom_property("class_names") == '["cats", "dogs"]'


def test_broken_files_are_rejected_with_reasons_and_accounted_for(tmp_path):
    data = tmp_path / "data"
    image_files.copy_sample(str(data), per_class=20)
    jpeg = image_files.sample_jpeg_bytes()
    broken = {
        "train/cats/empty.jpg": (b"", "empty file"),
        "train/dogs/truncated.jpg": (jpeg[: len(jpeg) // 3], "corrupt or truncated JPEG"),
        "validation/cats/text.jpg": (b"this is not an image\n" * 10, "not an image"),
        "test/dogs/tiff.png": (image_files.image_bytes("TIFF"), "unsupported image format TIFF"),
        "test/cats/huge.png": (image_files.image_bytes("PNG", size=(2000, 1000), mode="L"), "image too large"),
    }
    for relative, (content, _) in broken.items():
        image_files.write(str(data / relative), content)
    image_files.write(str(data / "train/cats/notes.txt"), b"labelling notes")

    examples = run_image_example_gen(str(data), str(tmp_path / "out"), max_rejected_fraction=0.1,
                                     max_image_pixels=1_000_000)

    with open(os.path.join(examples.uri, executor_lib.REPORT_FILE)) as file:
        report = json.load(file)
    reasons = {os.path.relpath(item["path"], data): item["reason"] for item in report["rejected"]}
    assert set(reasons) == set(broken)
    for relative, (_, expected_reason) in broken.items():
        assert reasons[relative].startswith(expected_reason), reasons[relative]
    assert [os.path.relpath(s["path"], data) for s in report["splits"]["train"]["skipped"]] == ["train/cats/notes.txt"]
    for split, numbers in report["splits"].items():
        assert numbers["files_seen"] == (numbers["examples_written"] + numbers["files_rejected"]
                                         + numbers["files_skipped"])
        assert numbers["examples_written"] == len(read_split(examples, split)) == 40
    with open(os.path.join(examples.uri, executor_lib.REJECTED_FILE)) as file:
        assert len(file.read().strip().splitlines()) == 1 + len(broken)


def test_too_many_rejections_fail_the_run_naming_the_files(tmp_path):
    data = tmp_path / "data"
    image_files.copy_sample(str(data), per_class=5)
    image_files.write(str(data / "train/dogs/zero.jpg"), b"")
    with pytest.raises(executor_lib.IngestionError, match=r"1 of 31 image files rejected.*zero\.jpg: empty file"):
        run_image_example_gen(str(data), str(tmp_path / "out"), max_rejected_fraction=0.01)
    # TFX deletes a failed execution's outputs: the full list goes beside them
    failed = executor_lib.failed_report_dir(str(tmp_path / "out" / "examples"))
    with open(os.path.join(failed, executor_lib.REJECTED_FILE)) as file:
        assert "zero.jpg\tempty file" in file.read()


@pytest.mark.parametrize("breakage, message", [
    ("missing_root", "does not exist"),
    ("missing_split", "split folder .*validation is missing"),
    ("empty_split", "split test is empty"),
    ("single_class", "split train has a single class \\(cats\\)"),
    ("empty_class", "class folder .*dogs holds no image files"),
    ("different_classes", "splits disagree on the class folders"),
])
def test_bad_layouts_fail_at_once_saying_what_was_expected(tmp_path, breakage, message):
    data = tmp_path / "data"
    image_files.copy_sample(str(data), per_class=1)
    if breakage == "missing_root":
        data = tmp_path / "nowhere"
    elif breakage == "missing_split":
        os.rename(data / "validation", tmp_path / "elsewhere")
    elif breakage == "empty_split":
        for class_dir in (data / "test").iterdir():
            for file in class_dir.iterdir():
                file.unlink()
            class_dir.rmdir()
    elif breakage == "single_class":
        for file in (data / "train" / "dogs").iterdir():
            file.unlink()
        (data / "train" / "dogs").rmdir()
    elif breakage == "empty_class":
        for file in (data / "test" / "dogs").iterdir():
            file.unlink()
    elif breakage == "different_classes":
        os.rename(data / "test" / "dogs", data / "test" / "wolves")
    with pytest.raises(DataLayoutError, match=message):
        scan_layout(str(data))


def test_rejection_reason_accepts_grayscale_png_and_real_jpeg():
    assert check_image(image_files.image_bytes("PNG", mode="L"), ImageLimits()).reason is None
    assert check_image(image_files.sample_jpeg_bytes(), ImageLimits()).reason is None


def test_component_declares_one_split_per_folder():
    component = ImageExampleGen(input_base="/data")
    patterns = {split.name: split.pattern for split in input_config_for().splits}
    assert patterns == {"train": "train/*/*", "validation": "validation/*/*", "test": "test/*/*"}
    assert component.exec_properties[standard_component_specs.INPUT_BASE_KEY] == "/data"
