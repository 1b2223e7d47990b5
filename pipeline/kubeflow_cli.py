"""`catsdogs compile | upload | submit`: the pipeline on Kubeflow Pipelines v2.

compile  builds the KFP PipelineSpec YAML (pipeline/kubeflow_runner.py);
upload   puts it into KFP as a pipeline, or as a new version of an existing one;
submit   starts a run of a compiled package, with parameters, in an experiment.
upload and submit talk to the KFP API through pipeline/kubeflow_client.py (kfp.Client).
"""
import argparse
import dataclasses
import datetime
import json
import os
import sys

from pipeline import configs, kubeflow_client, kubeflow_pipeline_root, model_registry
from pipeline.kubeflow_client import ConnectionSettings, KfpError


def _key_value(text: str) -> tuple:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _toleration(text: str):
    """KEY[=VALUE][:EFFECT], as kubectl taint writes taints."""
    from pipeline import kubeflow_platform
    spec, _, effect = text.partition(":")
    key, sep, value = spec.partition("=")
    if not key:
        raise argparse.ArgumentTypeError(f"expected KEY[=VALUE][:EFFECT], got {text!r}")
    effect = effect or "NoSchedule"
    if effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise argparse.ArgumentTypeError(f"toleration effect {effect!r} is not NoSchedule, "
                                         "PreferNoSchedule or NoExecute")
    return kubeflow_platform.Toleration(key=key, operator="Equal" if sep else "Exists",
                                        value=value, effect=effect)


def _models(text: str) -> tuple:
    try:
        return tuple(model.key for model in model_registry.parse_model_list(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_compile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="pipeline.yaml",
                        help="compiled PipelineSpec, .yaml (default: %(default)s)")
    parser.add_argument("--image", help="pipeline container image NAME:TAG built from the "
                        "Dockerfile, for every task and any remote Beam worker's --sdk_container_image "
                        f"(default: {configs.PIPELINE_IMAGE})")
    parser.add_argument("--pipeline-root", help="where the tasks write artifacts, gs://BUCKET/PATH: "
                        "the package's defaultPipelineRoot, which runs start with (the KFP UI's run "
                        "form shows it; `submit` sends it)")
    parser.add_argument("--data-root", help="default of the data_root run parameter")
    parser.add_argument("--serving-model-dir", help="TF Serving model base path that Pusher "
                        "writes to: a path inside --serving-volume-claim, or gs://...")
    parser.add_argument("--serving-volume-claim", help="PersistentVolumeClaim mounted at "
                        "--serving-model-dir in every task; '' for none (gs:// model dir)")
    parser.add_argument("--models", type=_models, help="models to train, comma-separated: "
                        f"{', '.join(model_registry.keys())} (default: {','.join(model_registry.DEFAULT_MODELS)})")
    parser.add_argument("--gpus", type=int, help="GPUs per Trainer pod (0: CPU training; default 1)")
    parser.add_argument("--gpu-resource", help="extended resource name (default nvidia.com/gpu)")
    parser.add_argument("--gpu-node-selector", type=_key_value, action="append", metavar="KEY=VALUE",
                        help="node label for Trainer pods; repeatable; replaces the default "
                        "cloud.google.com/gke-accelerator=nvidia-tesla-t4")
    parser.add_argument("--gpu-toleration", type=_toleration, action="append",
                        metavar="KEY[=VALUE][:EFFECT]", help="toleration for Trainer pods; "
                        "repeatable; replaces the default nvidia.com/gpu:NoSchedule")
    parser.add_argument("--trainer-cpu", help="Trainer CPU limit (default 8)")
    parser.add_argument("--trainer-memory", help="Trainer memory limit (default 32Gi)")
    parser.add_argument("--trainer-retries", type=int, metavar="N", help="times KFP runs a failed "
                        "Trainer again; it resumes from its last finished epoch (default 3, waits "
                        "from 120 s doubling up to 30 min)")
    parser.add_argument("--task-retries", type=int, metavar="N", help="times KFP runs any other "
                        "failed task again (default 1, after 30 s)")
    parser.add_argument("--beam-arg", action="append", metavar="ARG", help="Beam pipeline "
                        "argument for the data components, repeatable, replaces the DirectRunner "
                        "defaults (e.g. --beam-arg=--runner=DataflowRunner); --sdk_container_image=IMAGE is "
                        "added unless one names the workers' packages")
    parser.add_argument("--display-name", help="pipeline display name")
    parser.add_argument("--no-cache", action="store_true", help="disable TFX/KFP caching")
    parser.add_argument("--quick", action="store_true", help="tiny training budgets and smoke-run blessing "
                        "floors, those of `run-local --quick`, as the *_hparams and *_eval_config defaults: "
                        "a smoke run of every task")


def _add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=os.environ.get("KFP_HOST"), help="KFP API endpoint, "
                        "e.g. http://localhost:8080 after `kubectl port-forward -n kubeflow "
                        "svc/ml-pipeline-ui 8080:80` (env KFP_HOST)")
    parser.add_argument("--token", default=os.environ.get("KFP_TOKEN"), help="bearer token "
                        "for the KFP API (env KFP_TOKEN), e.g. `kubectl create token SA`")
    parser.add_argument("--namespace", help="Kubeflow profile namespace (multi-user KFP)")
    parser.add_argument("--cookies", default=os.environ.get("KFP_COOKIES"),
                        help="Cookie header for KFP behind a login proxy (env KFP_COOKIES)")
    parser.add_argument("--ssl-ca-cert", help="CA bundle for an https host")
    parser.add_argument("--health-timeout", type=float, default=10.0,
                        help="seconds to wait for the KFP API to answer (default %(default)s)")
    parser.add_argument("--package", default="pipeline.yaml",
                        help="compiled pipeline from `catsdogs compile` (default: %(default)s)")


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    if command == "compile":
        _add_compile_arguments(parser)
        return
    _add_connection_arguments(parser)
    if command == "upload":
        parser.add_argument("--pipeline-name", help="name in KFP (default: the package's name)")
        parser.add_argument("--version", help="version name when the pipeline exists "
                            "(default: NAME-YYYYmmdd-HHMMSS)")
        parser.add_argument("--description", help="description shown in the UI")
    elif command == "submit":
        parser.add_argument("--experiment", default="catsdogs",
                            help="experiment name, created if missing (default: %(default)s)")
        parser.add_argument("--run-name", help="run name (default: NAME YYYY-mm-dd HH-MM-SS)")
        parser.add_argument("--param", type=_key_value, action="append", default=[],
                            metavar="NAME=VALUE", help="pipeline parameter, repeatable")
        parser.add_argument("--service-account", help="Kubernetes service account of the run's "
                            "pods (k8s/ creates catsdogs-pipeline)")
        parser.add_argument("--pipeline-root", help="this run's pipeline root, gs://BUCKET/PATH "
                            "(default: the package's defaultPipelineRoot)")
        parser.add_argument("--no-cache", action="store_true", help="disable caching for this run")
    else:
        raise ValueError(f"unknown command {command!r}")


def kubeflow_config_from_args(args):
    """KubeflowConfig with the defaults, overridden by the options given."""
    from pipeline import kubeflow_runner
    config = kubeflow_runner.KubeflowConfig()
    overrides = {}
    for field, value in (("image", args.image), ("pipeline_root", args.pipeline_root),
                         ("data_root", args.data_root), ("serving_model_dir", args.serving_model_dir),
                         ("models", args.models), ("display_name", args.display_name)):
        if value is not None:
            overrides[field] = value
    if args.serving_volume_claim is not None:
        overrides["serving_volume_claim"] = args.serving_volume_claim or None
    if args.beam_arg:
        overrides["beam_pipeline_args"] = tuple(args.beam_arg)
    if args.no_cache:
        overrides["enable_cache"] = False
    if args.quick:
        overrides["settings"] = dataclasses.replace(config.settings, quick=True)
    if args.gpus is not None or args.gpu_resource:
        overrides["gpu"] = dataclasses.replace(
            config.gpu, **{k: v for k, v in (("count", args.gpus),
                                             ("resource_type", args.gpu_resource)) if v is not None})
    if args.gpu_node_selector or args.gpu_toleration:
        placement = config.gpu_placement
        if args.gpu_node_selector:
            placement = dataclasses.replace(placement, node_selector=dict(args.gpu_node_selector))
        if args.gpu_toleration:
            placement = dataclasses.replace(placement, tolerations=tuple(args.gpu_toleration))
        overrides["gpu_placement"] = placement
    for value, field in ((args.trainer_retries, "trainer_retry"), (args.task_retries, "task_retry")):
        if value is not None:
            overrides[field] = dataclasses.replace(getattr(config, field), max_retries=value)
    if args.trainer_cpu or args.trainer_memory:
        resources = config.trainer_resources
        for quantity, field in ((args.trainer_cpu, "cpu_limit"), (args.trainer_memory, "memory_limit")):
            if quantity:
                resources = dataclasses.replace(resources, **{field: quantity})
        overrides["trainer_resources"] = resources
    return dataclasses.replace(config, **overrides)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def run_compile(args) -> int:
    from pipeline import kubeflow_runner
    config = kubeflow_config_from_args(args)
    root_warning = (kubeflow_pipeline_root.check(config.pipeline_root) if config.pipeline_root
                    else kubeflow_pipeline_root.missing_root_warning())
    if root_warning:
        _warn(root_warning)
    print(f"compiling {config.pipeline_name} for Kubeflow Pipelines v2 (image {config.image}) ...",
          file=sys.stderr)
    compiled = kubeflow_runner.compile_pipeline(config, args.output)
    print(kubeflow_runner.describe(compiled))
    return 0


# ---- talking to the KFP API -------------------------------------------------------------

def connection_from_args(args) -> ConnectionSettings:
    """--host, --token, ... as ConnectionSettings; ValueError for a missing or malformed host."""
    if not args.host:
        raise ValueError("no KFP host: pass --host URL (or set KFP_HOST)")
    host = args.host.rstrip("/")
    if not host.startswith(("http://", "https://")):
        raise ValueError(f"--host {args.host!r} must start with http:// or https://")
    return ConnectionSettings(host=host, token=args.token, namespace=args.namespace,
                              cookies=args.cookies, ssl_ca_cert=args.ssl_ca_cert,
                              health_timeout_s=args.health_timeout)


def run_upload(args) -> int:
    from pipeline import kubeflow_package
    package = kubeflow_package.load_package(args.package)
    settings = connection_from_args(args)
    client = kubeflow_client.make_client(settings)
    result = kubeflow_client.upload(client, settings, args.package, args.pipeline_name or package.name,
                                    args.version, args.description)
    print(json.dumps(result, indent=2))
    return 0


def run_submit(args) -> int:
    from pipeline import kubeflow_package
    package = kubeflow_package.load_package(args.package)
    parameters = package.pipeline_spec["root"].get("inputDefinitions", {}).get("parameters", {})
    arguments = kubeflow_client.typed_arguments(
        args.param, {n: p.get("parameterType", "STRING") for n, p in parameters.items()})
    pipeline_root = args.pipeline_root or package.default_pipeline_root
    if pipeline_root:
        root_warning = kubeflow_pipeline_root.check(pipeline_root)
        if root_warning:
            _warn(root_warning)
    else:
        _warn(kubeflow_pipeline_root.missing_root_warning())
    settings = connection_from_args(args)
    client = kubeflow_client.make_client(settings)
    result = kubeflow_client.submit(
        client, settings, args.package, arguments, pipeline_root=pipeline_root,
        run_name=args.run_name or f"{package.name} {datetime.datetime.now():%Y-%m-%d %H-%M-%S}",
        experiment=args.experiment, enable_caching=False if args.no_cache else None,
        service_account=args.service_account)
    print(json.dumps(result, indent=2))
    return 0


def run(args) -> int:
    """Exit status as every `catsdogs` sub-command (pipeline/cli.py): 2 for wrong input
    (arguments, files), 1 when the KFP API fails or refuses."""
    handlers = {"compile": run_compile, "upload": run_upload, "submit": run_submit}
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        print(f"catsdogs {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KfpError as error:
        print(f"catsdogs {args.command}: error: {error}", file=sys.stderr)
        return 1
