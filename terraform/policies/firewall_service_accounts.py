"""Custom checkov policy CKV_FP_2: the cluster's ports are opened by service account, never by network tag.

The Ballista ports (50050 scheduler, 50051-50052 executors) are
unauthenticated. A firewall rule that selects its sources or targets by
network tag lets anyone who may create a VM in the project (or a Dataproc
cluster, or set tags on an instance) put a VM behind the rule, and so reach
the ports. Running a VM as a service account takes iam.serviceAccounts.actAs
on that account, which is granted separately. This policy fails any ingress
google_compute_firewall rule that allows one of those ports (listed, in a
range, all ports, TCP or all protocols) and uses source_tags or target_tags,
or that has no target_service_accounts (a rule without targets applies to
every VM of the network).

Loaded like CKV_FP_1 (terraform/.checkov.yaml).
"""

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from firewall_cluster_ports import _as_list, _cluster_port_block


class ClusterPortsByServiceAccount(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="Ensure firewall rules on the Ballista ports 50050-50052 select VMs by service account, not network tag",
            id="CKV_FP_2",
            categories=[CheckCategories.NETWORKING],
            supported_resources=["google_compute_firewall"],
        )

    def scan_resource_conf(self, conf):
        if _cluster_port_block(conf) is None:
            return CheckResult.PASSED
        tagged = [key for key in ("source_tags", "target_tags") if _as_list(conf.get(key))]
        if tagged:
            self.evaluated_keys = tagged
            return CheckResult.FAILED
        if not _as_list(conf.get("target_service_accounts")):
            self.evaluated_keys = ["target_service_accounts"]
            return CheckResult.FAILED
        return CheckResult.PASSED


check = ClusterPortsByServiceAccount()
