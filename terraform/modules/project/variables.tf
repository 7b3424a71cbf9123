variable "project_id" {
  type = string
}

variable "name_prefix" {
  type = string
}

variable "managed_kafka" {
  description = "Also enable managedkafka.googleapis.com."
  type        = bool
}

variable "billing_account" {
  description = "Billing account id (XXXXXX-XXXXXX-XXXXXX) for the budget; empty: no budget."
  type        = string
}

variable "budget_amount" {
  description = "Monthly budget in the billing account's currency (whole units)."
  type        = number
}

variable "budget_thresholds" {
  description = "Fractions of the budget (actual spend) that send an alert."
  type        = list(number)
}
