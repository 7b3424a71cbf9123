output "cluster_name" {
  description = "projects/<project>/locations/<region>/clusters/<id>"
  value       = google_managed_kafka_cluster.kafka.name
}

# No bootstrap address here: the provider's bootstrap_address attribute was
# merged upstream (2026-08-27) after the newest release whose source we could
# check (8.0), so it may be missing from the provider a user gets, and
# Terraform rejects a reference to an unknown attribute even with Kafka off.
# The deploy scripts read it instead with
#   gcloud managed-kafka clusters describe <cluster_id> --location <region> --format 'value(bootstrapAddress)'
# (port 9092, SASL_SSL, when the value has none).
output "cluster_id" {
  value = google_managed_kafka_cluster.kafka.cluster_id
}

output "topic" {
  value = google_managed_kafka_topic.events.topic_id
}
