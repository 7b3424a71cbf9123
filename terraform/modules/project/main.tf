# The project's side of FunnelPulse, long-lived like the bucket: the APIs
# everything else needs, and the optional billing budget. deploy/down.sh
# destroys only module.cluster, so none of this goes with a cluster.
#
# disable_on_destroy = false everywhere: removing a resource here (or the
# whole configuration) only forgets the API, it never switches it off, which
# would break whatever else in the project uses it.

locals {
  apis = concat(
    [
      "compute.googleapis.com",              # VMs, network, firewall, instance group, health check
      "iam.googleapis.com",                  # service accounts, custom roles
      "cloudresourcemanager.googleapis.com", # project IAM bindings (google_project_iam_member)
      "iap.googleapis.com",                  # IAP TCP forwarding and its per-instance IAM
      "storage.googleapis.com",              # the lake bucket
      "logging.googleapis.com",              # the VMs' logs (startup script, journald via the guest agent)
    ],
    var.managed_kafka ? ["managedkafka.googleapis.com"] : [],
    var.billing_account != "" ? ["billingbudgets.googleapis.com"] : [],
  )
}

resource "google_project_service" "apis" {
  for_each = toset(local.apis)

  project                    = var.project_id
  service                    = each.value
  disable_on_destroy         = false
  disable_dependent_services = false
}

# A budget on this project's spend, only with billing_account: e-mails the
# billing account's administrators and users at each threshold (actual spend,
# and the month's forecast at 100 %). A budget alerts, it does not stop
# anything: the idle watchdog and the scheduler's max_run_duration do that.
# Creating it needs billing.budgets.create on the billing account
# (roles/billing.costsManager or Billing Account Administrator).
data "google_project" "this" {
  count      = var.billing_account != "" ? 1 : 0
  project_id = var.project_id

  depends_on = [google_project_service.apis]
}

resource "google_billing_budget" "monthly" {
  count           = var.billing_account != "" ? 1 : 0
  billing_account = var.billing_account
  display_name    = "${var.name_prefix} monthly budget"

  budget_filter {
    projects = ["projects/${data.google_project.this[0].number}"]
  }

  amount {
    specified_amount {
      units = tostring(var.budget_amount)
    }
  }

  dynamic "threshold_rules" {
    for_each = var.budget_thresholds
    content {
      threshold_percent = threshold_rules.value
      spend_basis       = "CURRENT_SPEND"
    }
  }

  threshold_rules {
    threshold_percent = 1.0
    spend_basis       = "FORECASTED_SPEND"
  }

  depends_on = [google_project_service.apis]
}
