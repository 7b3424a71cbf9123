# Fixture for the custom policy CKV_FP_1: every rule here must PASS it.

resource "google_compute_firewall" "iap_scheduler" {
  name          = "good-iap"
  network       = "vpc"
  source_ranges = ["35.235.240.0/20"]

  allow {
    protocol = "tcp"
    ports    = ["50050"]
  }
}

resource "google_compute_firewall" "internal_executors" {
  name        = "good-internal"
  network     = "vpc"
  source_tags = ["funnelpulse-node"]
  target_tags = ["funnelpulse-executor"]

  allow {
    protocol = "tcp"
    ports    = ["50051", "50052"]
  }
}

resource "google_compute_firewall" "https_for_everyone" {
  name          = "good-other-port"
  network       = "vpc"
  source_ranges = ["0.0.0.0/0"]

  allow {
    protocol = "tcp"
    ports    = ["443", "8000-8080"]
  }
}

resource "google_compute_firewall" "udp_only" {
  name          = "good-udp"
  network       = "vpc"
  source_ranges = ["0.0.0.0/0"]

  allow {
    protocol = "udp"
    ports    = ["50050"]
  }
}

resource "google_compute_firewall" "egress" {
  name               = "good-egress"
  network            = "vpc"
  direction          = "EGRESS"
  destination_ranges = ["0.0.0.0/0"]

  allow {
    protocol = "tcp"
    ports    = ["50050"]
  }
}
