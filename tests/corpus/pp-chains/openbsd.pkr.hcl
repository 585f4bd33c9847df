# Post-processor chains: a manifest, then checksums in a chain, and a separate manifest.
source "qemu" "openbsd" {
  iso_url          = "iso/install76.iso"
  iso_checksum     = "none"
  disk_size        = "8G"
  accelerator      = "tcg"
  http_directory   = "http"
  boot_command     = ["a<enter><wait5>", "http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.conf<enter>"]
  communicator     = "none"
  vm_name          = "openbsd.qcow2"
}

build {
  sources = ["source.qemu.openbsd"]

  post-processors {
    post-processor "checksum" {
      checksum_types = ["sha256", "sha512"]
      output         = "output-openbsd/{{.BuildName}}.{{.ChecksumType}}"
    }
    post-processor "manifest" {
      output     = "chain-manifest.json"
      strip_path = true
    }
  }

  post-processor "manifest" {
    output = "packer-manifest.json"
  }
}
