# Own VPC, one subnet, no public IPs anywhere and no Cloud NAT: the VMs reach
# Cloud Storage (and the other Google APIs) through Private Google Access, and
# nothing else on the internet. startup.sh needs no Debian packages, so no NAT
# is needed, and none means no NAT cost and no path out for a compromised VM.

locals {
  # 35.235.240.0/20 is where IAP TCP forwarding connects from
  # (`gcloud compute start-iap-tunnel`, `gcloud compute ssh --tunnel-through-iap`).
  iap_range = "35.235.240.0/20"
  # Where Google Cloud's health checkers connect from.
  health_check_ranges = ["35.191.0.0/16", "130.211.0.0/22"]
}

resource "google_compute_network" "vpc" {
  name                    = "${var.name_prefix}-vpc"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "subnet" {
  name          = "${var.name_prefix}-subnet"
  region        = var.region
  network       = google_compute_network.vpc.id
  ip_cidr_range = var.subnet_cidr

  # The VMs have internal IPs only: this is how they reach storage.googleapis.com.
  private_ip_google_access = true

  # Sampled flow logs: enough to see who talked to the scheduler, cheap at this size.
  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }

  lifecycle {
    precondition {
      condition     = startswith(var.zone, "${var.region}-")
      error_message = "zone ${var.zone} is not in region ${var.region}."
    }
  }
}

# The scheduler's address is reserved, so the executors' metadata names it
# before the scheduler exists and it survives the scheduler being replaced.
resource "google_compute_address" "scheduler" {
  name         = "${var.name_prefix}-scheduler-internal"
  region       = var.region
  subnetwork   = google_compute_subnetwork.subnet.id
  address_type = "INTERNAL"
  purpose      = "GCE_ENDPOINT"
  labels       = var.labels
}

# GCP denies all other ingress by default; these are the only ways in. Every
# rule names its targets, and its sources inside the VPC, by service account,
# never by network tag: anyone allowed to create a VM in the project could
# give it a tag, but running a VM as one of these accounts takes
# iam.serviceAccounts.actAs on it (CKV_FP_2 refuses tag-based rules on the
# cluster's ports).

resource "google_compute_firewall" "iap_ssh" {
  name                    = "${var.name_prefix}-allow-iap-ssh"
  network                 = google_compute_network.vpc.id
  direction               = "INGRESS"
  source_ranges           = [local.iap_range]
  target_service_accounts = [var.scheduler_service_account_email, var.executor_service_account_email]

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}

# The laptop's tunnel: gRPC, REST and the embedded Flight proxy all on 50050.
resource "google_compute_firewall" "iap_scheduler" {
  name                    = "${var.name_prefix}-allow-iap-scheduler"
  network                 = google_compute_network.vpc.id
  direction               = "INGRESS"
  source_ranges           = [local.iap_range]
  target_service_accounts = [var.scheduler_service_account_email]

  allow {
    protocol = "tcp"
    ports    = ["50050"]
  }
}

# Executors register and heartbeat to the scheduler.
resource "google_compute_firewall" "nodes_to_scheduler" {
  name                    = "${var.name_prefix}-allow-nodes-scheduler"
  network                 = google_compute_network.vpc.id
  direction               = "INGRESS"
  source_service_accounts = [var.executor_service_account_email]
  target_service_accounts = [var.scheduler_service_account_email]

  allow {
    protocol = "tcp"
    ports    = ["50050"]
  }
}

# The scheduler launches tasks on the executors (gRPC 50052); executors fetch
# each other's shuffle output and the scheduler's Flight proxy fetches results
# (Flight 50051). Only from the cluster's own VMs.
resource "google_compute_firewall" "nodes_to_executors" {
  name                    = "${var.name_prefix}-allow-nodes-executors"
  network                 = google_compute_network.vpc.id
  direction               = "INGRESS"
  source_service_accounts = [var.scheduler_service_account_email, var.executor_service_account_email]
  target_service_accounts = [var.executor_service_account_email]

  allow {
    protocol = "tcp"
    ports    = ["50051", "50052"]
  }
}

# Google's health checkers (the executor group's autohealing) probe TCP 50052
# from these two ranges; nothing else of the executors is open to them.
resource "google_compute_firewall" "health_checks" {
  name                    = "${var.name_prefix}-allow-health-checks"
  network                 = google_compute_network.vpc.id
  direction               = "INGRESS"
  source_ranges           = local.health_check_ranges
  target_service_accounts = [var.executor_service_account_email]

  allow {
    protocol = "tcp"
    ports    = ["50052"]
  }
}
