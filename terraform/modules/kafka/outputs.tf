output "cluster_name" {
  description = "projects/<project>/locations/<region>/clusters/<id>"
  value       = google_managed_kafka_cluster.kafka.name
}

# The service returns the address without a port: 9092 is its SASL listener
# (SASL_SSL: every connection is TLS and authenticated as a Google principal).
output "bootstrap_servers" {
  value = "${google_managed_kafka_cluster.kafka.bootstrap_address}:9092"
}

output "topic" {
  value = google_managed_kafka_topic.events.topic_id
}
