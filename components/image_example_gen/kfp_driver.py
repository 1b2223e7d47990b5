"""ImageExampleGen's driver on Kubeflow Pipelines v2 (the task's pre-cache check).

TFX's KFP v2 compiler gives every FileBasedExampleGen the driver
`tfx.orchestration.kubeflow.v2.file_based_example_gen.driver`, which
fingerprints the input with TFX's FileBasedInputProcessor and so fails on a
broken symbolic link or a file name that is not UTF-8 (on a mounted volume)
before ingestion can report the file. This entry point is that driver with
ImageFolderInputProcessor (driver.py), the one LocalDagRunner uses;
pipeline/kubeflow_runner.py points the compiled spec's driver hook here.
"""
import types

from absl import app
from tfx.orchestration.kubeflow.v2.file_based_example_gen import driver as tfx_kfp_driver

from components.image_example_gen.driver import ImageFolderInputProcessor


def main(args) -> None:
    # TFX's _run_driver builds `input_processor.FileBasedInputProcessor(...)` by that
    # module-level name; rebinding the name in TFX's driver module (not in TFX's
    # shared input_processor module) gives this driver the image-folder processor.
    tfx_input_processor = tfx_kfp_driver.input_processor
    tfx_kfp_driver.input_processor = types.SimpleNamespace(
        FileBasedInputProcessor=ImageFolderInputProcessor)
    try:
        tfx_kfp_driver.main(args)
    finally:
        tfx_kfp_driver.input_processor = tfx_input_processor


if __name__ == "__main__":
    app.run(main, flags_parser=tfx_kfp_driver._parse_flags)  # pylint: disable=protected-access
