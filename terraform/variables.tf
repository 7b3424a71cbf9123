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
    # The service account ids "<prefix>-scheduler" and "<prefix>-executor" must
    # be 6 to 30 characters; a label value at most 63.
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
  description = "Release the VMs run: gs://<bucket>/releases/<version>/funnelpulse{-scheduler,-executor,} (deploy/up.sh sets it: 12 hex digits of the binaries' sha256). Required to create or change the VMs; only a destroy may leave it out."
  type        = string
  default     = null

  validation {
    condition     = var.release_version == null || can(regex("^[0-9a-f]{12}$", var.release_version))
    error_message = "release_version must be a release id, 12 lower-case hex digits (deploy/up.sh uses the first 12 of the sha256 over the three binaries), naming gs://<bucket>/releases/<release_version>/ where the binaries are; it is empty or malformed here."
  }
}

variable "release_sha256" {
  description = "sha256 (64 lower-case hex digits) of each binary of the release, by name: funnelpulse-scheduler, funnelpulse-executor, funnelpulse. The VMs get them in their metadata (funnelpulse-release-sha256-<name>) and refuse a download that differs. Required with release_version."
  type        = map(string)
  default     = null

  validation {
    # A conditional, not ||: Terraform before 1.12 evaluates both sides of ||,
    # and length(null) is an error.
    condition = var.release_sha256 == null ? true : (
      length(var.release_sha256) == 3 &&
      alltrue([for name in ["funnelpulse-scheduler", "funnelpulse-executor", "funnelpulse"] : can(regex("^[0-9a-f]{64}$", lookup(var.release_sha256, name, "")))])
    )
    error_message = "release_sha256 must map exactly funnelpulse-scheduler, funnelpulse-executor and funnelpulse to their sha256 (64 lower-case hex digits, as sha256sum prints it)."
  }
}

variable "iap_members" {
  description = "Principals that may open IAP tunnels to the scheduler VM (user:a@example.com, group:..., serviceAccount:..., domain:..., principal://..., principalSet://...): roles/iap.tunnelResourceAccessor on that instance only. deploy/up.sh passes the gcloud account."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.iap_members : can(regex("^(user|group|serviceAccount|domain):[^\\s]+$|^principal(Set)?://[^\\s]+$", m))])
    error_message = "iap_members: each like user:alice@example.com, group:team@example.com, serviceAccount:..., domain:example.com, principal://... or principalSet://..."
  }
}

variable "scheduler_max_run_seconds" {
  description = "Compute Engine stops the scheduler VM (and so the cluster's billing for it) after this many seconds of running, whatever runs inside; each start begins a new period. A backstop for the idle watchdog. 0: never (a stream you keep running). Changing it replaces the scheduler VM."
  type        = number
  default     = 28800

  validation {
    condition     = var.scheduler_max_run_seconds == 0 || (var.scheduler_max_run_seconds >= 600 && var.scheduler_max_run_seconds <= 2592000 && floor(var.scheduler_max_run_seconds) == var.scheduler_max_run_seconds)
    error_message = "scheduler_max_run_seconds: 0 (off) or a whole number of seconds from 600 (10 minutes) to 2592000 (30 days)."
  }
}

variable "executor_autoheal_delay_seconds" {
  description = "Seconds after an executor starts before autohealing may recreate it for not answering on 50052 (boot plus the binary's download, which startup.sh waits up to 20 minutes for)."
  type        = number
  default     = 1500

  validation {
    condition     = var.executor_autoheal_delay_seconds >= 0 && var.executor_autoheal_delay_seconds <= 3600 && floor(var.executor_autoheal_delay_seconds) == var.executor_autoheal_delay_seconds
    error_message = "executor_autoheal_delay_seconds: a whole number from 0 to 3600 (the API's maximum)."
  }
}

variable "labels" {
  description = "Extra labels on every resource that takes labels (app and funnelpulse-deployment are always set)."
  type        = map(string)
  default     = {}
}

variable "billing_account" {
  description = "Billing account id (XXXXXX-XXXXXX-XXXXXX) for an optional monthly budget on this project with e-mail alerts; empty: no budget."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6})?$", var.billing_account))
    error_message = "billing_account: empty or a billing account id like 012345-6789AB-CDEF01."
  }
}

variable "budget_amount" {
  description = "The monthly budget, in whole units of the billing account's currency (with billing_account)."
  type        = number
  default     = 50

  validation {
    condition     = var.budget_amount > 0 && floor(var.budget_amount) == var.budget_amount
    error_message = "budget_amount: a whole number above 0."
  }
}

variable "budget_thresholds" {
  description = "Fractions of budget_amount (actual spend) at which the budget e-mails the billing account's administrators; the month's forecast reaching 100 % does too."
  type        = list(number)
  default     = [0.5, 0.9, 1.0]

  validation {
    condition     = length(var.budget_thresholds) > 0 && alltrue([for t in var.budget_thresholds : t > 0 && t <= 10])
    error_message = "budget_thresholds: one or more fractions above 0 (1.0 = the whole budget)."
  }
}

# Kafka: the source of stage 04 (`funnelpulse run 04 --source kafka`). Either
# an existing broker (kafka_bootstrap_servers) or a Managed Service for Apache
# Kafka cluster made here (managed_kafka), never both. The scheduler VM gets
# the address and the topic in its metadata: the funnelpulse client that
# reads the topic runs there (deploy/submit.sh), inside the VPC.

variable "kafka_bootstrap_servers" {
  description = "An existing Kafka's brokers, HOST:PORT[,HOST:PORT...], as the scheduler VM reaches them (inside this VPC, a peered one, or through NAT you add); empty: none, or managed_kafka's."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^(([A-Za-z0-9._-]+|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5}(,([A-Za-z0-9._-]+|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5})*)?$", var.kafka_bootstrap_servers))
    error_message = "kafka_bootstrap_servers: empty or HOST:PORT[,HOST:PORT...] (an IPv6 host in brackets), without spaces."
  }
}

variable "kafka_topic" {
  description = "Topic of the events (stage 04 reads it, `funnelpulse kafka replay` writes it); with managed_kafka, Terraform creates it."
  type        = string
  default     = "funnelpulse_events"

  validation {
    # Kafka's own rule: 1 to 249 of these characters.
    condition     = can(regex("^[A-Za-z0-9._-]{1,249}$", var.kafka_topic))
    error_message = "kafka_topic: 1 to 249 letters, digits, '.', '_' or '-'."
  }
}

variable "managed_kafka" {
  description = "Create a Google Cloud Managed Service for Apache Kafka cluster on the cluster's subnet (and the topic, and the VMs' client role); it bills while it exists (at least 3 vCPU, 3 GiB)."
  type        = bool
  default     = false
}

variable "kafka_partitions" {
  description = "Partitions of the topic created with managed_kafka (can be raised later, never lowered)."
  type        = number
  default     = 3

  validation {
    condition     = var.kafka_partitions >= 1 && floor(var.kafka_partitions) == var.kafka_partitions
    error_message = "kafka_partitions: a whole number >= 1."
  }
}

variable "kafka_vcpu_count" {
  description = "vCPUs of the managed Kafka cluster (the service's minimum is 3: one broker per zone)."
  type        = number
  default     = 3

  validation {
    condition     = var.kafka_vcpu_count >= 3 && floor(var.kafka_vcpu_count) == var.kafka_vcpu_count
    error_message = "kafka_vcpu_count: a whole number >= 3 (the service's minimum)."
  }
}

variable "kafka_memory_gib" {
  description = "Memory of the managed Kafka cluster in GiB: 1 to 8 GiB per vCPU (the minimum is 3)."
  type        = number
  default     = 3

  validation {
    condition     = var.kafka_memory_gib >= 3 && floor(var.kafka_memory_gib) == var.kafka_memory_gib
    error_message = "kafka_memory_gib: a whole number of GiB >= 3 (and 1 to 8 GiB per vCPU)."
  }
}
