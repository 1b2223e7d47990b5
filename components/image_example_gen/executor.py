"""Beam executor of ImageExampleGen.

Every file under the input base is accounted for: it becomes an example, or it
is rejected (with the reason) or skipped (not an image by name). The report
lands next to the examples: ingestion_report.json and rejected_files.tsv.
"""
import json
import logging
import os
from typing import Any, Dict, List

import apache_beam as beam
import tensorflow as tf
from google.protobuf import json_format, struct_pb2
from tfx.components.example_gen import base_example_gen_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components import contract
from components.image_example_gen import layout as layout_lib
from components.image_example_gen.image_checks import ImageLimits, rejection_reason

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


class IngestionError(RuntimeError):
    """Too many input files were rejected."""


def custom_config_for(max_rejected_fraction: float, max_image_pixels: int) -> example_gen_pb2.CustomConfig:
    settings = struct_pb2.Struct()
    settings.update({MAX_REJECTED_FRACTION: max_rejected_fraction, MAX_IMAGE_PIXELS: max_image_pixels})
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(settings)
    return config


def _settings_from(exec_properties: Dict[str, Any]) -> Dict[str, float]:
    settings = {MAX_REJECTED_FRACTION: 0.01, MAX_IMAGE_PIXELS: 50_000_000}
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if raw:
        config = example_gen_pb2.CustomConfig()
        proto_utils.json_to_proto(raw, config)
        struct = struct_pb2.Struct()
        if config.custom_config.Unpack(struct):
            settings.update(json_format.MessageToDict(struct))
    return settings


class _ReadAndCheck(beam.DoFn):
    """Reads one file; emits a tf.Example, or (path, reason) on the 'rejected' output."""

    REJECTED = "rejected"

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
        reason = rejection_reason(data, self._limits)
        if reason:
            yield beam.pvalue.TaggedOutput(self.REJECTED, (path, reason))
            return
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
                _ReadAndCheck.REJECTED, main="examples"))
    _ = (results[_ReadAndCheck.REJECTED]
         | "FormatRejected" >> beam.Map(lambda item: json.dumps({"path": item[0], "reason": item[1]}))
         | "WriteRejected" >> beam.io.WriteToText(os.path.join(work_dir, f"rejected-{split}"),
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
        super().Do(input_dict, output_dict, exec_properties)

        report = _collect_report(data_layout, work_dir)
        _write_outputs(examples, data_layout, report)
        tf.io.gfile.rmtree(work_dir)
        _log_report(report, examples.uri)
        _enforce_rejection_limit(report, float(settings[MAX_REJECTED_FRACTION]))


def _collect_report(data_layout: layout_lib.DataLayout, work_dir: str) -> Dict[str, Any]:
    splits, rejected = {}, []
    for name, listing in data_layout.splits.items():
        with tf.io.gfile.GFile(os.path.join(work_dir, f"written-{name}")) as file:
            written = int(file.read().strip() or 0)
        with tf.io.gfile.GFile(os.path.join(work_dir, f"rejected-{name}")) as file:
            split_rejected = [dict(json.loads(line), split=name) for line in file if line.strip()]
        rejected.extend(sorted(split_rejected, key=lambda item: item["path"]))
        skipped = [{"path": path, "reason": reason, "split": name} for path, reason in listing.skipped]
        splits[name] = {
            "files_seen": len(listing.image_files) + len(listing.skipped),
            "examples_written": written,
            "files_rejected": len(split_rejected),
            "files_skipped": len(skipped),
            "skipped": skipped,
        }
        accounted = written + len(split_rejected)
        if accounted != len(listing.image_files):
            raise IngestionError(f"split {name}: {len(listing.image_files)} image files listed but "
                                 f"{written} written + {len(split_rejected)} rejected; files were lost")
    totals = {key: sum(s[key] for s in splits.values())
              for key in ("files_seen", "examples_written", "files_rejected", "files_skipped")}
    return {"class_names": list(data_layout.class_names), "splits": splits, "totals": totals,
            "rejected": rejected}


def _write_outputs(examples, data_layout: layout_lib.DataLayout, report: Dict[str, Any]) -> None:
    with tf.io.gfile.GFile(os.path.join(examples.uri, contract.CLASS_NAMES_FILE), "w") as file:
        json.dump(list(data_layout.class_names), file)
    with tf.io.gfile.GFile(os.path.join(examples.uri, REPORT_FILE), "w") as file:
        json.dump(report, file, indent=2)
    with tf.io.gfile.GFile(os.path.join(examples.uri, REJECTED_FILE), "w") as file:
        file.write("split\tpath\treason\n")
        for item in report["rejected"]:
            file.write(f"{item['split']}\t{item['path']}\t{item['reason']}\n")
    examples.set_string_custom_property("class_names", json.dumps(list(data_layout.class_names)))
    for key, value in report["totals"].items():
        examples.set_int_custom_property(key, value)


def _log_report(report: Dict[str, Any], uri: str) -> None:
    for name, split in report["splits"].items():
        logging.info("ImageExampleGen %s: %d files seen = %d examples + %d rejected + %d skipped",
                     name, split["files_seen"], split["examples_written"], split["files_rejected"],
                     split["files_skipped"])
    for item in report["rejected"][:_WORST_FILES_SHOWN]:
        logging.warning("ImageExampleGen rejected %s: %s", item["path"], item["reason"])
    if report["rejected"] or report["totals"]["files_skipped"]:
        logging.warning("ImageExampleGen: %d rejected and %d skipped files are listed in %s",
                        len(report["rejected"]), report["totals"]["files_skipped"],
                        os.path.join(uri, REPORT_FILE))


def _enforce_rejection_limit(report: Dict[str, Any], max_fraction: float) -> None:
    totals = report["totals"]
    candidates = totals["examples_written"] + totals["files_rejected"]
    fraction = totals["files_rejected"] / candidates if candidates else 0.0
    if fraction > max_fraction:
        worst = "; ".join(f"{item['path']}: {item['reason']}" for item in report["rejected"][:_WORST_FILES_SHOWN])
        raise IngestionError(
            f"{totals['files_rejected']} of {candidates} image files rejected ({fraction:.1%}), "
            f"more than the allowed {max_fraction:.1%}. First rejected: {worst}")
