"""k8s/: every kustomization renders with `kubectl kustomize`, every object validates
against the Kubernetes OpenAPI schema offline (kubernetes-validate, strict), every
Pod template passes the "restricted" Pod Security Standard, and the pieces refer
to each other correctly (volumes, claims, ports, probes, the Pusher's model list)."""
import os
import re
import shutil
import subprocess

import pytest
import yaml

from components.pusher.serving_layout import MODELS_CONFIG_FILE

K8S_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "k8s")
KUSTOMIZATIONS = ("base", "overlays/dev", "overlays/gke-gpu")
KUBERNETES_VERSION = "1.37.0"
POD_TEMPLATE_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
# Volume types the restricted profile allows.
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                           "persistentVolumeClaim", "projected", "secret"}

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None,
    reason="kubectl not installed (Debian/Ubuntu: apt-get install kubernetes-client); "
           "it renders k8s/ with `kubectl kustomize`")


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def rendered(request):
    result = subprocess.run(["kubectl", "kustomize", os.path.join(K8S_DIR, request.param)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"kubectl kustomize {request.param} failed:\n{result.stderr}"
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    assert objects, f"{request.param} rendered nothing"
    return request.param, objects


def _get(obj, path):
    for key in path:
        obj = obj[key]
    return obj


def _pod_specs(objects):
    for obj in objects:
        path = POD_TEMPLATE_PATHS.get(obj["kind"])
        if path:
            yield f"{obj['kind']}/{obj['metadata']['name']}", _get(obj, path)


def _one(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def test_every_object_validates_against_the_kubernetes_schema(rendered):
    import kubernetes_validate
    name, objects = rendered
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {error.message} at "
                          f"{'/'.join(map(str, error.path))}")
    assert not errors, f"{name}:\n" + "\n".join(errors)


def test_whole_system_is_present(rendered):
    name, objects = rendered
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
            "PodDisruptionBudget", "ServiceAccount", "Role", "RoleBinding",
            "NetworkPolicy"} <= kinds, name
    namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    assert len(namespaces) == 1
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") in namespaces, f"{obj['kind']} outside {namespaces}"


def test_every_pod_template_passes_restricted_pod_security(rendered):
    name, objects = rendered
    pod_specs = list(_pod_specs(objects))
    assert pod_specs, f"{name} has no Pod templates"
    for where, pod in pod_specs:
        pod_context = pod.get("securityContext", {})
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(field), f"{where}: {field}"
        for volume in pod.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= RESTRICTED_VOLUME_TYPES, f"{where}: volume {volume['name']} is {kinds}"
        for container in pod.get("initContainers", []) + pod["containers"]:
            where_c = f"{where} container {container['name']}"
            context = container.get("securityContext", {})
            assert context.get("allowPrivilegeEscalation") is False, where_c
            assert not context.get("privileged"), where_c
            assert "ALL" in context.get("capabilities", {}).get("drop", []), where_c
            assert set(context.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}, where_c
            run_as_non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
            assert run_as_non_root is True, where_c
            assert context.get("runAsUser", pod_context.get("runAsUser")) != 0, where_c
            seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
            assert seccomp.get("type") in ("RuntimeDefault", "Localhost"), where_c
            assert context.get("readOnlyRootFilesystem") is True, where_c
            for port in container.get("ports", []):
                assert "hostPort" not in port, where_c
            resources = container.get("resources", {})
            assert resources.get("requests") and resources.get("limits"), f"{where_c}: resources"


def _tf_serving(objects):
    deployment = _one(objects, "Deployment", "tf-serving")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = dict(a.lstrip("-").split("=", 1) for a in container["args"])
    return pod, container, args


def _config_files(objects, pod, container, args):
    """The ConfigMap files mounted where TF Serving's batching config is read."""
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_dir = args["batching_parameters_file"].rsplit("/", 1)[0]
    return _one(objects, "ConfigMap", volumes[mounts[config_dir]["name"]]["configMap"]["name"])["data"]


def test_tf_serving_reads_the_pushers_model_list_with_batching_and_monitoring(rendered):
    name, objects = rendered
    pod, container, args = _tf_serving(objects)
    assert container["image"].startswith("tensorflow/serving:")
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    files = _config_files(objects, pod, container, args)
    assert args["enable_batching"] == "true"
    for flag in ("batching_parameters_file", "monitoring_config_file"):
        assert os.path.basename(args[flag]) in files, flag
    # The model list is the Pusher's (components/pusher/serving_layout.py), in the
    # serving root beside the models, re-read so that first pushes get served.
    model_list = args["model_config_file"]
    assert os.path.basename(model_list) == MODELS_CONFIG_FILE
    assert float(args["model_config_file_poll_wait_seconds"]) > 0
    assert MODELS_CONFIG_FILE not in files, "a fixed model list would name models that were never pushed"
    if model_list.startswith("/"):
        mount = next(m for p, m in mounts.items() if model_list.startswith(p + "/"))
        _one(objects, "PersistentVolumeClaim", volumes[mount["name"]]["persistentVolumeClaim"]["claimName"])
        # Before the first push the file does not exist: an init container waits for it.
        waiter = next(c for c in pod.get("initContainers", []) if model_list in " ".join(c["args"]))
        assert {m["name"] for m in waiter["volumeMounts"]} == {mount["name"]}
    else:
        assert model_list.startswith("gs://"), model_list
        assert "initContainers" not in pod, f"{name}: nothing mounted to wait on"
    batching = files["batching_parameters.txt"]
    sizes = [int(s) for s in re.findall(r"allowed_batch_sizes:\s*(\d+)", batching)]
    assert sizes and sizes[-1] == int(re.search(r"max_batch_size\s*{\s*value:\s*(\d+)", batching)[1])
    assert "prometheus_config" in files["monitoring.config"]


def test_startup_and_readiness_probes_depend_on_no_single_model(rendered):
    """A model that was never blessed has no version, and TF Serving answers 404 for
    it forever: the probes use the Prometheus URL of monitoring.config, which answers
    200 once the server is up (tests/test_serving_probes.py shows it on the local server)."""
    _, objects = rendered
    pod, container, args = _tf_serving(objects)
    monitoring = _config_files(objects, pod, container, args)[os.path.basename(args["monitoring_config_file"])]
    prometheus_path = re.search(r'path:\s*"([^"]+)"', monitoring)[1]
    for probe in ("startupProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == "http"
        assert "/v1/models/" not in get["path"], f"{probe} depends on one model: {get['path']}"
        assert get["path"] == prometheus_path, probe
    assert args["rest_api_port"] == str(next(p["containerPort"] for p in container["ports"] if p["name"] == "http"))


def test_service_hpa_pdb_and_network_policy_point_at_tf_serving(rendered):
    _, objects = rendered
    deployment = _one(objects, "Deployment", "tf-serving")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    container_ports = {p["name"]: p["containerPort"]
                       for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    service = _one(objects, "Service", "tf-serving")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    ports = {p["port"]: container_ports[p["targetPort"]] for p in service["spec"]["ports"]}
    assert ports == {8500: 8500, 8501: 8501}
    hpa = _one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    pdb = _one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    assert any(p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] for p in policies)
    allow = [p for p in policies if p["spec"]["podSelector"].get("matchLabels", {}).items() <= pod_labels.items()
             and p["spec"]["podSelector"]]
    assert {port["port"] for p in allow for rule in p["spec"]["ingress"] for port in rule["ports"]} == {8500, 8501}


def test_pipeline_service_account_is_bound_to_its_role(rendered):
    _, objects = rendered
    binding = _one(objects, "RoleBinding", "catsdogs-pipeline")
    role = _one(objects, "Role", binding["roleRef"]["name"])
    subject = binding["subjects"][0]
    _one(objects, "ServiceAccount", subject["name"])
    granted = {(group, resource) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"]}
    assert ("", "configmaps") in granted and ("argoproj.io", "workflowtaskresults") in granted
    assert all("*" not in rule["verbs"] for rule in role["rules"])
