"""The vagrant post-processor: a Vagrant box from a build's disk, with the options of
Packer's (post-processor/vagrant in hashicorp/packer-plugin-vagrant): `output` (default
`packer_{{ .BuildName }}_{{ .Provider }}_{{ .Architecture }}.box`), `compression_level`
(gzip's 0-9, default 6; 0 is a plain tar), `provider_override`, `include`,
`vagrantfile_template` (rendered with the same fields), `architecture` (default the
host's, in Go's names), `override` (per-provider option maps), `keep_input_artifact`.

A box is a gzipped tar of `metadata.json`, `Vagrantfile` and the disk (Vagrant's box
file format). packwrap builds two providers:
- `libvirt` (the qemu builder's): `box.img`, qcow2 as vagrant-libvirt requires (a raw
  disk is converted), metadata `format` and `virtual_size` (GiB, rounded up);
- `openbsd` (openbsd-vmm's), vagrant-openbsd's vmd(8) provider: `disk.img` as vmctl
  created it, metadata `format` and `virtual_size` too.
Either is built from either builder's disk with `provider_override`; Packer's other
providers are a one-line error at validate. The box is written under a temporary name
and renamed when whole.
"""

from __future__ import annotations

import json
import platform
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from packwrap.build.artifact import Artifact
from packwrap.config.schema import BOOL, INT, LIST, MAP, STRING, Option, Schema
from packwrap.errors import PackwrapError
from packwrap.postprocess.base import PostProcessorConfig

if TYPE_CHECKING:
    from packwrap.postprocess.base import PPContext

BUILDER_ID = "mitchellh.post-processor.vagrant"
DEFAULT_OUTPUT = "packer_{{ .BuildName }}_{{ .Provider }}_{{ .Architecture }}.box"
#: Packer's provider for each builder's artifact, plus openbsd-vmm's.
BY_BUILDER = {"transcend.qemu": "libvirt", "packer.openbsd-vmm": "openbsd"}
#: Providers Packer's vagrant post-processor knows; packwrap builds only BOX_DISK's.
PACKER_PROVIDERS = [
    "aws",
    "azure",
    "digitalocean",
    "docker",
    "file",
    "google",
    "hyperv",
    "libvirt",
    "lxc",
    "parallels",
    "scaleway",
    "virtualbox",
    "vmware",
]
#: provider -> the disk's name in the box
BOX_DISK = {"libvirt": "box.img", "openbsd": "disk.img"}
#: Go's GOARCH for the host, as Packer's `architecture` default
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i386": "386", "i686": "386"}
OVERRIDABLE = ("compression_level", "include", "output", "vagrantfile_template")


class VagrantConfig(PostProcessorConfig):
    output: str
    compression_level: int | None
    provider_override: str
    vagrantfile_template: str
    vagrantfile_template_generated: bool
    include: list[str]
    architecture: str
    override: dict[str, Any]


def _check(config: VagrantConfig, problem: Callable[[str, str | None], None]) -> None:
    from packwrap.postprocess.tools import missing_tool

    for program in ("qemu-img", "tar"):  # the disk's format and size; the box
        reason = missing_tool(program)
        if reason:
            problem(f"vagrant: {reason}", None)
    name = config.provider_override
    if name and name not in BOX_DISK:
        if name in PACKER_PROVIDERS:
            problem(
                f"provider_override {name!r}: packwrap builds only libvirt and openbsd (vmd) "
                "boxes; hand this build to packer for the others",
                "provider_override",
            )
        else:
            problem(
                f"the given provider_override {name} is not valid; choose one of "
                f"{', '.join([*PACKER_PROVIDERS, 'openbsd'])}",
                "provider_override",
            )
    _check_box_options(config, problem, "", config.vagrantfile_template_generated)
    for provider, values in (config.override or {}).items():
        unknown = sorted(set(values) - set(OVERRIDABLE)) if isinstance(values, dict) else []
        if not isinstance(values, dict) or unknown:
            problem(f"override.{provider}: expected a map of {', '.join(OVERRIDABLE)}", "override")
        else:
            _check_box_options(values, problem, f"override.{provider}.", False)


def _check_box_options(
    values: dict[str, Any],
    problem: Callable[[str, str | None], None],
    prefix: str,
    template_generated: bool,
) -> None:
    """The options `override` may set too, each problem named with `prefix`."""
    option = (prefix.split(".")[0] or None) if prefix else None
    level = values.get("compression_level")
    if level is not None and not (isinstance(level, int) and -1 <= level <= 9):
        problem(
            f"{prefix}compression_level {level}: expected an integer from 0 to 9",
            option or "compression_level",
        )
    template = values.get("vagrantfile_template")
    if template and not template_generated and not Path(template).is_file():
        problem(
            f"{prefix}vagrantfile_template '{template}' does not exist",
            option or "vagrantfile_template",
        )
    include = values.get("include") or []
    for src in [include] if isinstance(include, str) else include:
        if not Path(src).is_file():
            problem(f"{prefix}include: {src} is not a file", option or "include")
        elif Path(src).name in ("metadata.json", "Vagrantfile", *BOX_DISK.values()):
            problem(
                f"{prefix}include: {src} would replace the box's own {Path(src).name}",
                option or "include",
            )


class VagrantPostProcessor:
    type_name: ClassVar[str] = "vagrant"
    force_keep: ClassVar[bool] = True  # Packer's forceOverride; its default keep is false
    schema: ClassVar[Schema[VagrantConfig]] = Schema(
        [
            Option("output", STRING, DEFAULT_OUTPUT),
            Option("compression_level", INT, None),
            Option("provider_override", STRING, ""),
            Option("vagrantfile_template", STRING, ""),
            Option("vagrantfile_template_generated", BOOL, False),
            Option("include", LIST, []),
            Option("architecture", STRING, ""),
            Option("override", MAP, {}),
        ],
        [_check],
        VagrantConfig,
    )

    def run(
        self, config: VagrantConfig, artifact: Artifact, ctx: PPContext
    ) -> tuple[Artifact, bool]:
        from packwrap.atomicfile import atomic_output, with_umask
        from packwrap.postprocess.archive import ArchiveFormat, write_archive
        from packwrap.postprocess.output import output_path
        from packwrap.postprocess.tools import artifact_disk, convert_image, image_info

        what = "post-processor 'vagrant'"
        provider = config.provider_override or BY_BUILDER.get(artifact.builder_id)
        if provider is None:
            raise PackwrapError(
                f"vagrant: unknown artifact type, can't build box: {artifact.builder_id} "
                "(set provider_override to libvirt or openbsd)"
            )
        options = _for_provider(config, provider)
        arch = config.architecture or GO_ARCH.get(platform.machine(), platform.machine())
        fields = {"Provider": provider, "Architecture": arch, "ArtifactId": artifact.id}
        target = output_path(options["output"], artifact, ctx, "vagrant", **fields)
        disk = ctx.cwd / artifact_disk(artifact, what)
        disk_format, size = image_info(disk, ctx, what)
        ctx.ui.say(f"Creating Vagrant box for '{provider}' provider")
        level = options["compression_level"]
        level = 6 if level is None or level == -1 else level
        # the box's files are staged beside it: a converted disk can be as large as the
        # disk, too large for a small /tmp
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".packwrap-box-", dir=target.parent) as scratch:
            box = Path(scratch)
            box_disk = box / BOX_DISK[provider]
            if provider == "libvirt" and disk_format != "qcow2":
                ctx.ui.message(f"Converting {disk} ({disk_format}) to qcow2 for vagrant-libvirt")
                convert_image(disk, box_disk, "qcow2", ctx, what)
                disk_format = "qcow2"
            else:
                box_disk.symlink_to(disk.resolve())  # tar reads it through the link
            metadata = {
                "provider": provider,
                "format": disk_format,
                "virtual_size": -(-size // (1 << 30)),  # GiB, rounded up
                "architecture": arch,
            }
            (box / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
            vagrantfile = _vagrantfile(provider, artifact, options, ctx, fields)
            (box / "Vagrantfile").write_text(vagrantfile)
            members = [box / "metadata.json", box / "Vagrantfile", box_disk]
            for src in options["include"]:
                ctx.ui.message(f"Copying from include: {src}")
                link = box / Path(src).name
                link.symlink_to(Path(src).resolve())
                members.append(link)
            fmt = ArchiveFormat("tar", "gzip" if level else None)
            with atomic_output(target, mode=with_umask(0o644)) as partial:
                write_archive(fmt, members, partial, max(level, 1), ctx, what)
        ctx.ui.message(f"Box {target} completed")
        box_artifact = Artifact(
            builder_id=BUILDER_ID,
            id=provider,
            files=[str(target)],
            description=f"'{provider}' provider box: {target}",
            state=dict(artifact.state),
        )
        return box_artifact, False


def _for_provider(config: VagrantConfig, provider: str) -> dict[str, Any]:
    """The options, with `override.<provider>`'s values in place (Packer's specificConfig)."""
    options = {name: config.get(name) for name in OVERRIDABLE}
    options.update((config.override or {}).get(provider) or {})
    options["output"] = options["output"] or DEFAULT_OUTPUT
    include = options["include"] or []
    options["include"] = [include] if isinstance(include, str) else list(include)
    return options


def _vagrantfile(
    provider: str,
    artifact: Artifact,
    options: dict[str, Any],
    ctx: PPContext,
    fields: Mapping[str, object],
) -> str:
    """The provider's settings, then the user's template rendered (as Packer's box
    Vagrantfile is laid out)."""
    if provider == "libvirt":
        domain = artifact.state.get("domainType") or "tcg"
        driver = "kvm" if domain == "kvm" else "qemu"
        settings = (
            'Vagrant.configure("2") do |config|\n'
            "  config.vm.provider :libvirt do |libvirt|\n"
            f'    libvirt.driver = "{driver}"\n'
            "  end\n"
            "end\n"
        )
    else:
        # vagrant-openbsd's box guide: the guest named, and ksh for Vagrant's commands
        settings = (
            'Vagrant.configure("2") do |config|\n'
            "  config.vm.guest = :openbsd\n"
            '  config.ssh.shell = "ksh"\n'
            "end\n"
        )
    custom = ""
    if options["vagrantfile_template"]:
        from packwrap.build.bootcommand import render

        path = Path(options["vagrantfile_template"])
        data: dict[str, object] = dict(artifact.state.get("generated_data") or {})
        data.update(BuildName=ctx.build_name, BuilderType=ctx.builder_type, **fields)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PackwrapError(f"vagrant: cannot read {path}: {exc.strerror}") from None
        custom = render(text, data, what=f"vagrantfile_template {path}")
    return (
        "# Provider settings, written by packwrap's vagrant post-processor\n"
        f"{settings}\n"
        "# The template's vagrantfile_template (if any)\n"
        f"{custom}"
    )
