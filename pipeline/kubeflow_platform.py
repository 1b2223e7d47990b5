"""The Kubernetes platform spec of a compiled KFP v2 pipeline, as kfp-kubernetes writes it.

kfp-kubernetes (the KFP SDK's Kubernetes extension) cannot be installed next to
kfp 2.16 here, so the few messages this project uses are declared from its
schema (kubernetes_platform/proto/kubernetes_executor_config.proto in
kubeflow/pipelines: same package, names and field numbers). Executor configs are
built as those protobuf messages and turned into JSON the way kfp-kubernetes
does (json_format.MessageToDict), so a field name or type that the KFP backend
would not understand cannot be written (and json_format.ParseDict into
KubernetesExecutorConfig rejects one when a compiled file is read back).
"""
import dataclasses
from typing import Mapping, Sequence

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from kfp.pipeline_spec import pipeline_spec_pb2

PLATFORM = "kubernetes"
_PROTO_FILE = "catsdogs/kfp_kubernetes_executor_config.proto"
_PACKAGE = "kfp_kubernetes"
_INPUT_PARAMETER_SPEC = ".ml_pipelines.TaskInputsSpec.InputParameterSpec"

_F = descriptor_pb2.FieldDescriptorProto
# message -> (field name, number, type, label, message type name)
_SCHEMA = {
    "PvcMount": (
        ("constant", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("mount_path", 4, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("pvc_name_parameter", 5, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, _INPUT_PARAMETER_SPEC),
        ("sub_path", 6, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
    ),
    "NodeSelector": (
        ("labels", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".kfp_kubernetes.NodeSelector.LabelsEntry"),
    ),
    "PodMetadata": (
        ("labels", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".kfp_kubernetes.PodMetadata.LabelsEntry"),
        ("annotations", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED,
         ".kfp_kubernetes.PodMetadata.AnnotationsEntry"),
    ),
    "Toleration": (
        ("key", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("operator", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("value", 3, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("effect", 4, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
    ),
    "KubernetesExecutorConfig": (
        ("pvc_mount", 3, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".kfp_kubernetes.PvcMount"),
        ("node_selector", 4, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".kfp_kubernetes.NodeSelector"),
        ("pod_metadata", 5, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".kfp_kubernetes.PodMetadata"),
        ("image_pull_policy", 7, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("tolerations", 12, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".kfp_kubernetes.Toleration"),
    ),
}
# map<string, string> fields are repeated nested *Entry messages in descriptor form.
_MAP_ENTRIES = {"NodeSelector": ("LabelsEntry",), "PodMetadata": ("LabelsEntry", "AnnotationsEntry")}


def _build_messages():
    file_proto = descriptor_pb2.FileDescriptorProto(
        name=_PROTO_FILE, package=_PACKAGE, syntax="proto3",
        dependency=[pipeline_spec_pb2.DESCRIPTOR.name])
    for message_name, fields in _SCHEMA.items():
        message = file_proto.message_type.add(name=message_name)
        for entry_name in _MAP_ENTRIES.get(message_name, ()):
            entry = message.nested_type.add(name=entry_name)
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
            entry.field.add(name="value", number=2, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
        for name, number, field_type, label, type_name in fields:
            field = message.field.add(name=name, number=number, type=field_type, label=label)
            if type_name:
                field.type_name = type_name
    pool = descriptor_pool.Default()
    try:
        file_descriptor = pool.FindFileByName(_PROTO_FILE)
    except KeyError:
        file_descriptor = pool.Add(file_proto)
        file_descriptor = pool.FindFileByName(_PROTO_FILE)
    return {name: message_factory.GetMessageClass(file_descriptor.message_types_by_name[name])
            for name in _SCHEMA}


_MESSAGES = _build_messages()
KubernetesExecutorConfig = _MESSAGES["KubernetesExecutorConfig"]


@dataclasses.dataclass(frozen=True)
class Toleration:
    """A Kubernetes toleration (core/v1 Toleration)."""
    key: str
    operator: str = "Exists"
    value: str = ""
    effect: str = "NoSchedule"


@dataclasses.dataclass(frozen=True)
class VolumeClaimMount:
    """An existing PersistentVolumeClaim mounted into a task's pod."""
    claim_name: str
    mount_path: str


@dataclasses.dataclass(frozen=True)
class PodPlacement:
    """Where and how a task's pod is scheduled; empty means the cluster's defaults."""
    node_selector: Mapping[str, str] = dataclasses.field(default_factory=dict)
    tolerations: Sequence[Toleration] = ()
    volume_claims: Sequence[VolumeClaimMount] = ()
    pod_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.node_selector or self.tolerations or self.volume_claims or self.pod_labels)


def executor_config(placement: PodPlacement):
    """The KubernetesExecutorConfig message for one executor."""
    config = KubernetesExecutorConfig()
    for claim in placement.volume_claims:
        mount = config.pvc_mount.add(mount_path=claim.mount_path)
        # kfp-kubernetes writes the claim name both ways: the deprecated constant
        # for older KFP backends, the parameter form for current ones.
        mount.constant = claim.claim_name
        mount.pvc_name_parameter.runtime_value.constant.string_value = claim.claim_name
    for key, value in placement.node_selector.items():
        config.node_selector.labels[key] = value
    for toleration in placement.tolerations:
        config.tolerations.add(key=toleration.key, operator=toleration.operator,
                               value=toleration.value, effect=toleration.effect)
    for key, value in placement.pod_labels.items():
        config.pod_metadata.labels[key] = value
    return config


def build_platform_spec(placements: Mapping[str, PodPlacement]) -> pipeline_spec_pb2.PlatformSpec:
    """PlatformSpec with one Kubernetes executor config per executor label."""
    platform_spec = pipeline_spec_pb2.PlatformSpec()
    executors = platform_spec.platforms[PLATFORM].deployment_spec.executors
    for executor_label, placement in sorted(placements.items()):
        if placement.is_empty():
            continue
        executors[executor_label].update(json_format.MessageToDict(executor_config(placement)))
    if not executors:
        del platform_spec.platforms[PLATFORM]
    return platform_spec
