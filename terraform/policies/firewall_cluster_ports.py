"""Custom checkov policy: no firewall rule opens the cluster's ports to the internet.

checkov's own firewall checks look at one well-known port each (22, 3389, 80,
…) and only at rules that list ports; none of them notices 50050 (the Ballista
scheduler: gRPC, REST, and the Flight proxy that returns query results) or the
executors' 50051/50052 open to 0.0.0.0/0. This one fails any ingress
google_compute_firewall rule that lets a source range covering the whole
internet (0.0.0.0/0 or ::/0) reach one of those ports, whether the rule lists
the port, a range covering it, or no ports at all (all ports), over TCP or
all protocols.

terraform/.checkov.yaml loads it whenever checkov scans terraform/ from the
repository's root (checkov -d terraform --skip-download --framework terraform);
elsewhere: --external-checks-dir terraform/policies.
"""

import ipaddress

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

CLUSTER_PORTS = (50050, 50051, 50052)
# What a protocol field may say for TCP: a name, "all", or IANA number 6.
TCP_PROTOCOLS = {"tcp", "all", "6"}


def _first(value):
    """checkov wraps every attribute in a list; unwraps one level."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _as_list(value):
    value = _first(value)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _open_to_everyone(cidr):
    try:
        return ipaddress.ip_network(str(cidr).strip(), strict=False).prefixlen == 0
    except ValueError:
        return False  # an unresolved expression: nothing to judge


def _port_covered(spec, port):
    spec = str(spec).strip()
    if "-" in spec:
        low, _, high = spec.partition("-")
        return low.strip().isdigit() and high.strip().isdigit() and int(low) <= port <= int(high)
    return spec.isdigit() and int(spec) == port


def _allows_cluster_port(block):
    protocol = str(_first(block.get("protocol", ""))).strip().lower()
    if protocol not in TCP_PROTOCOLS:
        return False
    ports = _as_list(block.get("ports"))
    if not ports:
        return True  # no ports listed: every port
    return any(_port_covered(spec, port) for spec in ports for port in CLUSTER_PORTS)


def _cluster_port_block(conf):
    """The index of the first allow block by which an enabled ingress rule
    opens a cluster port; None when the rule opens none."""
    direction = str(_first(conf.get("direction", "INGRESS"))).upper()
    if direction != "INGRESS" or _first(conf.get("disabled", False)) is True:
        return None
    for index, block in enumerate(conf.get("allow", [])):
        if isinstance(block, dict) and _allows_cluster_port(block):
            return index
    return None


class ClusterPortsNotOpenToInternet(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="Ensure no firewall rule opens the Ballista cluster ports 50050-50052 to 0.0.0.0/0",
            id="CKV_FP_1",
            categories=[CheckCategories.NETWORKING],
            supported_resources=["google_compute_firewall"],
        )

    def scan_resource_conf(self, conf):
        index = _cluster_port_block(conf)
        if index is None or not any(_open_to_everyone(cidr) for cidr in _as_list(conf.get("source_ranges"))):
            return CheckResult.PASSED
        self.evaluated_keys = ["source_ranges", f"allow/[{index}]"]
        return CheckResult.FAILED


check = ClusterPortsNotOpenToInternet()
