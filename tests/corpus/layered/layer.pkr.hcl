# A layer on an earlier build's artifact: a qcow2 overlay whose backing file is the base
# image (Packer's disk_image + use_backing_file), grown to disk_size, then provisioned.
variable "base_image" {
  type    = string
  default = "../base/output-base/openbsd-base.qcow2"
}

source "qemu" "layer" {
  disk_image       = true
  use_backing_file = true
  iso_url          = var.base_image
  iso_checksum     = "none"
  format           = "qcow2"
  disk_size        = "12G"
  accelerator      = "tcg"
  memory           = 1024
  ssh_username     = "root"
  ssh_password     = "packer"
  ssh_timeout      = "20m"
  shutdown_command = "shutdown -p now"
  vm_name          = "openbsd-layer.qcow2"
}

build {
  sources = ["source.qemu.layer"]

  provisioner "shell" {
    inline = ["pkg_add -I curl", "echo layered > /etc/motd"]
  }
}
