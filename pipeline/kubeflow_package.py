"""A compiled pipeline package (`catsdogs compile` output) read back and checked.

Kept free of TFX/TensorFlow imports so `catsdogs upload` and `submit` start fast.
"""
import dataclasses
from typing import Dict, Mapping, Optional

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2


@dataclasses.dataclass(frozen=True)
class PipelinePackage:
    """A compiled pipeline file read back: its PipelineSpec and platform spec as dicts."""
    pipeline_spec: Mapping
    platform_spec: Mapping

    @property
    def name(self) -> str:
        return self.pipeline_spec["pipelineInfo"]["name"]

    @property
    def default_pipeline_root(self) -> Optional[str]:
        return self.pipeline_spec.get("defaultPipelineRoot") or None

    def parameter_defaults(self) -> Dict[str, object]:
        parameters = self.pipeline_spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
        return {name: spec.get("defaultValue") for name, spec in parameters.items()}


def load_package(path: str) -> PipelinePackage:
    """Reads a compiled pipeline; a clear error if it is not a KFP v2 PipelineSpec YAML."""
    try:
        with open(path) as stream:
            documents = [d for d in yaml.safe_load_all(stream) if d is not None]
    except FileNotFoundError:
        raise FileNotFoundError(f"pipeline package {path} does not exist; run `catsdogs compile "
                                f"--output {path}` first") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not YAML: {error}") from None
    if not documents or not isinstance(documents[0], dict):
        raise ValueError(f"{path} is empty or not a mapping: not a KFP pipeline package")
    first = documents[0]
    if "pipelineSpec" in first:
        raise ValueError(f"{path} is TFX's PipelineJob wrapper (pipeline.json form); the KFP API "
                         "wants the PipelineSpec itself: recompile with `catsdogs compile --output "
                         "pipeline.yaml`")
    if "pipelineInfo" not in first or "root" not in first:
        raise ValueError(f"{path} is not a KFP v2 PipelineSpec (no pipelineInfo/root)")
    json_format.ParseDict(first, pipeline_spec_pb2.PipelineSpec())
    platform = documents[1] if len(documents) > 1 else {}
    if platform:
        json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    return PipelinePackage(pipeline_spec=first, platform_spec=platform)
