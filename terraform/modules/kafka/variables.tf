variable "project_id" {
  type = string
}

variable "region" {
  description = "Region of the Kafka cluster: the subnet's (the service requires it)."
  type        = string
}

variable "name_prefix" {
  description = "The cluster id is \"<prefix>-kafka\"."
  type        = string
}

variable "subnetwork_id" {
  description = "projects/<project>/regions/<region>/subnetworks/<name>: the subnet where the brokers and the bootstrap address get their internal addresses and DNS names."
  type        = string
}

variable "service_account_email" {
  description = "The scheduler VM's service account (the funnelpulse client runs there): gets roles/managedkafka.client (connect, produce, consume)."
  type        = string
}

variable "topic" {
  description = "The topic to create."
  type        = string

  validation {
    # The service's resource ids: start with a letter, 3 or more characters,
    # not "goog..."; Kafka's own rule (in the root variable) does the rest.
    condition     = can(regex("^[A-Za-z][A-Za-z0-9._-]{2,248}$", var.topic)) && !startswith(var.topic, "goog")
    error_message = "kafka_topic with managed_kafka: 3 to 249 characters, starting with a letter (not \"goog\")."
  }
}

variable "partitions" {
  type = number
}

variable "vcpu_count" {
  type = number
}

variable "memory_gib" {
  type = number
}

variable "labels" {
  type = map(string)
}
