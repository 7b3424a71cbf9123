# Fixture for the custom policy CKV_FP_3: every resource here must FAIL it.

resource "google_service_account_key" "vm_key" {
  service_account_id = "projects/p/serviceAccounts/vm@p.iam.gserviceaccount.com"
}

resource "google_service_account_key" "kafka_sasl_key" {
  service_account_id = "projects/p/serviceAccounts/kafka@p.iam.gserviceaccount.com"
  key_algorithm      = "KEY_ALG_RSA_2048"
}
