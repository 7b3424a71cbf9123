# Fixture for the custom policy CKV_FP_2: every rule here must PASS it.

resource "google_compute_firewall" "by_service_account" {
  name                    = "good-service-accounts"
  network                 = "vpc"
  source_service_accounts = ["scheduler@p.iam.gserviceaccount.com", "executor@p.iam.gserviceaccount.com"]
  target_service_accounts = ["executor@p.iam.gserviceaccount.com"]

  allow {
    protocol = "tcp"
    ports    = ["50051", "50052"]
  }
}

resource "google_compute_firewall" "iap_to_service_account" {
  name                    = "good-iap"
  network                 = "vpc"
  source_ranges           = ["35.235.240.0/20"]
  target_service_accounts = ["scheduler@p.iam.gserviceaccount.com"]

  allow {
    protocol = "tcp"
    ports    = ["50050"]
  }
}

resource "google_compute_firewall" "tags_on_other_ports" {
  name          = "good-ssh-by-tag"
  network       = "vpc"
  source_ranges = ["35.235.240.0/20"]
  target_tags   = ["bastion"]

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}

resource "google_compute_firewall" "egress_tags" {
  name               = "good-egress"
  network            = "vpc"
  direction          = "EGRESS"
  destination_ranges = ["10.0.0.0/8"]
  target_tags        = ["anything"]

  allow {
    protocol = "tcp"
    ports    = ["50050"]
  }
}
