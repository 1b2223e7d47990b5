"""Talking to the Kubeflow Pipelines API with kfp.Client: the library behind
`catsdogs upload` and `catsdogs submit` (pipeline/kubeflow_cli.py parses their options)."""
import dataclasses
import datetime
import json
from typing import Dict, Mapping, Optional, Sequence


class KfpError(Exception):
    """A KFP API problem with a message meant for the user."""


@dataclasses.dataclass(frozen=True)
class ConnectionSettings:
    host: str
    token: Optional[str]
    namespace: Optional[str]
    cookies: Optional[str]
    ssl_ca_cert: Optional[str]
    health_timeout_s: float


def check_reachable(settings: ConnectionSettings) -> dict:
    """One quick call of KFP's healthz, so an unreachable or wrong host fails fast
    with a reason. It goes through kfp_server_api's HealthzServiceApi, the call
    kfp.Client.get_kfp_healthz() makes, with the client's authentication, but
    once, with --health-timeout and no retries: get_kfp_healthz (also called by
    kfp.Client's constructor) tries five times 5 s apart, logging a traceback each time."""
    import kfp_server_api  # pylint: disable=import-outside-toplevel
    import urllib3  # pylint: disable=import-outside-toplevel
    configuration = kfp_server_api.Configuration(host=settings.host)
    configuration.retries = False
    if settings.ssl_ca_cert:
        configuration.ssl_ca_cert = settings.ssl_ca_cert
    if settings.token:  # as kfp.Client(existing_token=...) sends it
        configuration.api_key["authorization"] = settings.token
        configuration.api_key_prefix["authorization"] = "Bearer"
    healthz = kfp_server_api.HealthzServiceApi(kfp_server_api.ApiClient(configuration, cookie=settings.cookies))
    url = f"{settings.host}/apis/v2beta1/healthz"
    try:
        response = healthz.healthz_service_get_healthz(
            _preload_content=False, _request_timeout=(settings.health_timeout_s, settings.health_timeout_s))
    except kfp_server_api.ApiException as error:
        if not error.status:  # kfp_server_api's wrapping of a TLS failure
            raise KfpError(f"cannot reach KFP at {settings.host}: {error.reason}") from None
        hint = " (pass --token or --cookies)" if error.status in (401, 403) else ""
        body = error.body.decode(errors="replace") if isinstance(error.body, bytes) else str(error.body or "")
        raise KfpError(f"KFP at {settings.host} answered HTTP {error.status} to {url}{hint}: {body[:300]}") from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise KfpError(f"cannot reach KFP at {settings.host}: {reason}. Is the API port-forwarded "
                       "(kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80)?") from None
    try:
        return json.loads(response.data)
    except ValueError:
        raise KfpError(f"{url} did not answer JSON: {settings.host} does not look like the KFP "
                       "API (a login page? pass --token or --cookies)") from None


def make_client(settings: ConnectionSettings):
    """kfp.Client for these settings, after one quick healthz probe."""
    import kfp  # pylint: disable=import-outside-toplevel
    check_reachable(settings)
    return kfp.Client(host=settings.host, existing_token=settings.token,
                      namespace=settings.namespace or "kubeflow", cookies=settings.cookies,
                      ssl_ca_cert=settings.ssl_ca_cert)


def api_error_message(error) -> str:
    """The server's own message from a kfp_server_api.ApiException."""
    body = getattr(error, "body", None) or ""
    try:
        payload = json.loads(body)
        detail = payload.get("message") or payload.get("error") or body
    except (ValueError, AttributeError):
        detail = body
    return f"HTTP {getattr(error, 'status', '?')} {getattr(error, 'reason', '')}: {detail}".strip()


def upload(client, settings: ConnectionSettings, package_path: str, pipeline_name: str,
           version: Optional[str], description: Optional[str]) -> Dict[str, str]:
    """Uploads a new pipeline, or a new version when one of that name exists."""
    from kfp_server_api.exceptions import ApiException  # pylint: disable=import-outside-toplevel
    try:
        return _upload(client, package_path, pipeline_name, version, description, settings.namespace)
    except ApiException as error:
        raise KfpError(f"KFP at {settings.host} rejected the upload of {package_path}: "
                       f"{api_error_message(error)}") from None


def _upload(client, package_path: str, pipeline_name: str, version: Optional[str],
            description: Optional[str], namespace: Optional[str]) -> Dict[str, str]:
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        created = client.upload_pipeline(package_path, pipeline_name=pipeline_name,
                                         description=description, namespace=namespace)
        return {"pipeline_id": created.pipeline_id, "pipeline_name": pipeline_name, "created": "pipeline"}
    version = version or f"{pipeline_name}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    created = client.upload_pipeline_version(package_path, pipeline_version_name=version,
                                             pipeline_id=pipeline_id, description=description)
    return {"pipeline_id": pipeline_id, "pipeline_version_id": created.pipeline_version_id,
            "pipeline_name": pipeline_name, "version": version, "created": "version"}


def typed_arguments(raw: Sequence[tuple], parameter_types: Mapping[str, str]) -> Dict[str, object]:
    """--param NAME=VALUE pairs, checked against the package's parameters and typed;
    ValueError for an unknown name or a value of the wrong type."""
    arguments = {}
    for name, text in raw:
        if name not in parameter_types:
            raise ValueError(f"unknown pipeline parameter {name!r}; this package has: "
                             f"{', '.join(sorted(parameter_types)) or 'none'}")
        kind = parameter_types[name]
        try:
            if kind == "NUMBER_INTEGER":
                arguments[name] = int(text)
            elif kind == "NUMBER_DOUBLE":
                arguments[name] = float(text)
            elif kind == "BOOLEAN":
                if text.lower() not in ("true", "false"):
                    raise ValueError(text)
                arguments[name] = text.lower() == "true"
            else:
                arguments[name] = text
        except ValueError:
            raise ValueError(f"parameter {name}={text!r} is not a {kind.lower()}") from None
    return arguments


def submit(client, settings: ConnectionSettings, package_path: str, arguments: Mapping[str, object],
           run_name: str, experiment: str, enable_caching: Optional[bool],
           service_account: Optional[str], pipeline_root: Optional[str]) -> Dict[str, object]:
    """Starts a run of a compiled package in an experiment (created if missing). The
    run carries its pipeline root: the API server does not read the package's
    defaultPipelineRoot (only the UI's run form does), so a run without one
    would get the backend's default."""
    from kfp_server_api.exceptions import ApiException  # pylint: disable=import-outside-toplevel
    try:
        result = client.create_run_from_pipeline_package(
            package_path, arguments=dict(arguments), run_name=run_name,
            experiment_name=experiment, namespace=settings.namespace,
            enable_caching=enable_caching, service_account=service_account, pipeline_root=pipeline_root)
    except ApiException as error:
        raise KfpError(f"KFP at {settings.host} rejected the run of {package_path}: "
                       f"{api_error_message(error)}") from None
    return {"run_id": result.run_id, "run_name": run_name, "experiment": experiment,
            "arguments": dict(arguments), "pipeline_root": pipeline_root,
            "url": f"{settings.host}/#/runs/details/{result.run_id}"}
