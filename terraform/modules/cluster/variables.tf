variable "project_id" {
  type = string
}

variable "region" {
  type = string
}

variable "zone" {
  type = string
}

variable "name_prefix" {
  type = string
}

variable "bucket_name" {
  description = "The lake bucket: the VMs get object access on it and on nothing else."
  type        = string
}

variable "scheduler_machine_type" {
  type = string
}

variable "executor_machine_type" {
  type = string
}

variable "executor_count" {
  type = number
}

variable "executor_spot" {
  type = bool
}

variable "idle_minutes" {
  type = number
}

variable "release_version" {
  description = "The release the VMs run; null only when destroying (the VMs' precondition says so)."
  type        = string
  default     = null
}

variable "labels" {
  type = map(string)
}

variable "kafka_bootstrap_servers" {
  description = "An existing Kafka's brokers for the funnelpulse client on the scheduler VM (metadata funnelpulse-kafka-bootstrap-servers); empty: none, or the managed cluster's."
  type        = string
  default     = ""
}

variable "kafka_topic" {
  description = "Kafka topic for that client (metadata funnelpulse-kafka-topic), created on the managed cluster."
  type        = string
  default     = "funnelpulse_events"
}

variable "managed_kafka" {
  description = "Create a Managed Service for Apache Kafka cluster on this subnet (module kafka)."
  type        = bool
  default     = false
}

variable "kafka_partitions" {
  type    = number
  default = 3
}

variable "kafka_vcpu_count" {
  type    = number
  default = 3
}

variable "kafka_memory_gib" {
  type    = number
  default = 3
}

variable "startup_script" {
  description = "Text of deploy/gce/startup.sh (metadata startup-script)."
  type        = string
}

variable "watchdog_script" {
  description = "Text of deploy/gce/watchdog.sh (metadata funnelpulse-watchdog)."
  type        = string
}

variable "subnet_cidr" {
  description = "Primary range of the cluster's subnet."
  type        = string
  default     = "10.42.0.0/24"
}

variable "image" {
  description = "Boot image: stock Debian 12 (has curl and the gcloud CLI, which is all startup.sh needs)."
  type        = string
  default     = "debian-cloud/debian-12"
}

variable "scheduler_disk_gb" {
  type    = number
  default = 20
}

variable "executor_disk_gb" {
  description = "Executor boot disk, which also holds the shuffle files."
  type        = number
  default     = 50
}

# ---- from module identity (long-lived: deploy/down.sh keeps it) ----

variable "scheduler_service_account_email" {
  description = "The scheduler VM's service account."
  type        = string
}

variable "executor_service_account_email" {
  description = "The executors' service account."
  type        = string
}

variable "executor_group" {
  description = "Name of the executor group (the watchdog's grant is conditioned on it)."
  type        = string
}

# ---- release, access, cost limits ----

variable "release_sha256" {
  description = "sha256 (hex) of each binary of the release: funnelpulse-scheduler, funnelpulse-executor, funnelpulse. Null only when destroying."
  type        = map(string)
  default     = null
}

variable "iap_members" {
  description = "Principals that may open IAP tunnels to the scheduler VM (roles/iap.tunnelResourceAccessor on that instance only)."
  type        = list(string)
  default     = []
}

variable "scheduler_max_run_seconds" {
  description = "Compute Engine stops the scheduler after this many seconds of running; 0: never."
  type        = number
  default     = 28800
}

variable "executor_autoheal_delay_seconds" {
  description = "Grace period after an executor boots before autohealing checks it (boot and binary download)."
  type        = number
  default     = 1500
}
