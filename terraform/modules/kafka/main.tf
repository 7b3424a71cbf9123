# Google Cloud Managed Service for Apache Kafka for stage 04's Kafka source:
# a cluster reachable only from inside the cluster's VPC, its topic, and the
# client role for the scheduler VM's service account. The funnelpulse client that
# reads and writes the topic runs on the scheduler VM (deploy/submit.sh).
#
# Networking: the service runs the brokers in a Google-managed tenant VPC and
# puts Private Service Connect endpoints for the bootstrap address and every
# broker into the subnet named below, with DNS entries in this VPC. The VMs
# reach them like any internal address: no NAT, no peering, no firewall rule
# (egress is not restricted, and VPC ingress rules do not apply to the
# endpoints). No public_cluster_config: nothing outside the VPC reaches it.
#
# Not checked against a real project (docs/terraform.md, "Kafka").

resource "google_managed_kafka_cluster" "kafka" {
  cluster_id = "${var.name_prefix}-kafka"
  location   = var.region
  labels     = var.labels

  # The service's minimum: 3 vCPU (a broker in each of three zones) and
  # 1 to 8 GiB of memory per vCPU.
  capacity_config {
    vcpu_count   = var.vcpu_count
    memory_bytes = tostring(var.memory_gib * 1024 * 1024 * 1024)
  }

  gcp_config {
    access_config {
      network_configs {
        subnet = var.subnetwork_id
      }
    }
  }

  # Spread partitions onto brokers added by a later scale-up.
  rebalance_config {
    mode = "AUTO_REBALANCE_ON_SCALE_UP"
  }

  lifecycle {
    precondition {
      condition     = var.memory_gib >= var.vcpu_count && var.memory_gib <= 8 * var.vcpu_count
      error_message = "kafka_memory_gib must be 1 to 8 GiB per vCPU: between ${var.vcpu_count} and ${8 * var.vcpu_count} for ${var.vcpu_count} vCPUs."
    }
  }
}

# The events topic. Replication 3: one copy per zone, as the service
# recommends. Default retention (the cluster's, 7 days in Kafka's default):
# the lake, not the topic, is the durable record, and stage 04's checkpoint
# says where each partition was read up to.
resource "google_managed_kafka_topic" "events" {
  topic_id           = var.topic
  cluster            = google_managed_kafka_cluster.kafka.cluster_id
  location           = var.region
  partition_count    = var.partitions
  replication_factor = 3
}

# Every connection authenticates as a Google principal with
# managedkafka.clusters.connect; this role has it, plus what a producer and
# a consumer need, and no administration of clusters or topics. Project-wide
# (the provider has no per-cluster IAM resource for Managed Kafka), and for
# the scheduler's account only: the client runs on the scheduler VM, the
# executors never talk to Kafka. It could also connect to another managed
# Kafka cluster of the project that its network reaches, nothing more.
resource "google_project_iam_member" "kafka_client" {
  project = var.project_id
  role    = "roles/managedkafka.client"
  member  = "serviceAccount:${var.service_account_email}"
}
