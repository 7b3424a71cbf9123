# Fixture for the custom policy CKV_FP_1: every rule here must FAIL it
# (.ci/suites/terraform.sh checks that each of them does).

resource "google_compute_firewall" "scheduler_open" {
  name          = "bad-scheduler-open"
  network       = "vpc"
  source_ranges = ["0.0.0.0/0"]

  allow {
    protocol = "tcp"
    ports    = ["50050"]
  }
}

resource "google_compute_firewall" "range_covering_executors" {
  name          = "bad-range"
  network       = "vpc"
  direction     = "INGRESS"
  source_ranges = ["10.0.0.0/8", "0.0.0.0/0"]

  allow {
    protocol = "tcp"
    ports    = ["443"]
  }

  allow {
    protocol = "tcp"
    ports    = ["50000-50100"]
  }
}

resource "google_compute_firewall" "all_ports" {
  name          = "bad-all-ports"
  network       = "vpc"
  source_ranges = ["0.0.0.0/0"]

  allow {
    protocol = "tcp"
  }
}

resource "google_compute_firewall" "all_protocols" {
  name          = "bad-all-protocols"
  network       = "vpc"
  source_ranges = ["0.0.0.0/0"]

  allow {
    protocol = "all"
  }
}

resource "google_compute_firewall" "ipv6_everyone" {
  name          = "bad-ipv6"
  network       = "vpc"
  source_ranges = ["::/0"]

  allow {
    protocol = "tcp"
    ports    = ["50052"]
  }
}
