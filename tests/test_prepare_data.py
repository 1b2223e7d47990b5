"""`catsdogs prepare-data --kaggle-train`: the book's split from a Kaggle-style folder."""
import os
import shutil

import pytest

from pipeline import cli
from pipeline.prepare_data import PrepareDataError, SplitSizes, kaggle_split
from tests.image_files import SAMPLE_DIR


@pytest.fixture
def kaggle_train(tmp_path):
    """A raw Kaggle train/ folder made of the sample's real images, renumbered 0..N-1."""
    folder = tmp_path / "kaggle_train"
    folder.mkdir()
    for prefix, class_name in (("cat", "cats"), ("dog", "dogs")):
        sources = sorted(os.path.join(SAMPLE_DIR, split, class_name, name)
                         for split in ("train", "validation", "test")
                         for name in os.listdir(os.path.join(SAMPLE_DIR, split, class_name)))
        for index, source in enumerate(sources[:12]):
            shutil.copy(source, folder / f"{prefix}.{index}.jpg")
    (folder / "README.txt").write_text("not an image, ignored")
    return folder


def test_book_split_by_index_ranges(kaggle_train, tmp_path):
    out = tmp_path / "small"
    exit_code = cli.main(["prepare-data", "--kaggle-train", str(kaggle_train), "--out", str(out),
                          "--train-per-class", "6", "--validation-per-class", "3", "--test-per-class", "3"])
    assert exit_code == 0
    assert sorted(os.listdir(out / "train" / "dogs")) == sorted(f"dog.{i}.jpg" for i in range(6))
    assert sorted(os.listdir(out / "validation" / "cats")) == ["cat.6.jpg", "cat.7.jpg", "cat.8.jpg"]
    assert sorted(os.listdir(out / "test" / "cats")) == ["cat.10.jpg", "cat.11.jpg", "cat.9.jpg"]
    assert (out / "test" / "dogs" / "dog.9.jpg").read_bytes() == (kaggle_train / "dog.9.jpg").read_bytes()


def test_too_few_images_names_the_missing_file(kaggle_train, tmp_path):
    with pytest.raises(PrepareDataError, match=r"test images for cats are missing.*cat\.12\.jpg"):
        kaggle_split(str(kaggle_train), str(tmp_path / "out"), SplitSizes(6, 6, 6))
    assert not (tmp_path / "out").exists()


def test_refuses_missing_input_and_non_empty_output(kaggle_train, tmp_path):
    with pytest.raises(PrepareDataError, match="does not exist"):
        kaggle_split(str(tmp_path / "nope"), str(tmp_path / "out"))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(PrepareDataError, match="not empty"):
        kaggle_split(str(kaggle_train), str(tmp_path / "busy"), SplitSizes(2, 2, 2))
