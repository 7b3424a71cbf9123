# Who may open an IAP tunnel to the scheduler (`gcloud compute
# start-iap-tunnel`, `gcloud compute ssh --tunnel-through-iap`): the members
# listed in iap_members, on this one instance, not project-wide. The firewall
# admits IAP's range (35.235.240.0/20) on 50050 and 22 only; IAP checks this
# permission on every connection. SSH also needs OS Login rights
# (roles/compute.osAdminLogin, sudo for deploy/submit.sh --detach) and
# roles/iam.serviceAccountUser on the scheduler's service account: not granted
# here (docs/terraform.md, "Access").
resource "google_iap_tunnel_instance_iam_member" "scheduler" {
  for_each = toset(var.iap_members)

  project  = var.project_id
  zone     = var.zone
  instance = google_compute_instance.scheduler.name
  role     = "roles/iap.tunnelResourceAccessor"
  member   = each.value

  # A new release replaces the scheduler under the same name, and its IAM
  # policy goes with the old instance: grant again on the new one (its
  # instance_id is new), not at the next apply only.
  lifecycle {
    replace_triggered_by = [google_compute_instance.scheduler.instance_id]
  }
}
