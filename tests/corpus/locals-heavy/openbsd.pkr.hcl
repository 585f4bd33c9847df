# Locals computing names, sizes and boot commands from a few variables.
variable "release" {
  type    = string
  default = "7.6"
}

variable "flavours" {
  type = map(object({
    disk   = number
    memory = number
  }))
  default = {
    small = { disk = 4096, memory = 512 }
    large = { disk = 16384, memory = 2048 }
  }
}

variable "flavour" {
  type    = string
  default = "small"
}

locals {
  short     = replace(var.release, ".", "")
  iso_name  = format("install%s.iso", local.short)
  spec      = lookup(var.flavours, var.flavour, var.flavours["small"])
  disk_size = "${local.spec.disk}M"
  tags      = merge({ release = var.release }, { flavour = var.flavour })
  tag_list  = [for k, v in local.tags : "${k}=${v}"]
  name      = join("-", ["openbsd", local.short, var.flavour])
  answers = [
    "a<enter><wait5>",
    "http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.conf<enter>",
  ]
  upper_tags = { for k, v in local.tags : upper(k) => v }
}

locals {
  output = "output-${local.name}"
}

source "qemu" "openbsd" {
  iso_url          = "iso/${local.iso_name}"
  iso_checksum     = "none"
  disk_size        = local.disk_size
  memory           = local.spec.memory
  accelerator      = "tcg"
  http_directory   = "http"
  boot_command     = local.answers
  communicator     = "none"
  output_directory = local.output
  vm_name          = "${local.name}.qcow2"
}

build {
  sources = ["source.qemu.openbsd"]

  post-processor "manifest" {
    output     = "${local.output}/manifest.json"
    custom_data = local.upper_tags
  }
}
