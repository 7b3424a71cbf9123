"""Custom checkov policy CKV_FP_4: the APIs are declared in Terraform, and never switched off by it.

Every google_project_service must name one of the APIs this configuration
needs (REQUIRED_APIS, or one of OPTIONAL_APIS that a setting switches on)
and set disable_on_destroy = false explicitly: the provider's default (true)
would switch the API off on destroy, breaking everything else in the project
that uses it, and a typo in a service name would leave the API it meant
undeclared. checkov evaluates one resource at a time, so that each API of
REQUIRED_APIS is declared is checked over the whole configuration by
terraform/tests/offline_checks.py (`apis`), which imports these lists.

Loaded like CKV_FP_1 (terraform/.checkov.yaml).
"""

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

REQUIRED_APIS = (
    "compute.googleapis.com",
    "iam.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "iap.googleapis.com",
    "storage.googleapis.com",
    "logging.googleapis.com",
)
OPTIONAL_APIS = (
    "managedkafka.googleapis.com",  # managed_kafka
    "billingbudgets.googleapis.com",  # billing_account
)


def _first(value):
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


class ProjectServicesKept(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="Ensure each API is declared with google_project_service, a known service and disable_on_destroy = false",
            id="CKV_FP_4",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["google_project_service"],
        )

    def scan_resource_conf(self, conf):
        if _first(conf.get("disable_on_destroy")) is not False:
            self.evaluated_keys = ["disable_on_destroy"]
            return CheckResult.FAILED
        service = str(_first(conf.get("service", "")))
        if "${" in service or service.startswith(("each.", "var.", "local.")):
            return CheckResult.PASSED  # unresolved (for_each): offline_checks.py apis covers the list
        if service not in REQUIRED_APIS + OPTIONAL_APIS:
            self.evaluated_keys = ["service"]
            return CheckResult.FAILED
        return CheckResult.PASSED


check = ProjectServicesKept()
