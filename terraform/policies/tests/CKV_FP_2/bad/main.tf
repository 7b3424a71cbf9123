# Fixture for the custom policy CKV_FP_2: every rule here must FAIL it
# (.ci/suites/terraform.sh checks that each of them does).

resource "google_compute_firewall" "source_tags" {
  name                    = "bad-source-tags"
  network                 = "vpc"
  source_tags             = ["funnelpulse-node"]
  target_service_accounts = ["executor@p.iam.gserviceaccount.com"]

  allow {
    protocol = "tcp"
    ports    = ["50051", "50052"]
  }
}

resource "google_compute_firewall" "target_tags" {
  name          = "bad-target-tags"
  network       = "vpc"
  direction     = "INGRESS"
  source_ranges = ["35.235.240.0/20"]
  target_tags   = ["funnelpulse-scheduler"]

  allow {
    protocol = "tcp"
    ports    = ["50050"]
  }
}

resource "google_compute_firewall" "range_with_tags" {
  name        = "bad-range-tags"
  network     = "vpc"
  source_tags = ["anything"]
  target_tags = ["anything"]

  allow {
    protocol = "tcp"
    ports    = ["50000-50100"]
  }
}

resource "google_compute_firewall" "all_ports_tags" {
  name        = "bad-all-ports-tags"
  network     = "vpc"
  source_tags = ["funnelpulse-node"]

  allow {
    protocol = "all"
  }
}

resource "google_compute_firewall" "no_target" {
  name                    = "bad-no-target"
  network                 = "vpc"
  source_service_accounts = ["executor@p.iam.gserviceaccount.com"]

  allow {
    protocol = "tcp"
    ports    = ["50050"]
  }
}
