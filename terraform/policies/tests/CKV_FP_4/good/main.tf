# Fixture for the custom policy CKV_FP_4: every resource here must PASS it.

resource "google_project_service" "compute" {
  project            = "p"
  service            = "compute.googleapis.com"
  disable_on_destroy = false
}

resource "google_project_service" "kafka" {
  project                    = "p"
  service                    = "managedkafka.googleapis.com"
  disable_on_destroy         = false
  disable_dependent_services = false
}
