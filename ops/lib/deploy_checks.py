"""The checks of ops/validate-deploy that no schema tool does: the metrics list, the metric names
and labels the alerts, dashboard and a live scrape use, the Kubernetes manifests and compose file
against what `leep` accepts, the Prometheus configuration. One command a check:

    python3 ops/lib/deploy_checks.py COMMAND ARGS...

Each prints a summary and exits 0, or prints its errors and exits 1. Needs PyYAML and jsonschema
(validate-deploy says how to install them). Tested by ops/tests/test_deploy_checks.py.
"""
import glob, json, os, re, subprocess, sys
import yaml

def fail(errors):
    """Prints the errors and exits 1, if there are any; else returns."""
    for e in errors:
        print(e)
    if errors:
        sys.exit(1)

def load_metrics(path):
    """metrics.txt: name type roles labels always; returns {name: (type, {roles}, always)}."""
    metrics, errors = {}, []
    for number, line in enumerate(open(path), 1):
        line = line.split("#")[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 5:
            errors.append(f"{path}:{number}: want 5 columns (name type roles labels always), got {len(fields)}")
            continue
        name, kind, roles, labels, always = fields
        if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name):
            errors.append(f"{path}:{number}: {name} is not a metric name")
        if name in metrics:
            errors.append(f"{path}:{number}: {name} listed twice")
        if kind not in ("counter", "gauge", "histogram", "summary"):
            errors.append(f"{path}:{number}: unknown type {kind}")
        if kind == "counter" and not name.endswith("_total"):
            errors.append(f"{path}:{number}: counter {name} should end in _total")
        if not set(roles.split(",")) <= {"worker", "aggregator"}:
            errors.append(f"{path}:{number}: roles must be worker and/or aggregator, got {roles}")
        if always not in ("yes", "no"):
            errors.append(f"{path}:{number}: last column must be yes or no")
        metrics[name] = (kind, set(roles.split(",")), always == "yes",
                         set() if labels == "-" else set(labels.split(",")))
    if errors:
        fail(errors)
    return metrics

LEEP_NAME = re.compile(r"(?<![A-Za-z0-9_:])leep_[A-Za-z0-9_:]*")

def unknown_names(text, metrics):
    return sorted(set(LEEP_NAME.findall(text)) - set(metrics))

# -- metrics.txt ---------------------------------------------------------------------------------
def cmd_metrics(path):
    metrics = load_metrics(path)
    print(f"{len(metrics)} metrics")

# -- metric names used in a file (alerts) -------------------------------------------------------
def cmd_names(path, metrics_path):
    metrics = load_metrics(metrics_path)
    unknown = unknown_names(open(path).read(), metrics)
    fail([f"{path}: metric {n} is not in {metrics_path}" for n in unknown])

# -- Kubernetes: across files -------------------------------------------------------------------
QUANTITY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "": 1}

def quantity_bytes(text):
    m = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G)?", str(text))
    return float(m.group(1)) * QUANTITY[m.group(2) or ""] if m else None

def topic_plan(leep, where, args):
    """Runs `leep topics plan --json` with the options a `leep topics create` command line gives
    (ARGS, after "topics create"); returns {topic without its prefix: partitions}."""
    prefix = "leep."
    for index, arg in enumerate(args):
        if arg.startswith("--topic-prefix="):
            prefix = arg.split("=", 1)[1]
        elif arg == "--topic-prefix" and index + 1 < len(args):
            prefix = args[index + 1]
    done = subprocess.run([leep, "topics", "plan", "--json", *args], capture_output=True, text=True)
    if done.returncode != 0:
        fail([f"{where}: `leep topics plan` refuses the options of its `topics create`: {done.stderr.strip()}"])
    return {t["name"][len(prefix):]: t["partitions"] for t in json.loads(done.stdout)["topics"]}

def listed_topics(where, command, plan):
    """Errors for a command line that manages topics itself instead of through `leep topics
    create`: a topic tool, or a topic of the plan named after a prefix ("leep.chunks")."""
    errors = []
    topic = re.compile(r"[.)](" + "|".join(map(re.escape, plan)) + r")\b")
    for arg in map(str, command):
        if re.search(r"kafka-topics|rpk topic|tansu topic|--partitions\b", arg):
            errors.append(f"{where}: runs {arg!r}: create topics with `leep topics create` (the one plan)")
        elif m := topic.search(arg):
            errors.append(f"{where}: names the topic {m.group(1)!r} in {arg!r}: topics come from `leep topics create`")
    return errors

def resolve_args(container, configmaps):
    """The container's args with each $(VAR) replaced by its env value or ConfigMap key, as the
    kubelet does."""
    values = {}
    for e in container.get("env") or []:
        ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
        value = e.get("value") if ref is None else ((configmaps.get(ref["name"]) or {}).get("data") or {}).get(ref["key"])
        if value is not None:
            values[e["name"]] = str(value)
    return [re.sub(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: values.get(m.group(1), m.group(0)), arg)
            for arg in container.get("args") or []]

def cmd_compose(leep, path):
    """docker-compose.yml: exactly one service runs `leep topics create`, with options
    `leep topics plan` accepts, and no service manages topics by itself."""
    services = (yaml.safe_load(open(path)) or {}).get("services") or {}
    creators = [name for name, s in services.items() if (s.get("command") or [])[:2] == ["topics", "create"]]
    if len(creators) != 1:
        fail([f"{path}: want one service whose command is `topics create ...`, found {creators or 'none'}"])
    plan = topic_plan(leep, f"{path}: service {creators[0]}", services[creators[0]]["command"][2:])
    errors = []
    for name, service in services.items():
        for key in ("command", "entrypoint"):
            command = service.get(key) or []
            errors += listed_topics(f"{path}: service {name} {key}", command if isinstance(command, list) else [command], plan)
    fail(errors)
    print(f"service {creators[0]} runs leep topics create: chunks {plan['chunks']} partitions, runs {plan['runs']}")

def pod_template(doc):
    kind = doc.get("kind")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return doc["spec"]["template"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]
    return None

def role_of(doc):
    """worker, aggregator, topics or None: from the main container's arguments."""
    template = pod_template(doc)
    if not template:
        return None
    args = (template["spec"]["containers"][0].get("args") or [])
    if args[:1] == ["worker"]:
        return "worker"
    if args[:1] == ["aggregate"]:
        return "aggregator"
    if args[:2] == ["topics", "create"]:
        return "topics"
    return None

def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}

def check_pod(where, template, configmaps, secrets, errors):
    spec = template["spec"]
    pod_sc = spec.get("securityContext") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            errors.append(f"{where}: {key} is not allowed (restricted Pod Security Standard)")
    for name, volume in volumes.items():
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            errors.append(f"{where}: volume {name}: {sorted(kinds - ALLOWED_VOLUMES)} not allowed (restricted)")
        if "configMap" in volume:
            ref = volume["configMap"]
            if ref["name"] not in configmaps:
                if not ref.get("optional"):
                    errors.append(f"{where}: volume {name}: no ConfigMap {ref['name']}")
            else:
                for item in ref.get("items") or []:
                    if item["key"] not in (configmaps[ref["name"]].get("data") or {}):
                        errors.append(f"{where}: volume {name}: ConfigMap {ref['name']} has no key {item['key']}")
        if "secret" in volume:
            ref = volume["secret"]
            if ref["secretName"] not in secrets and not ref.get("optional"):
                errors.append(f"{where}: volume {name}: no Secret {ref['secretName']} (mark it optional: true if it is created by hand)")
    containers = [("initContainer", c) for c in spec.get("initContainers") or []] + \
                 [("container", c) for c in spec["containers"]]
    for kind, c in containers:
        at = f"{where}: {kind} {c['name']}"
        sc = c.get("securityContext") or {}
        if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
            errors.append(f"{at}: runAsNonRoot must be true (restricted)")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            errors.append(f"{at}: runAsUser 0 (restricted)")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            errors.append(f"{at}: seccompProfile must be RuntimeDefault or Localhost (restricted)")
        if sc.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{at}: allowPrivilegeEscalation must be false (restricted)")
        if sc.get("privileged"):
            errors.append(f"{at}: privileged (restricted)")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            errors.append(f"{at}: capabilities must drop ALL (restricted)")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            errors.append(f"{at}: capabilities.add beyond NET_BIND_SERVICE (restricted)")
        if sc.get("readOnlyRootFilesystem") is not True:
            errors.append(f"{at}: readOnlyRootFilesystem must be true")
        resources = c.get("resources") or {}
        for part, key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
            if key not in (resources.get(part) or {}):
                errors.append(f"{at}: resources.{part}.{key} missing")
        ports = {p.get("name"): p for p in c.get("ports") or [] if p.get("name")}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
            if isinstance(port, str) and port not in ports:
                errors.append(f"{at}: {probe} uses port {port}, which the container does not declare")
        env = set()
        for e in c.get("env") or []:
            env.add(e["name"])
            ref = (e.get("valueFrom") or {})
            if "configMapKeyRef" in ref:
                r = ref["configMapKeyRef"]
                if r["name"] not in configmaps or r["key"] not in (configmaps[r["name"]].get("data") or {}):
                    if not r.get("optional"):
                        errors.append(f"{at}: env {e['name']}: no key {r['key']} in ConfigMap {r['name']}")
            if "secretKeyRef" in ref:
                r = ref["secretKeyRef"]
                if r["name"] not in secrets and not r.get("optional"):
                    errors.append(f"{at}: env {e['name']}: no Secret {r['name']}")
        for arg in (c.get("command") or []) + (c.get("args") or []):
            # Kubernetes leaves $(NAME) as it is when NAME is not in the container's env.
            for var in re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", arg):
                if var not in env:
                    errors.append(f"{at}: argument {arg!r} refers to $({var}), which is not in the container's env")
        mounts = c.get("volumeMounts") or []
        for m in mounts:
            if m["name"] not in volumes:
                errors.append(f"{at}: volumeMount {m['name']} has no volume")
        for arg in c.get("args") or []:
            m = re.fullmatch(r"--metrics-port=(\d+)", arg)
            if m:
                port = int(m.group(1))
                if (ports.get("metrics") or {}).get("containerPort") != port:
                    errors.append(f"{at}: --metrics-port={port} but no container port named metrics = {port}")
                if annotations.get("prometheus.io/scrape") != "true":
                    errors.append(f"{where}: serves metrics but lacks the annotation prometheus.io/scrape: \"true\"")
                if annotations.get("prometheus.io/port", str(port)) != str(port):
                    errors.append(f"{where}: annotation prometheus.io/port is not {port}")

def cmd_k8s(leep, *files):
    docs = []
    for f in files:
        for doc in yaml.safe_load_all(open(f)):
            if doc:
                docs.append((f, doc))
    errors = []
    configmaps = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Secret"}
    workloads = [(f, d) for f, d in docs if pod_template(d)]
    # The partition counts are those of the topics Job's own `leep topics create` options.
    creators = [(f, d) for f, d in workloads if role_of(d) == "topics"]
    if len(creators) != 1:
        fail([f"want one workload running `leep topics create`, found {len(creators)}"])
    f, job = creators[0]
    parts = topic_plan(leep, f"{f}: {job['kind']} {job['metadata']['name']}",
                       resolve_args(pod_template(job)["spec"]["containers"][0], configmaps)[2:])
    for f, d in workloads:
        for c in (pod_template(d)["spec"].get("initContainers") or []) + pod_template(d)["spec"]["containers"]:
            errors += listed_topics(f"{f}: {d['kind']} {d['metadata']['name']}: container {c['name']}",
                                    (c.get("command") or []) + (c.get("args") or []), parts)
    deployments = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Deployment"}
    roles = {}
    for f, d in workloads:
        where = f"{f}: {d['kind']} {d['metadata']['name']}"
        template = pod_template(d)
        labels = (template.get("metadata") or {}).get("labels") or {}
        selector = ((d["spec"].get("selector") or {}).get("matchLabels"))
        if d["kind"] != "Job" and not selects(selector, labels):
            errors.append(f"{where}: selector {selector} does not match the pod labels {labels}")
        check_pod(where, template, configmaps, secrets, errors)
        role = role_of(d)
        if role:
            roles.setdefault(role, []).append(d)
        if role == "worker":
            replicas = d["spec"].get("replicas", 1)
            if replicas > parts["chunks"]:
                errors.append(f"{where}: {replicas} replicas, more than the chunks topic's {parts['chunks']} partitions")
            grace = template["spec"].get("terminationGracePeriodSeconds", 30)
            if grace < 30:
                errors.append(f"{where}: terminationGracePeriodSeconds {grace} < 30: a worker needs time to flush and commit")
            c = template["spec"]["containers"][0]
            env = {e["name"]: e for e in c.get("env") or []}
            cache_mb = 512
            for arg in c.get("args") or []:
                m = re.fullmatch(r"--chunk-cache-mb=(.+)", arg)
                if m:
                    value = m.group(1)
                    var = re.fullmatch(r"\$\((\w+)\)", value)
                    if var and var.group(1) in env:
                        ref = (env[var.group(1)].get("valueFrom") or {}).get("configMapKeyRef")
                        value = env[var.group(1)].get("value") or (
                            ((configmaps.get(ref["name"]) or {}).get("data") or {}).get(ref["key"]) if ref else None)
                    try:
                        cache_mb = int(value)
                    except (TypeError, ValueError):
                        errors.append(f"{where}: cannot tell the value of {arg}")
            limit = quantity_bytes(((c.get("resources") or {}).get("limits") or {}).get("memory", "0"))
            if limit is not None and limit < (cache_mb + 512) * 2**20:
                errors.append(f"{where}: memory limit {limit / 2**20:.0f} MiB leaves less than 512 MiB beside the {cache_mb} MiB chunk cache")
        if role == "aggregator" and d["spec"].get("replicas", 1) > parts["runs"]:
            errors.append(f"{where}: more aggregators than the runs topic's {parts['runs']} partitions")
    for role in ("worker", "aggregator", "topics"):
        if role not in roles:
            errors.append(f"no workload runs the {role} role (leep {'topics create' if role == 'topics' else role})")
    for f, d in docs:
        where = f"{f}: {d['kind']} {d['metadata']['name']}"
        if d["kind"] == "Service":
            selector = d["spec"].get("selector") or {}
            matched = [w for _, w in workloads if selects(selector, (pod_template(w).get("metadata") or {}).get("labels") or {})]
            if not matched:
                errors.append(f"{where}: selector {selector} matches no pod template")
            for port in d["spec"].get("ports") or []:
                target = port.get("targetPort", port["port"])
                for w in matched:
                    names = {p.get("name") for c in pod_template(w)["spec"]["containers"] for p in c.get("ports") or []}
                    numbers = {p["containerPort"] for c in pod_template(w)["spec"]["containers"] for p in c.get("ports") or []}
                    if target not in names and target not in numbers:
                        errors.append(f"{where}: port {port.get('name')} targets {target}, which {w['metadata']['name']} does not declare")
        if d["kind"] == "PodDisruptionBudget":
            selector = (d["spec"].get("selector") or {}).get("matchLabels")
            if not any(selects(selector, (pod_template(w).get("metadata") or {}).get("labels") or {}) for _, w in workloads):
                errors.append(f"{where}: selector {selector} matches no pod template")
        if d["kind"] == "HorizontalPodAutoscaler":
            ref = d["spec"]["scaleTargetRef"]
            target = deployments.get(ref["name"]) if ref["kind"] == "Deployment" else None
            if target is None:
                errors.append(f"{where}: scaleTargetRef {ref['kind']}/{ref['name']} is not in these files")
                continue
            low, high = d["spec"].get("minReplicas", 1), d["spec"]["maxReplicas"]
            if low > high:
                errors.append(f"{where}: minReplicas {low} > maxReplicas {high}")
            if role_of(target) == "worker" and high > parts["chunks"]:
                errors.append(f"{where}: maxReplicas {high} > the chunks topic's {parts['chunks']} partitions (extra workers would idle)")
            if any(m.get("type") == "Resource" for m in d["spec"].get("metrics") or []):
                for c in pod_template(target)["spec"]["containers"]:
                    for m in d["spec"]["metrics"]:
                        name = (m.get("resource") or {}).get("name")
                        if name and name not in ((c.get("resources") or {}).get("requests") or {}):
                            errors.append(f"{where}: scales on {name} but {c['name']} requests none")
    fail(errors)
    print(f"{len(docs)} resources; chunks {parts['chunks']} partitions, runs {parts['runs']}")

def cmd_kustomization(directory):
    path = os.path.join(directory, "kustomization.yaml")
    k = yaml.safe_load(open(path))
    errors = []
    listed = k.get("resources") or []
    files = sorted(os.path.basename(f) for f in glob.glob(os.path.join(directory, "*.yaml")))
    expected = [f for f in files if f not in ("kustomization.yaml", "secret-example.yaml")]
    for r in listed:
        if not os.path.exists(os.path.join(directory, r)):
            errors.append(f"{path}: resource {r} does not exist")
    if "secret-example.yaml" in listed:
        errors.append(f"{path}: secret-example.yaml holds placeholders and must not be a resource")
    for f in expected:
        if f not in listed:
            errors.append(f"{path}: {f} is not listed in resources")
    namespace = k.get("namespace")
    images = {i["name"] for i in k.get("images") or []}
    for f in expected:
        for doc in yaml.safe_load_all(open(os.path.join(directory, f))):
            if not doc:
                continue
            ns = (doc.get("metadata") or {}).get("namespace")
            if doc["kind"] != "Namespace" and namespace and ns not in (None, namespace):
                errors.append(f"{directory}/{f}: {doc['kind']} {doc['metadata']['name']} is in namespace {ns}, the kustomization sets {namespace}")
            template = pod_template(doc)
            if not template:
                continue
            for c in (template["spec"].get("initContainers") or []) + template["spec"]["containers"]:
                image = re.sub(r"(@.*|:[^/:]*)$", "", c["image"])
                if images and image not in images:
                    errors.append(f"{directory}/{f}: image {c['image']} is not covered by the kustomization's images")
    fail(errors)
    print(f"{len(listed)} resources listed")

# -- Prometheus ---------------------------------------------------------------------------------
HTTP_CLIENT = {"basic_auth", "authorization", "oauth2", "proxy_url", "no_proxy", "proxy_from_environment",
               "proxy_connect_header", "tls_config", "follow_redirects", "enable_http2", "bearer_token",
               "bearer_token_file"}
K8S_SD_KEYS = {"api_server", "role", "kubeconfig_file", "namespaces", "selectors", "attach_metadata"} | HTTP_CLIENT
K8S_ROLES = {"node", "service", "pod", "endpoints", "endpointslice", "ingress"}
POD_META = re.compile(r"__meta_kubernetes_(namespace|pod_(name|ip|uid|phase|ready|node_name|host_ip|"
                      r"controller_kind|controller_name|container_(name|id|image|init|port_name|port_number|port_protocol)|"
                      r"(label|labelpresent|annotation|annotationpresent)_[a-zA-Z0-9_]+)|node_(name|label_[a-zA-Z0-9_]+))")

def check_k8s_sd(where, sd, errors):
    if not isinstance(sd, dict):
        errors.append(f"{where}: not a mapping")
        return None
    for key in set(sd) - K8S_SD_KEYS:
        errors.append(f"{where}: unknown field {key}")
    role = sd.get("role")
    if role not in K8S_ROLES:
        errors.append(f"{where}: role must be one of {sorted(K8S_ROLES)}, got {role!r}")
    ns = sd.get("namespaces")
    if ns is not None:
        if not isinstance(ns, dict) or set(ns) - {"names", "own_namespace"}:
            errors.append(f"{where}: namespaces takes names and own_namespace only")
        elif not all(isinstance(n, str) for n in ns.get("names") or []):
            errors.append(f"{where}: namespaces.names must be a list of strings")
    for s in sd.get("selectors") or []:
        if set(s) - {"role", "label", "field"} or s.get("role") not in K8S_ROLES:
            errors.append(f"{where}: selectors entries take role, label and field")
    return role

def cmd_prometheus(path, out, native):
    config = yaml.safe_load(open(path))
    base = os.path.dirname(os.path.abspath(path))
    errors = []
    for job in config.get("scrape_configs") or []:
        sds = job.get("kubernetes_sd_configs")
        if sds is None:
            continue
        where = f"{path}: job {job.get('job_name')}: kubernetes_sd_configs"
        roles = {check_k8s_sd(f"{where}[{i}]", sd, errors) for i, sd in enumerate(sds)}
        if roles == {"pod"}:
            for rc in job.get("relabel_configs") or []:
                for label in rc.get("source_labels") or []:
                    if label.startswith("__meta_kubernetes_") and not POD_META.fullmatch(label):
                        errors.append(f"{path}: job {job.get('job_name')}: {label} is not a label of role pod")
        if native != "yes":
            del job["kubernetes_sd_configs"]
            job.setdefault("static_configs", []).append({"targets": ["kubernetes-sd.invalid:9464"]})
    config["rule_files"] = [p if os.path.isabs(p) else os.path.join(base, p) for p in config.get("rule_files") or []]
    fail(errors)
    yaml.safe_dump(config, open(out, "w"), sort_keys=False)

# -- Grafana ------------------------------------------------------------------------------------
BUILTIN_VARS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "__interval_ms": "60000",
                "__range_s": "3600", "__range_ms": "3600000"}

def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels") or [])

def cmd_dashboard(path, schema_path, metrics_path, rules_out):
    import jsonschema
    metrics = load_metrics(metrics_path)
    try:
        dashboard = json.load(open(path))
    except json.JSONDecodeError as e:
        fail([f"{path}: not JSON: {e}"])
    schema = json.load(open(schema_path))
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = [f"{path}: {e.json_path}: {e.message}"
              for e in sorted(jsonschema.Draft202012Validator(schema).iter_errors(dashboard), key=lambda e: e.json_path)]
    if errors:
        fail(errors)
    panels = list(all_panels(dashboard["panels"]))
    seen = {}
    for p in panels:
        if p["id"] in seen:
            errors.append(f"{path}: panels {seen[p['id']]!r} and {p['title']!r} share id {p['id']}")
        seen[p["id"]] = p["title"]
    cells = {}
    for p in dashboard["panels"]:
        g = p["gridPos"]
        if g["x"] + g["w"] > 24:
            errors.append(f"{path}: panel {p['title']!r} reaches column {g['x'] + g['w']} (> 24)")
        for x in range(g["x"], min(g["x"] + g["w"], 24)):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    errors.append(f"{path}: panels {cells[(x, y)]!r} and {p['title']!r} overlap")
                    break
                cells[(x, y)] = p["title"]
            else:
                continue
            break
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    texts = [v.get("definition", "") for v in dashboard["templating"]["list"]]
    rules = []
    for p in panels:
        for t in p.get("targets") or []:
            expr = t["expr"]
            texts.append(expr)
            def substitute(m):
                name = m.group(1) or m.group(2) or m.group(3)
                if name in BUILTIN_VARS:
                    return BUILTIN_VARS[name]
                if name in variables:
                    return ".*"
                errors.append(f"{path}: panel {p['title']!r} query {t['refId']}: unknown variable ${name}")
                return ".*"
            concrete = re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", substitute, expr)
            rules.append({"record": f"dashboard:panel{p['id']}_{t['refId']}", "expr": concrete,
                          "labels": {"panel": p["title"][:60]}})
    for text in texts:
        for name in unknown_names(text, metrics):
            errors.append(f"{path}: metric {name} is not in {metrics_path}")
    used = set(LEEP_NAME.findall("\n".join(texts)))
    for name in sorted(set(metrics) - used):
        errors.append(f"{path}: no panel shows {name} (listed in {metrics_path})")
    fail(errors)
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(rules_out, "w"), sort_keys=False)
    print(f"{len(panels)} panels, {len(rules)} queries")

# -- a /metrics scrape --------------------------------------------------------------------------
def cmd_scrape(path, role, metrics_path):
    metrics = load_metrics(metrics_path)
    errors, names = [], set()
    sample = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+\S+")
    pair = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for number, line in enumerate(open(path), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = sample.match(line)
        if not m or not m.group(1).startswith("leep_"):
            continue
        name = m.group(1)
        names.add(name)
        labels = dict(pair.findall(m.group(2) or ""))
        if name not in metrics:
            errors.append(f"{path}:{number}: {name} is not in {metrics_path}")
            continue
        _, roles, _, want = metrics[name]
        if role not in roles:
            errors.append(f"{path}:{number}: {name} is listed for {sorted(roles)}, not {role}")
        if set(labels) != want:
            errors.append(f"{path}:{number}: {name} has labels {sorted(labels) or 'none'}, {metrics_path} says {sorted(want) or 'none'}")
        if "role" in labels and labels["role"] != role:
            errors.append(f"{path}:{number}: {name} has role=\"{labels['role']}\" in a {role} scrape")
    for name, (_, roles, always, _) in sorted(metrics.items()):
        if role in roles and always and name not in names:
            errors.append(f"{path}: {name} is missing (every {role} scrape should have it)")
    fail(errors[:50] + ([f"... and {len(errors) - 50} more"] if len(errors) > 50 else []))
    print(f"{len(names)} leep metrics")

# -- broken copies for validate-deploy's negative self-checks --------------------------------------
def cmd_break_service_selector(path):
    """Makes the first Service of a copy of services.yaml select pods that do not exist."""
    docs = list(yaml.safe_load_all(open(path)))
    docs[0]["spec"]["selector"]["app.kubernetes.io/component"] = "workers"
    yaml.safe_dump_all(docs, open(path, "w"))

def cmd_break_dashboard(path, syntax_path, unknown_path):
    """Writes two broken copies of a dashboard: a PromQL syntax error in its first query, and a
    metric name that metrics.txt does not list."""
    d = json.load(open(path))
    target = next(t for p in d["panels"] for t in p.get("targets", []))
    original = target["expr"]
    target["expr"] = original + ")"
    json.dump(d, open(syntax_path, "w"))
    target["expr"] = original.replace("leep_", "leep_unknown_", 1)
    json.dump(d, open(unknown_path, "w"))

if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1]](*sys.argv[2:])
