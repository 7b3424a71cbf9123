# Fixture for the custom policy CKV_FP_4: every resource here must FAIL it.

resource "google_project_service" "default_disables" {
  project = "p"
  service = "compute.googleapis.com"
}

resource "google_project_service" "disables" {
  project            = "p"
  service            = "iam.googleapis.com"
  disable_on_destroy = true
}

resource "google_project_service" "typo" {
  project            = "p"
  service            = "iap.googelapis.com"
  disable_on_destroy = false
}
