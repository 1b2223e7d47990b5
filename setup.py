"""Installs the cats-vs-dogs TFX pipeline and its `catsdogs` command.

Runtime dependencies are pinned in requirements.lock (installed by
scripts/bootstrap.sh); install_requires names only the top-level ones so that
the pipeline image (based on the official TFX image) does not re-resolve TFX.
"""
from setuptools import find_packages, setup

setup(
    name="catsdogs-tfx",
    version="0.1.0",
    description="Deep Learning with Python, chapter 5, as a production TFX pipeline",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["pipeline", "pipeline.*", "components", "components.*",
                                    "serving", "serving.*"],
                           exclude=["components.kfp_system"]) + ["system"],
    # KFP's `system.HTML` artifact type must import as module `system` in the
    # pipeline's containers (see components/kfp_system/__init__.py).
    package_dir={"system": "components/kfp_system"},
    package_data={"serving": ["configs/*"], "components.html_pages": ["templates/*.html"],
                  # Each model's recorded accuracy over seeds, which the evaluation report shows.
                  "components.models": ["*/recorded_seeds.json"]},
    install_requires=[
        "tfx>=1.21,<1.22",
        "tensorflow-serving-api",
        "pillow",
        "matplotlib",
        "jinja2",
        "scikit-learn",
    ],
    entry_points={"console_scripts": ["catsdogs=pipeline.cli:main"]},
)
