# Fixture for the custom policy CKV_FP_3: every resource here must PASS it.

resource "google_service_account" "scheduler" {
  account_id   = "funnelpulse-scheduler"
  display_name = "attached to the VM, no key"
}
