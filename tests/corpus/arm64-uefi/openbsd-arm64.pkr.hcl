# arm64 OpenBSD on QEMU's virt machine through UEFI, as published arm64 templates do.
packer {
  required_plugins {
    qemu = {
      version = ">= 1.1.0"
      source  = "github.com/hashicorp/qemu"
    }
  }
}

variable "release" {
  type    = string
  default = "7.6"
}

locals {
  short = replace(var.release, ".", "")
  iso   = "install${local.short}.iso"
}

source "qemu" "arm64" {
  qemu_binary       = "qemu-system-aarch64"
  machine_type      = "virt"
  cpu_model         = "cortex-a57"
  accelerator       = "tcg"
  efi_boot          = true
  efi_drop_efivars  = false
  cdrom_interface   = "virtio-scsi"
  iso_url           = "https://cdn.openbsd.org/pub/OpenBSD/${var.release}/arm64/${local.iso}"
  iso_target_path   = "iso/${local.iso}"
  iso_checksum      = "file:https://cdn.openbsd.org/pub/OpenBSD/${var.release}/arm64/SHA256"
  disk_size         = "8G"
  memory            = 1024
  cpus              = 2
  headless          = true
  http_directory    = "http"
  boot_wait         = "45s"
  boot_command      = ["a<enter><wait5>", "http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.conf<enter>"]
  communicator      = "none"
  shutdown_timeout  = "30m"
  output_directory  = "output-arm64"
  vm_name           = "openbsd-arm64.qcow2"
}

build {
  sources = ["source.qemu.arm64"]
}
