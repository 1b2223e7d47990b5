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


def test_digits_become_28x28_png_class_folders_with_a_fixed_split(tmp_path):
    from PIL import Image
    out = tmp_path / "digits"
    assert cli.main(["prepare-data", "--digits", "--out", str(out)]) == 0
    counts = {split: sum(len(os.listdir(out / split / c)) for c in os.listdir(out / split))
              for split in ("train", "validation", "test")}
    assert sum(counts.values()) == 1797
    assert {counts["validation"], counts["test"]} <= {359, 360}  # 20% each, stratified
    assert sorted(os.listdir(out / "test")) == [str(d) for d in range(10)]
    first = sorted(os.listdir(out / "train" / "3"))[0]
    with Image.open(out / "train" / "3" / first) as image:
        assert image.size == (28, 28) and image.mode == "L"
    again = tmp_path / "again"
    cli.main(["prepare-data", "--digits", "--out", str(again)])
    names = sorted(os.listdir(out / "test" / "7"))
    assert sorted(os.listdir(again / "test" / "7")) == names
    assert ([(again / "test" / "7" / n).read_bytes() for n in names]
            == [(out / "test" / "7" / n).read_bytes() for n in names])


def write_idx(path, array):
    import gzip
    import struct
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype("uint8").tobytes())


def test_mnist_idx_files_convert_with_a_validation_carve_out(tmp_path):
    import numpy as np

    from pipeline.prepare_data import mnist_idx_split
    rng = np.random.default_rng(0)
    idx = tmp_path / "mnist"
    idx.mkdir()
    write_idx(idx / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (30, 28, 28)))
    write_idx(idx / "train-labels-idx1-ubyte.gz", np.arange(30) % 10)
    write_idx(idx / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (10, 28, 28)))
    write_idx(idx / "t10k-labels-idx1-ubyte.gz", np.arange(10))
    counts = mnist_idx_split(str(idx), str(tmp_path / "out"), validation_size=10)
    assert sum(counts["train"].values()) == 20
    assert sum(counts["validation"].values()) == 10
    assert counts["test"] == {str(d): 1 for d in range(10)}
    (idx / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(PrepareDataError, match="t10k-labels-idx1-ubyte"):
        mnist_idx_split(str(idx), str(tmp_path / "out2"))
