variable "release_version" {
  type = string
}

variable "release_sha256" {
  type = map(string)
}
