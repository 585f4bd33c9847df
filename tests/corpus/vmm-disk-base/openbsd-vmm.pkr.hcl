# An OpenBSD vmm(4) build on top of a base disk (the Go vmm plugin's disk_base).
variable "base" {
  type    = string
  default = "images/openbsd-base.qcow2"
}

source "openbsd-vmm" "layer" {
  vm_name          = "layer"
  disk_base        = var.base
  disk_format      = "qcow2"
  memory           = "1G"
  boot_device      = "disk"
  vm_template      = "openbsd-builder"
  boot_wait        = "5s"
  output_directory = "output-vmm"
  communicator     = "ssh"
  ssh_username     = "root"
  ssh_password     = "packer"
  shutdown_command = "shutdown -p now"
}

build {
  sources = ["source.openbsd-vmm.layer"]

  provisioner "shell" {
    inline = ["syspatch || true"]
  }
}
