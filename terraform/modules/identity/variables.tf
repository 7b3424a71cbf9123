variable "project_id" {
  type = string
}

variable "zone" {
  description = "Zone of the executor group (the watchdog's grant names it)."
  type        = string
}

variable "name_prefix" {
  description = "Accounts <prefix>-scheduler and <prefix>-executor, group <prefix>-executors."
  type        = string
}

variable "bucket_name" {
  description = "The lake bucket: the only bucket the VMs get any access to."
  type        = string
}

variable "writable_prefixes" {
  description = "Object name prefixes the VMs may read, write and delete."
  type        = list(string)
  default     = ["lake/"]
}

variable "read_only_prefixes" {
  description = "Object name prefixes the VMs may only read."
  type        = list(string)
  default     = ["releases/", "raw/"]
}

variable "watchdog" {
  description = "Grant the scheduler's account the resize of its executor group (idle_minutes > 0)."
  type        = bool
}
