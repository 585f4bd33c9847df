# Variables guarded by validation blocks, as shared templates do.
variable "release" {
  type    = string
  default = "7.6"
  validation {
    condition     = can(regex("^[0-9]+[.][0-9]+$", var.release))
    error_message = "The release must look like 7.6."
  }
}

variable "disk_gb" {
  type    = number
  default = 8
  validation {
    condition     = var.disk_gb >= 4 && var.disk_gb <= 64
    error_message = "The disk_gb must be between 4 and 64."
  }
}

variable "arch" {
  type    = string
  default = "amd64"
  validation {
    condition     = contains(["amd64", "i386"], var.arch)
    error_message = "The arch must be amd64 or i386."
  }
}

source "qemu" "openbsd" {
  iso_url          = "iso/install${replace(var.release, ".", "")}.iso"
  iso_checksum     = "none"
  qemu_binary      = var.arch == "i386" ? "qemu-system-i386" : "qemu-system-x86_64"
  disk_size        = "${var.disk_gb}G"
  accelerator      = "tcg"
  http_directory   = "http"
  boot_command     = ["a<enter><wait5>", "http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.conf<enter>"]
  communicator     = "none"
}

build {
  sources = ["source.qemu.openbsd"]
}
