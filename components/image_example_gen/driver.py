"""ImageExampleGen's driver: TFX's FileBasedDriver with an input fingerprint that
survives the files ingestion reports.

Before the executor runs, TFX's driver fingerprints the input files (for
caching) with tf.io.gfile: glob, then stat of every match. A broken symbolic
link makes stat raise NotFoundError, and a file name that is not UTF-8 makes
glob raise UnicodeDecodeError, so one such file ended the run before
ImageExampleGen could report it. This driver computes the same fingerprint
text (same fields, same values on ordinary files, so caches stay valid) with
Python's os module on local folders, where a broken link counts with the link's
own size and time. Remote file systems (gs://, ...) have neither kind of name
and keep TFX's own code.
"""
import os
from typing import Iterable, Optional, Tuple

from tfx.components.example_gen import driver, input_processor
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.utils import io_utils

from components.image_example_gen import data_fingerprint

_NANOS_PER_SECOND = 1_000_000_000


def split_fingerprint(split_name: str, file_pattern: str) -> str:
    """tfx.utils.io_utils.generate_fingerprint's text, computed without failing on
    broken symbolic links or names that are not UTF-8."""
    if "://" in file_pattern:
        return io_utils.generate_fingerprint(split_name, file_pattern)
    files = list(data_fingerprint.local_files(file_pattern))
    total_bytes = xor_checksum = sum_checksum = 0
    for _, stat in files:
        total_bytes += stat.st_size
        mtime = stat.st_mtime_ns // _NANOS_PER_SECOND  # TFX keeps whole seconds
        xor_checksum ^= mtime
        sum_checksum += mtime
    return (f"split:{split_name},num_files:{len(files)},total_bytes:{total_bytes},"
            f"xor_checksum:{xor_checksum},sum_checksum:{sum_checksum}")


class ImageFolderInputProcessor(input_processor.FileBasedInputProcessor):
    """FileBasedInputProcessor whose fingerprint comes from split_fingerprint.

    Patterns with span, date or version placeholders keep TFX's resolution
    (ImageExampleGen's own patterns have none)."""

    def resolve_span_and_version(self) -> Tuple[int, Optional[int]]:
        if self._is_match_span or self._is_match_date or self._is_match_version:
            return super().resolve_span_and_version()
        self._fingerprint = "\n".join(
            split_fingerprint(split.name, os.path.join(self._input_base_uri, split.pattern))
            for split in self._splits)
        return 0, None


class ImageFolderDriver(driver.FileBasedDriver):
    """FileBasedDriver with ImageFolderInputProcessor (LocalDagRunner and other
    in-process TFX orchestrators run it before the executor)."""

    def get_input_processor(self, splits: Iterable[example_gen_pb2.Input.Split],
                            range_config: Optional[range_config_pb2.RangeConfig] = None,
                            input_base_uri: Optional[str] = None) -> input_processor.InputProcessor:
        assert input_base_uri
        return ImageFolderInputProcessor(input_base_uri, splits, range_config)
