"""Beam executor of ImageExampleGen.

Every file under the input base is accounted for: it becomes an example, or it
is rejected (with the reason) or skipped (not an image to train on: no image
extension, hidden, or outside a class folder). No single file can end the run:
whatever goes wrong while reading or checking it becomes its rejection reason.
The report lands next to the examples: ingestion_report.json and
rejected_files.tsv (tab-separated, csv-quoted, so any file name reads back intact);
a run that fails on the rejection limit writes it beside them instead
(<examples>-failed-ingestion/), since TFX deletes a failed execution's outputs.
"""
import csv
import io
import json
import logging
import os
from typing import Any, Dict

import apache_beam as beam
import tensorflow as tf
from google.protobuf import json_format, struct_pb2
from tfx.components.example_gen import base_example_gen_executor, utils, write_split
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components import contract
from components.image_example_gen import layout as layout_lib
from components.image_example_gen.errors import IngestionError
from components.image_example_gen.image_checks import ImageCheck, ImageLimits, check_image

__all__ = ["Executor", "IngestionError", "custom_config_for"]

MAX_REJECTED_FRACTION = "max_rejected_fraction"
MAX_IMAGE_PIXELS = "max_image_pixels"
REPORT_FILE = "ingestion_report.json"
REJECTED_FILE = "rejected_files.tsv"

# Private exec_properties keys: how Do() hands the scanned layout to the
# per-split PTransforms, which TFX's base executor builds.
_LAYOUT_KEY = "_image_layout"
_LIMITS_KEY = "_image_limits"
_WORK_DIR_KEY = "_image_report_work_dir"
_PROGRESS_EVERY = 500
_WORST_FILES_SHOWN = 10


def custom_config_for(max_rejected_fraction: float, max_image_pixels: int) -> example_gen_pb2.CustomConfig:
    settings = struct_pb2.Struct()
    settings.update({MAX_REJECTED_FRACTION: max_rejected_fraction, MAX_IMAGE_PIXELS: max_image_pixels})
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(settings)
    return config


def _settings_from(exec_properties: Dict[str, Any]) -> Dict[str, float]:
    settings = {MAX_REJECTED_FRACTION: contract.DEFAULT_MAX_REJECTED_FRACTION,
                MAX_IMAGE_PIXELS: contract.DEFAULT_MAX_IMAGE_PIXELS}
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if raw:
        config = example_gen_pb2.CustomConfig()
        proto_utils.json_to_proto(raw, config)
        struct = struct_pb2.Struct()
        if config.custom_config.Unpack(struct):
            settings.update(json_format.MessageToDict(struct))
    return settings


class _ReadAndCheck(beam.DoFn):
    """Reads one file; emits a tf.Example, or (path, reason) on the 'rejected' output.
    An accepted image whose EXIF orientation is not upright also goes, as
    (path, orientation), to the 'exif_rotation' output."""

    REJECTED = "rejected"
    EXIF_ROTATION = "exif_rotation"

    def __init__(self, split: str, split_dir: str, class_names, limits: ImageLimits, total: int):
        self._split, self._split_dir, self._limits, self._total = split, split_dir, limits, total
        self._labels = {name: index for index, name in enumerate(class_names)}
        self._seen = 0

    def process(self, element):
        path, class_name = element
        self._seen += 1
        if self._seen % _PROGRESS_EVERY == 0:
            logging.info("ImageExampleGen %s: %d of about %d files read", self._split, self._seen, self._total)
        try:
            with tf.io.gfile.GFile(path, "rb") as file:
                data = file.read()
        except (OSError, tf.errors.OpError) as error:
            yield beam.pvalue.TaggedOutput(self.REJECTED, (path, f"unreadable file: {error}"))
            return
        try:
            check = check_image(data, self._limits)
        except Exception as error:  # pylint: disable=broad-except
            # One file must never end the run: whatever a decoder raises becomes its reason.
            logging.warning("ImageExampleGen: checking %s raised %s: %s", path, type(error).__name__, error)
            check = ImageCheck(f"could not be checked: {type(error).__name__}: {error}")
        if check.reason:
            yield beam.pvalue.TaggedOutput(self.REJECTED, (path, check.reason))
            return
        if check.exif_orientation is not None:
            yield beam.pvalue.TaggedOutput(self.EXIF_ROTATION, (path, check.exif_orientation))
        relative = os.path.relpath(path, self._split_dir)
        yield tf.train.Example(features=tf.train.Features(feature={
            contract.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
            contract.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[self._labels[class_name]])),
            contract.FILENAME_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[relative.encode()])),
        }))


def _split_name(exec_properties: Dict[str, Any], split_pattern: str) -> str:
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
    return next(split.name for split in input_config.splits if split.pattern == split_pattern)


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _ImagesToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                     split_pattern: str) -> beam.pvalue.PCollection:
    data_layout: layout_lib.DataLayout = exec_properties[_LAYOUT_KEY]
    split = _split_name(exec_properties, split_pattern)
    listing = data_layout.splits[split]
    work_dir = exec_properties[_WORK_DIR_KEY]
    results = (
        pipeline
        | "ListFiles" >> beam.Create(listing.image_files)
        | "Distribute" >> beam.Reshuffle()
        | "ReadAndCheck" >> beam.ParDo(_ReadAndCheck(
            split, os.path.join(data_layout.root, split), data_layout.class_names,
            exec_properties[_LIMITS_KEY], len(listing.image_files))).with_outputs(
                _ReadAndCheck.REJECTED, _ReadAndCheck.EXIF_ROTATION, main="examples"))
    _ = (results[_ReadAndCheck.REJECTED]
         | "FormatRejected" >> beam.Map(lambda item: json.dumps({"path": item[0], "reason": item[1]}))
         | "WriteRejected" >> beam.io.WriteToText(os.path.join(work_dir, f"rejected-{split}"),
                                                  shard_name_template=""))
    _ = (results[_ReadAndCheck.EXIF_ROTATION]
         | "FormatExif" >> beam.Map(lambda item: json.dumps({"path": item[0], "orientation": item[1]}))
         | "WriteExif" >> beam.io.WriteToText(os.path.join(work_dir, f"exif-{split}"),
                                              shard_name_template=""))
    _ = (results["examples"]
         | "CountWritten" >> beam.combiners.Count.Globally()
         | "WriteCount" >> beam.io.WriteToText(os.path.join(work_dir, f"written-{split}"),
                                               shard_name_template=""))
    return results["examples"]


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """FileBasedExampleGen executor for SPLIT/CLASS/image folders."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ImagesToExample

    def Do(self, input_dict, output_dict, exec_properties: Dict[str, Any]) -> None:
        settings = _settings_from(exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        split_names = [split.name for split in input_config.splits]
        data_layout = layout_lib.scan_layout(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                                             split_names)
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        work_dir = os.path.join(examples.uri, ".ingestion")
        logging.info("ImageExampleGen: classes %s; %s", ", ".join(data_layout.class_names),
                     ", ".join(f"{name}: {len(s.image_files)} image files" for name, s in data_layout.splits.items()))
        exec_properties = dict(exec_properties, **{
            _LAYOUT_KEY: data_layout,
            _LIMITS_KEY: ImageLimits(max_pixels=int(settings[MAX_IMAGE_PIXELS])),
            _WORK_DIR_KEY: work_dir,
        })
        self._generate_examples(output_dict, exec_properties)

        report = _collect_report(data_layout, work_dir)
        tf.io.gfile.rmtree(work_dir)
        limit_error = _rejection_limit_error(report, float(settings[MAX_REJECTED_FRACTION]))
        # A failed execution's output folder is deleted by TFX's launcher: the
        # report of a run that fails on the limit goes beside it, where it stays.
        report_dir = failed_report_dir(examples.uri) if limit_error else examples.uri
        _write_report_files(report_dir, report)
        _log_report(report, report_dir)
        if limit_error:
            raise IngestionError(f"{limit_error}; all {len(report['rejected'])} are listed in "
                                 f"{os.path.join(report_dir, REJECTED_FILE)}")
        _write_outputs(examples, data_layout, report)

    def _generate_examples(self, output_dict, exec_properties: Dict[str, Any]) -> None:
        """BaseExampleGenExecutor.Do without the shuffle before writing: TFX's
        WriteSplit reshuffles the serialized examples, and the DirectRunner (and
        Beam's local job service) hold a shuffle's whole input in memory, every
        image of the split (benchmarks/RESULTS-scaling.md). The file listing is
        reshuffled instead (a path per image, which still spreads the reading
        over the workers of a distributed runner); the files are written in the
        listing's order, as the shuffle left them on these runners."""
        self._log_startup({}, output_dict, exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        examples_artifacts = output_dict[standard_component_specs.EXAMPLES_KEY]
        examples = artifact_utils.get_single_instance(examples_artifacts)
        examples.split_names = artifact_utils.encode_split_names(
            utils.generate_output_split_names(input_config, output_config))
        with self._make_beam_pipeline() as pipeline:
            for split_name, split in self.GenerateExamplesByBeam(pipeline, exec_properties).items():
                _ = (split
                     | f"Serialize[{split_name}]" >> beam.ParDo(write_split.MaybeSerialize())
                     | f"Write[{split_name}]" >> beam.io.WriteToTFRecord(
                         os.path.join(artifact_utils.get_split_uri(examples_artifacts, split_name),
                                      write_split.DEFAULT_FILE_NAME),
                         file_name_suffix=".gz"))
        payload_format = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
        if payload_format:
            examples_utils.set_payload_format(examples, payload_format)
        file_format = exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY)
        if file_format:
            examples_utils.set_file_format(examples, write_split.to_file_format_str(file_format))


def _read_json_lines(path: str, split: str):
    with tf.io.gfile.GFile(path) as file:
        return [dict(json.loads(line), split=split) for line in file if line.strip()]


def _collect_report(data_layout: layout_lib.DataLayout, work_dir: str) -> Dict[str, Any]:
    splits, rejected, exif_rotation = {}, [], []
    for name, listing in data_layout.splits.items():
        with tf.io.gfile.GFile(os.path.join(work_dir, f"written-{name}")) as file:
            written = int(file.read().strip() or 0)
        read_rejected = _read_json_lines(os.path.join(work_dir, f"rejected-{name}"), name)
        if written + len(read_rejected) != len(listing.image_files):
            raise RuntimeError(f"split {name}: {len(listing.image_files)} image files listed but "
                               f"{written} written + {len(read_rejected)} rejected; files were lost")
        split_rejected = read_rejected + [{"path": path, "reason": reason, "split": name}
                                          for path, reason in listing.rejected]
        rejected.extend(sorted(split_rejected, key=lambda item: item["path"]))
        split_exif = _read_json_lines(os.path.join(work_dir, f"exif-{name}"), name)
        exif_rotation.extend(sorted(split_exif, key=lambda item: item["path"]))
        skipped = [{"path": path, "reason": reason, "split": name} for path, reason in listing.skipped]
        splits[name] = {
            "files_seen": len(listing.image_files) + len(listing.rejected) + len(listing.skipped),
            "examples_written": written,
            "files_rejected": len(split_rejected),
            "files_skipped": len(skipped),
            "images_with_exif_rotation": len(split_exif),
            "skipped": skipped,
        }
    totals = {key: sum(s[key] for s in splits.values())
              for key in ("files_seen", "examples_written", "files_rejected", "files_skipped",
                          "images_with_exif_rotation")}
    return {"class_names": list(data_layout.class_names), "splits": splits, "totals": totals,
            "rejected": rejected, "exif_rotation": exif_rotation}


def rejected_files_tsv(rejected) -> str:
    """split, path, reason per rejected file. csv's tab dialect (with its \\r\\n line ends,
    which make it quote a lone \\r too) quotes a field holding a tab, line break or quote,
    so csv.reader(file, dialect="excel-tab") gives every name back unchanged."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect="excel-tab")
    writer.writerow(["split", "path", "reason"])
    writer.writerows([item["split"], item["path"], item["reason"]] for item in rejected)
    return buffer.getvalue()


def failed_report_dir(examples_uri: str) -> str:
    return examples_uri.rstrip("/") + "-failed-ingestion"


def _write_report_files(report_dir: str, report: Dict[str, Any]) -> None:
    tf.io.gfile.makedirs(report_dir)
    with tf.io.gfile.GFile(os.path.join(report_dir, REPORT_FILE), "w") as file:
        json.dump(report, file, indent=2)
    with tf.io.gfile.GFile(os.path.join(report_dir, REJECTED_FILE), "w") as file:
        file.write(rejected_files_tsv(report["rejected"]))


def _write_outputs(examples, data_layout: layout_lib.DataLayout, report: Dict[str, Any]) -> None:
    with tf.io.gfile.GFile(os.path.join(examples.uri, contract.CLASS_NAMES_FILE), "w") as file:
        json.dump(list(data_layout.class_names), file)
    examples.set_string_custom_property("class_names", json.dumps(list(data_layout.class_names)))
    for key, value in report["totals"].items():
        examples.set_int_custom_property(key, value)


def _log_report(report: Dict[str, Any], report_dir: str) -> None:
    for name, split in report["splits"].items():
        logging.info("ImageExampleGen %s: %d files seen = %d examples + %d rejected + %d skipped",
                     name, split["files_seen"], split["examples_written"], split["files_rejected"],
                     split["files_skipped"])
    for item in report["rejected"][:_WORST_FILES_SHOWN]:
        logging.warning("ImageExampleGen rejected %s: %s", item["path"], item["reason"])
    if report["rejected"] or report["totals"]["files_skipped"]:
        logging.warning("ImageExampleGen: %d rejected and %d skipped files are listed in %s",
                        len(report["rejected"]), report["totals"]["files_skipped"],
                        os.path.join(report_dir, REPORT_FILE))
    if report["exif_rotation"]:
        logging.warning("ImageExampleGen: %d images carry an EXIF orientation other than upright (listed "
                        "under exif_rotation in %s). EXIF orientation is not applied: training and serving "
                        "both decode the raw pixels, so they agree, but such images are seen rotated or "
                        "mirrored", len(report["exif_rotation"]), os.path.join(report_dir, REPORT_FILE))


def _rejection_limit_error(report: Dict[str, Any], max_fraction: float) -> str:
    """'' when the share of rejected image files is within the limit, else the reason."""
    totals = report["totals"]
    candidates = totals["examples_written"] + totals["files_rejected"]
    fraction = totals["files_rejected"] / candidates if candidates else 0.0
    if fraction <= max_fraction:
        return ""
    worst = "; ".join(f"{item['path']}: {item['reason']}" for item in report["rejected"][:_WORST_FILES_SHOWN])
    return (f"{totals['files_rejected']} of {candidates} image files rejected ({fraction:.1%}), "
            f"more than the allowed {max_fraction:.1%}. First rejected: {worst}")
