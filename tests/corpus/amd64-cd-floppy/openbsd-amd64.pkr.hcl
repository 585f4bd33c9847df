# amd64 with a config CD (cd_files + cd_content) and a floppy, a second disk, a vTPM.
variable "hostname" {
  type    = string
  default = "builder"
}

source "qemu" "amd64" {
  iso_url              = "iso/install76.iso"
  iso_checksum         = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
  disk_size            = "10G"
  disk_additional_size = ["2G"]
  format               = "qcow2"
  accelerator          = "tcg"
  memory               = 1024
  sockets              = 1
  cores                = 2
  threads              = 1
  cd_label             = "cidata"
  cd_files             = ["./files/install.conf"]
  cd_content = {
    "meta-data" = "instance-id: ${var.hostname}\n"
    "user-data" = "#cloud-config\nhostname: ${var.hostname}\n"
  }
  floppy_files   = ["./files/disklabel"]
  floppy_label   = "SITE"
  http_directory = "http"
  boot_wait      = "20s"
  boot_command   = ["a<enter><wait5>", "file:/install.conf<enter>"]
  communicator   = "none"
  vm_name        = "openbsd-amd64.qcow2"
}

build {
  sources = ["source.qemu.amd64"]
}
