"""Loading templates: HCL2, HCL2 JSON, legacy JSON, directories, builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from packwrap.template import load_template, select_builds

DATA = Path(__file__).resolve().parent.parent / "data"

TEMPLATE = """
variable "vm_name" {
  type    = string
  default = "myvm"
}

variable "sets" {
  type    = list(string)
  default = ["base", "comp"]
}

locals {
  name    = "${var.vm_name}-${local.suffix}"
  suffix  = lower("X")
  memory  = 256 * 2
  sets_csv = join(",", var.sets)
}

local "password" {
  expression = "hunter2"
  sensitive  = true
}

source "qemu" "openbsd-76" {
  vm_name      = local.name
  memory       = local.memory
  boot_command = ["a<enter>", "http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.conf<enter>"]
  http_content = {
    "/install.conf" = "sets=${local.sets_csv}\\npw=${local.password}\\n"
  }
  path_root    = path.root
}

source "openbsd-vmm" "openbsd-76" {
  vm_name = var.vm_name
}

build {
  sources = ["source.qemu.openbsd-76", "source.openbsd-vmm.openbsd-76"]

  provisioner "shell" {
    inline = ["echo ${source.name}"]
  }

  provisioner "shell" {
    inline = ["default"]
    override = {
      "openbsd-vmm.openbsd-76" = {
        inline = ["for vmm"]
      }
    }
  }

  provisioner "shell" {
    name   = "only-qemu"
    only   = ["qemu.openbsd-76"]
    inline = ["echo qemu"]
  }

  post-processor "manifest" {
    output = "manifest.json"
  }

  post-processors {
    post-processor "checksum" {
      checksum_types = ["sha256"]
    }
    post-processor "compress" {}
  }

  post-processor "shell-local" {
    except = ["source.qemu.openbsd-76"]
    inline = ["true"]
  }
}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_hcl_template_builds_sources_and_interpolation(tmp_path):
    path = write(tmp_path, "t.pkr.hcl", TEMPLATE)
    t = load_template(path, env={})
    assert t.format == "hcl"
    assert t.dir == tmp_path.resolve()
    assert [b.name for b in t.builds] == ["qemu.openbsd-76", "openbsd-vmm.openbsd-76"]
    qemu, vmm = t.builds
    body = qemu.source.body
    assert qemu.source.type == "qemu" and qemu.source.name == "openbsd-76"
    assert body.values["vm_name"] == "myvm-x"
    assert body.values["memory"] == 512
    assert (
        body.values["boot_command"][1] == "http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.conf<enter>"
    )
    assert body.values["http_content"] == {"/install.conf": "sets=base,comp\npw=hunter2\n"}
    assert body.values["path_root"] == str(tmp_path.resolve())
    assert body.file == str(path)
    assert body.line == 24
    assert body.lines["vm_name"] == 25 and body.lines["http_content"] == 28
    assert "hunter2" in t.sensitive
    assert t.mask("password hunter2!") == "password <sensitive>!"
    assert t.locals["memory"] == 512
    # provisioners: order kept, `only` filters, `source.name` known
    assert [p.name for p in qemu.provisioners] == [None, None, "only-qemu"]
    assert qemu.provisioners[0].body.values["inline"] == ["echo openbsd-76"]
    assert [p.name for p in vmm.provisioners] == [None, None]
    # override: per-source values
    assert qemu.provisioners[1].body.values == {"inline": ["default"]}
    assert vmm.provisioners[1].body.values == {"inline": ["for vmm"]}
    # post-processors: chains in file order; `except` filters
    assert [[p.type for p in c] for c in qemu.post_processors] == [
        ["manifest"],
        ["checksum", "compress"],
    ]
    assert [[p.type for p in c] for c in vmm.post_processors] == [
        ["manifest"],
        ["checksum", "compress"],
        ["shell-local"],
    ]
    assert qemu.post_processors[1][0].body.values == {"checksum_types": ["sha256"]}


def test_named_build_and_nested_source_overrides(tmp_path):
    path = write(
        tmp_path,
        "t.pkr.hcl",
        """
source "qemu" "base" {
  memory = 512
  cpus   = 1
}

build {
  name = "img"

  source "source.qemu.base" {
    name   = "big"
    memory = 2048
  }
  source "source.qemu.base" {
    name = "small"
  }
}
""",
    )
    t = load_template(path, env={})
    assert [b.name for b in t.builds] == ["img.qemu.big", "img.qemu.small"]
    big = t.builds[0]
    assert big.build_name == "img" and big.source.name == "big"
    assert big.source.body.values == {"memory": 2048, "cpus": 1}
    assert big.source.body.lines["memory"] == 12
    assert t.builds[1].source.body.values == {"memory": 512, "cpus": 1}


@pytest.mark.parametrize(
    ("only", "except_", "expected"),
    [
        ([], [], ["img.qemu.big", "img.qemu.small", "openbsd-vmm.x"]),
        (["img.qemu.*"], [], ["img.qemu.big", "img.qemu.small"]),
        (["qemu.big"], [], ["img.qemu.big"]),  # type.name also matches a named build
        (["*.small,openbsd-vmm.*"], [], ["img.qemu.small", "openbsd-vmm.x"]),
        ([], ["openbsd-vmm.*"], ["img.qemu.big", "img.qemu.small"]),
        ([], ["img.*", "*.x"], []),
        (["img.*"], ["*.big"], ["img.qemu.small"]),
    ],
)
def test_only_and_except(tmp_path, only, except_, expected):
    path = write(
        tmp_path,
        "t.pkr.hcl",
        """
source "qemu" "base" {}
source "openbsd-vmm" "x" {}
build {
  name = "img"
  source "source.qemu.base" {
    name = "big"
  }
  source "source.qemu.base" {
    name = "small"
  }
}
build {
  sources = ["source.openbsd-vmm.x"]
}
""",
    )
    t = load_template(path, env={})
    if not expected:
        from packwrap.errors import UsageError

        with pytest.raises(UsageError, match="selects no build"):
            select_builds(t, only, except_)
        return
    assert [b.name for b in select_builds(t, only, except_)] == expected


def test_directory_loads_templates_and_auto_vars_in_lexical_order(tmp_path):
    write(tmp_path, "b.pkr.hcl", 'source "qemu" "x" {\n  vm_name = var.name\n}\n')
    write(tmp_path, "a.pkr.hcl", 'variable "name" {\n  default = "d"\n}\n')
    write(tmp_path, "c.pkr.json", json.dumps({"build": {"sources": ["source.qemu.x"]}}))
    write(tmp_path, "1.auto.pkrvars.hcl", 'name = "first"\n')
    write(tmp_path, "2.auto.pkrvars.json", '{"name": "second"}')
    write(tmp_path, "ignored.pkrvars.hcl", 'name = "not auto"\n')
    t = load_template(tmp_path, env={})
    assert [p.name for p in t.files] == ["a.pkr.hcl", "b.pkr.hcl", "c.pkr.json"]
    assert t.variables == {"name": "second"}
    assert t.builds[0].source.body.values == {"vm_name": "second"}


def test_pkr_json_syntax(tmp_path):
    doc = {
        "variable": {"mem": {"type": "number", "default": 256}},
        "locals": {"double": "${var.mem * 2}"},
        "source": {"qemu": {"x": {"memory": "${local.double}", "vm_name": "n-${var.mem}"}}},
        "build": [
            {
                "sources": ["source.qemu.x"],
                "provisioner": [{"shell": {"inline": ["echo {{ .Name }}"]}}],
                "post-processors": [{"post-processor": {"checksum": {"checksum_types": ["md5"]}}}],
            }
        ],
    }
    path = write(tmp_path, "t.pkr.json", json.dumps(doc, indent=2))
    t = load_template(path, var_args=["mem=100"], env={})
    assert t.format == "json"
    build = t.builds[0]
    assert build.source.body.values == {"memory": 200, "vm_name": "n-100"}
    assert build.source.body.lines["memory"] == 14
    assert build.provisioners[0].body.values == {"inline": ["echo {{ .Name }}"]}
    assert build.post_processors[0][0].type == "checksum"


def test_seed_demo_loads_as_one_openbsd_vmm_build():
    t = load_template(DATA / "seed-demo.json", env={})
    assert t.format == "legacy"
    assert len(t.builds) == 1
    build = t.builds[0]
    assert build.name == "packer-obsd64-vmm-amd64"
    assert build.source.type == "openbsd-vmm"
    values = build.source.body.values
    assert values["vm_name"] == "myvm"
    assert values["iso_image"] == "~/Downloads/install65.iso"
    assert values["bios"] == "/bsd.rd"
    assert values["disk_size"] == "1500M"
    assert values["boot_command"] == [
        "A<enter>",
        "http://{{ .HTTPIP }}:{{ .HTTPPort }}/packer-auto_install.conf<enter>",
    ]
    assert build.source.body.lines["vm_name"] == 6
    assert build.source.body.lines["iso_image"] == 11
    assert "type" not in values and "name" not in values


def test_legacy_user_env_and_builder_data(tmp_path):
    doc = """{
  "variables": {
    "name": "demo",
    "home": "{{env `HOME`}}",
    "full": "{{user `name`}}-{{user `home`}}",
    "pw": "secret-pw"
  },
  "sensitive-variables": ["pw"],
  "builders": [
    {"type": "qemu", "name": "q", "vm_name": "{{user `full`}}",
     "boot_command": ["{{ .HTTPIP }} {{.HTTPPort}} {{ .Name }} {{user `name`}}"],
     "output_directory": "{{template_dir}}/out-{{ build_name }}"},
    {"type": "openbsd-vmm", "vm_name": "v"}
  ],
  "provisioners": [
    {"type": "shell", "inline": ["a"], "only": ["q"], "override": {"q": {"inline": ["b"]}}},
    {"type": "shell", "inline": ["c"], "except": ["q"]}
  ],
  "post-processors": ["compress", [{"type": "manifest"}, {"type": "checksum"}]]
}"""
    path = write(tmp_path, "t.json", doc)
    t = load_template(path, var_args=["name=cli"], env={"HOME": "/h"})
    q, v = t.builds
    assert (q.name, v.name) == ("q", "openbsd-vmm")
    assert q.source.body.values["vm_name"] == "cli-/h"
    assert q.source.body.values["boot_command"] == ["{{ .HTTPIP }} {{.HTTPPort}} {{ .Name }} cli"]
    assert (
        q.source.body.values["output_directory"] == f"{tmp_path.resolve()}/out-{{{{ build_name }}}}"
    )
    assert [p.body.values["inline"] for p in q.provisioners] == [["b"]]
    assert [p.body.values["inline"] for p in v.provisioners] == [["c"]]
    assert [[p.type for p in c] for c in q.post_processors] == [
        ["compress"],
        ["manifest", "checksum"],
    ]
    assert "secret-pw" in t.sensitive
    assert [b.name for b in select_builds(t, only=["q"])] == ["q"]


def test_import_is_cheap():
    import subprocess
    import sys

    code = "import sys, packwrap.template; print('hcl2' in sys.modules, 'lark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
