"""Custom checkov policy CKV_FP_3: no service account keys.

A key is a long-lived secret: it never expires, works from anywhere, and
leaks through files, process lists and shell history; organisations created
since May 2024 forbid creating them by default (iam.disableServiceAccountKeyCreation).
The VMs authenticate as their attached service account through the
metadata server, the laptop with `gcloud auth application-default login`,
and Managed Kafka with OAUTHBEARER tokens from the same metadata server.
This policy fails every google_service_account_key resource; a
google_service_account passes (so the check runs wherever accounts exist).

Loaded like CKV_FP_1 (terraform/.checkov.yaml).
"""

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


class NoServiceAccountKeys(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="Ensure no service account key is created (use attached accounts and short-lived tokens)",
            id="CKV_FP_3",
            categories=[CheckCategories.IAM],
            supported_resources=["google_service_account_key", "google_service_account"],
        )

    def scan_resource_conf(self, conf):
        if self.entity_type == "google_service_account_key":
            return CheckResult.FAILED
        return CheckResult.PASSED


check = NoServiceAccountKeys()
