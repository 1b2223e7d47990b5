"""ImageExampleGen: TFX's FileBasedExampleGen with an image-folder Beam executor."""
from typing import Optional, Sequence

from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components import contract
from components.image_example_gen import driver, executor


def input_config_for(splits: Sequence[str] = contract.SPLITS) -> example_gen_pb2.Input:
    """One input split per folder; each pattern reads <split>/<class>/<file>."""
    return example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=split, pattern=f"{split}/*/*") for split in splits])


class ImageExampleGen(FileBasedExampleGen):
    """Reads SPLIT/CLASS/*.{jpg,jpeg,png} and writes gzipped TFRecords of tf.Example.

    Features (components/contract.py): image_raw (the file's bytes), label (index
    of the class in the sorted class folder names), filename (path relative to
    the split folder). The class names go into the Examples artifact as
    class_names.json, with ingestion_report.json and rejected_files.tsv.
    """

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
    # Fingerprints the input for caching without failing on a broken symbolic
    # link or a name that is not UTF-8 (the executor reports those files).
    DRIVER_CLASS = driver.ImageFolderDriver

    def __init__(self, input_base: str, splits: Sequence[str] = contract.SPLITS,
                 max_rejected_fraction: float = contract.DEFAULT_MAX_REJECTED_FRACTION,
                 max_image_pixels: int = contract.DEFAULT_MAX_IMAGE_PIXELS,
                 input_config: Optional[example_gen_pb2.Input] = None):
        super().__init__(
            input_base=input_base,
            input_config=input_config or input_config_for(splits),
            custom_config=executor.custom_config_for(max_rejected_fraction, max_image_pixels),
        )
