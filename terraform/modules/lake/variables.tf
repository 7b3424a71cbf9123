variable "bucket_name" {
  description = "Name of the lake bucket (globally unique)."
  type        = string
}

variable "location" {
  description = "Bucket location: the cluster's region, so reads and writes from the VMs cost no egress."
  type        = string
}

variable "labels" {
  description = "Labels of the bucket."
  type        = map(string)
}

variable "staging_retention_days" {
  description = "Age after which objects under lake/_staging/ are deleted (left behind by runs that died)."
  type        = number
  default     = 7
}

variable "release_retention_days" {
  description = "Age after which uploaded binaries under releases/ are deleted."
  type        = number
  default     = 30
}

variable "soft_delete_days" {
  description = "How long deleted or overwritten objects stay recoverable."
  type        = number
  default     = 7
}
