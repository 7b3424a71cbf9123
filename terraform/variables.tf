variable "project_id" {
  description = "GCP project that hosts the cluster and the lake bucket."
  type        = string
}

variable "region" {
  description = "Region of the subnet and the (regional) lake bucket."
  type        = string
  default     = "europe-west1"
}

variable "zone" {
  description = "Zone of the scheduler and the executor group (one zone: no cross-zone shuffle traffic)."
  type        = string
  default     = "europe-west1-b"
}

variable "name_prefix" {
  description = "Prefix of every resource name (VMs, network, service account)."
  type        = string
  default     = "funnelpulse"

  validation {
    # The service account id "<prefix>-vm" must be 6 to 30 characters.
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: 3 to 20 characters, lower-case letters, digits and '-', starting with a letter."
  }
}

variable "bucket_name" {
  description = "Lake bucket; empty means \"<project_id>-funnelpulse-lake\"."
  type        = string
  default     = ""
}

variable "scheduler_machine_type" {
  description = "Machine type of the scheduler VM."
  type        = string
  default     = "e2-standard-2"
}

variable "executor_machine_type" {
  description = "Machine type of each executor VM."
  type        = string
  default     = "e2-standard-4"
}

variable "executor_count" {
  description = "Target size of the executor group (the idle watchdog sets it to 0; the next apply restores it)."
  type        = number
  default     = 2

  validation {
    condition     = var.executor_count >= 0 && var.executor_count <= 100 && floor(var.executor_count) == var.executor_count
    error_message = "executor_count: a whole number from 0 to 100."
  }
}

variable "executor_spot" {
  description = "Run the executors as Spot VMs (about 60-90% cheaper; Google may reclaim them at any time)."
  type        = bool
  default     = true
}

variable "idle_minutes" {
  description = "Minutes without a queued or running job before the watchdog scales the executors to 0 and stops the scheduler; 0 disables the watchdog."
  type        = number
  default     = 60

  validation {
    condition     = var.idle_minutes >= 0 && floor(var.idle_minutes) == var.idle_minutes
    error_message = "idle_minutes: a whole number ≥ 0."
  }
}

variable "release_version" {
  description = "Release the VMs run: gs://<bucket>/releases/<version>/funnelpulse-{scheduler,executor} (deploy/up.sh sets it: 12 hex digits of the binaries' sha256)."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([0-9a-f]{12})?$", var.release_version))
    error_message = "release_version: empty or 12 lower-case hex digits."
  }
}

variable "kafka_bootstrap_servers" {
  description = "Reserved for the Kafka source (not built yet); see the check block in main.tf."
  type        = string
  default     = ""
}
