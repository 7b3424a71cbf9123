# The scheduler VM and the executors' managed instance group. Both run stock
# Debian 12 and configure themselves at boot from their metadata
# (deploy/gce/startup.sh): download the release's binary from the lake
# bucket, write a systemd unit, start it. The scheduler also installs the
# funnelpulse client, for the stages that run on it (Kafka).

locals {
  scheduler_name = "${var.name_prefix}-scheduler"
  executor_group = var.executor_group
  release_url    = var.release_version == null ? "" : "gs://${var.bucket_name}/releases/${var.release_version}"
  # The sha256 of each binary a role downloads goes into its metadata as
  # funnelpulse-release-sha256-<binary>, and startup.sh refuses a download that differs.

  # The attributes of both roles (the scheduler adds its own below).
  metadata = {
    "startup-script"             = var.startup_script
    "enable-oslogin"             = "TRUE"
    "block-project-ssh-keys"     = "TRUE"
    "funnelpulse-release"        = local.release_url
    "funnelpulse-scheduler-host" = google_compute_address.scheduler.address
    "funnelpulse-idle-minutes"   = tostring(var.idle_minutes)
    "funnelpulse-executor-group" = local.executor_group
    "funnelpulse-zone"           = var.zone
    "funnelpulse-watchdog"       = var.watchdog_script
  }

  # The scheduler's own attributes: it also runs the funnelpulse client for
  # the stages that must run inside the VPC (Kafka; deploy/submit.sh), which
  # startup.sh configures in /etc/funnelpulse/client.env. Kept off the
  # executors' template, so a new broker address does not roll the group.
  scheduler_metadata = {
    # The idle watchdog reports its self-test, last action and last error as
    # guest attributes (funnelpulse/…), which deploy/status.sh reads.
    "enable-guest-attributes"             = "TRUE"
    "funnelpulse-role"                    = "scheduler"
    "funnelpulse-lake"                    = "gs://${var.bucket_name}/lake"
    "funnelpulse-kafka-bootstrap-servers" = local.kafka_bootstrap_servers
    "funnelpulse-kafka-topic"             = var.kafka_topic
    # A managed cluster takes SASL/OAUTHBEARER with the VM's own token (no key).
    "funnelpulse-kafka-auth" = var.managed_kafka ? "google" : ""
  }

  # Literal keys (checkov evaluates the merged metadata; a for expression
  # here would leave it unknown).
  scheduler_sha256 = {
    "funnelpulse-release-sha256-funnelpulse-scheduler" = try(var.release_sha256["funnelpulse-scheduler"], "")
    "funnelpulse-release-sha256-funnelpulse"           = try(var.release_sha256["funnelpulse"], "")
  }
  executor_sha256 = {
    "funnelpulse-release-sha256-funnelpulse-executor" = try(var.release_sha256["funnelpulse-executor"], "")
  }
}

# Checked before any VM is created or changed (module release; not on
# destroy: deploy/down.sh needs no release).
module "release" {
  source = "../release"

  release_version = var.release_version
  release_sha256  = var.release_sha256
}

# A new release replaces the scheduler (its in-memory state is lost either
# way when its binary changes) instead of leaving it on the old binary; the
# executor group rolls to the new template on its own.
resource "terraform_data" "release" {
  input = var.release_version
}

resource "google_compute_instance" "scheduler" {
  #checkov:skip=CKV_GCP_38:Customer-supplied keys would have to be supplied again at every start, and the idle watchdog stops this VM by design; the disk holds only the downloaded binary (Google-managed encryption at rest applies).
  name         = local.scheduler_name
  zone         = var.zone
  machine_type = var.scheduler_machine_type
  labels       = merge(var.labels, { role = "scheduler" })
  metadata     = merge(local.metadata, local.scheduler_metadata, local.scheduler_sha256)

  boot_disk {
    auto_delete = true
    initialize_params {
      image  = var.image
      size   = var.scheduler_disk_gb
      type   = "pd-balanced"
      labels = merge(var.labels, { role = "scheduler" })
    }
  }

  network_interface {
    subnetwork = google_compute_subnetwork.subnet.id
    network_ip = google_compute_address.scheduler.address
    # No access_config block: no external IP. Reached through IAP only.
  }

  service_account {
    email = var.scheduler_service_account_email
    # Access is decided by the service account's IAM roles (module identity), not scopes.
    scopes = ["cloud-platform"]
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  # Never Spot: the scheduler holds every job's state in memory.
  # max_run_duration: a backstop outside the VM for the idle watchdog, which
  # runs inside it (a failed upload, a wedged watchdog): Compute Engine itself
  # STOPs the scheduler after scheduler_max_run_seconds of running (each start
  # begins a new period). 0 turns it off, for a stream you keep running.
  # Changing it replaces the VM (the provider marks it ForceNew). With it,
  # no automatic restart (as in the provider's own tests of max_run_duration):
  # a VM Compute Engine stopped at its limit must stay stopped, and one a host
  # failure stopped waits for the next deploy/up.sh like an idle-stopped one.
  scheduling {
    provisioning_model          = "STANDARD"
    automatic_restart           = var.scheduler_max_run_seconds == 0
    on_host_maintenance         = "MIGRATE"
    instance_termination_action = var.scheduler_max_run_seconds > 0 ? "STOP" : null

    dynamic "max_run_duration" {
      for_each = var.scheduler_max_run_seconds > 0 ? [var.scheduler_max_run_seconds] : []
      content {
        seconds = max_run_duration.value
      }
    }
  }

  # The idle watchdog powers this VM off; the next `terraform apply`
  # (deploy/up.sh) starts it again, and resets the executor group's size.
  desired_status            = "RUNNING"
  allow_stopping_for_update = true

  lifecycle {
    replace_triggered_by = [terraform_data.release]

    precondition {
      condition     = module.release.ok
      error_message = module.release.error
    }
  }
}

resource "google_compute_instance_template" "executor" {
  #checkov:skip=CKV_GCP_38:Customer-supplied keys cannot be given to VMs a managed instance group creates on its own (Spot replacements); the disk holds the binary and transient shuffle files (Google-managed encryption at rest applies).
  name_prefix  = "${var.name_prefix}-executor-"
  machine_type = var.executor_machine_type
  labels       = merge(var.labels, { role = "executor" })
  metadata     = merge(local.metadata, { "funnelpulse-role" = "executor" }, local.executor_sha256)

  disk {
    boot         = true
    auto_delete  = true
    source_image = var.image
    disk_size_gb = var.executor_disk_gb
    disk_type    = "pd-balanced"
    labels       = merge(var.labels, { role = "executor" })
  }

  network_interface {
    subnetwork = google_compute_subnetwork.subnet.id
    # No access_config block: no external IP.
  }

  service_account {
    email  = var.executor_service_account_email
    scopes = ["cloud-platform"]
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  # Spot: DELETE rather than STOP when Google reclaims one. An executor keeps
  # nothing worth keeping (its shuffle files die with its registration: the
  # scheduler re-runs the lost tasks), a stopped Spot VM would still bill its
  # disk, and the group recreates a deleted VM under the same name as soon as
  # capacity returns, booting clean through startup.sh.
  scheduling {
    provisioning_model          = var.executor_spot ? "SPOT" : "STANDARD"
    preemptible                 = var.executor_spot
    automatic_restart           = !var.executor_spot
    on_host_maintenance         = var.executor_spot ? "TERMINATE" : "MIGRATE"
    instance_termination_action = var.executor_spot ? "DELETE" : null
  }

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = module.release.ok
      error_message = module.release.error
    }
  }
}

# Zonal, in the scheduler's zone: shuffle traffic between executors stays in
# one zone (cross-zone traffic is billed), and the watchdog's resize names --zone.
resource "google_compute_instance_group_manager" "executors" {
  name               = local.executor_group
  zone               = var.zone
  base_instance_name = "${var.name_prefix}-executor"
  target_size        = var.executor_count

  version {
    instance_template = google_compute_instance_template.executor.self_link_unique
  }

  # A new template (new release, machine type) replaces the executors one at
  # a time; lost tasks are re-run by the scheduler.
  update_policy {
    type                  = "PROACTIVE"
    minimal_action        = "REPLACE"
    max_surge_fixed       = 1
    max_unavailable_fixed = 1
  }

  # Autohealing: an executor whose gRPC port 50052 stops answering (its
  # binary never arrived, the process died, the VM hangs) is recreated and
  # boots through startup.sh again. The initial delay covers the boot and the
  # download (startup.sh waits up to 20 minutes for the binaries).
  auto_healing_policies {
    health_check      = google_compute_health_check.executor.id
    initial_delay_sec = var.executor_autoheal_delay_seconds
  }

  # The VMs are RUNNING long before their binaries are uploaded (after apply);
  # deploy/up.sh waits for registered executors instead.
  wait_for_instances = false

  # Executors boot after the scheduler exists (with managed Kafka that is
  # after the Kafka cluster, which can take long): they register with it.
  depends_on = [google_compute_instance.scheduler]
}

# TCP on the executors' gRPC port: what the scheduler launches tasks on.
# Google's health checkers reach it through the firewall rule
# allow-health-checks (35.191.0.0/16, 130.211.0.0/22, port 50052 only).
resource "google_compute_health_check" "executor" {
  name                = "${var.name_prefix}-executor-grpc"
  description         = "FunnelPulse executors: TCP on the gRPC port 50052 (MIG autohealing)."
  check_interval_sec  = 30
  timeout_sec         = 10
  healthy_threshold   = 1
  unhealthy_threshold = 4

  tcp_health_check {
    port = 50052
  }
}
