"""The blueprint engine: search path, `extends` layering, values, HCL text, regeneration."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import hcl2
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from packwrap.blueprint import hcl, installer, registry
from packwrap.blueprint.model import Variable
from packwrap.blueprint.regenerate import EDITED, MISSING, STALE, plan, regenerate
from packwrap.blueprint.values import coerce, parse_var_args
from packwrap.cli import main
from packwrap.errors import PackwrapError, UsageError
from packwrap.template import hcl_emit, hcl_fmt
from tests.state_support import RecordingUi

PACKER = shutil.which("packer")


def _stub_install_conf(values, release):
    return f"System hostname = {values['hostname']}\nPassword for root account = x\n"


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    try:
        from packwrap.autoinstall.render import render_install_conf  # noqa: F401
    except ImportError:
        monkeypatch.setattr(installer, "render_install_conf", _stub_install_conf)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PACKWRAP_BLUEPRINT_PATH", raising=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# --- search path and extends ---------------------------------------------------------------


def test_search_path_order_env_then_xdg_then_builtin(tmp_path):
    env = {"PACKWRAP_BLUEPRINT_PATH": f"{tmp_path}/a:{tmp_path}/b", "XDG_CONFIG_HOME": "/x"}
    path = registry.search_path(env)
    assert path[:3] == [tmp_path / "a", tmp_path / "b", Path("/x/packwrap/blueprints")]
    assert (path[3] / "openbsd" / "blueprint.toml").is_file()
    home = registry.search_path({"HOME": "/home/u"})
    assert home[0] == Path("/home/u/.config/packwrap/blueprints")


def test_user_blueprint_extends_openbsd_via_env_var(tmp_path, monkeypatch, capsys):
    user = tmp_path / "mine"
    write(
        user / "web" / "blueprint.toml",
        """
        description = "OpenBSD web server"
        extends = "openbsd"

        [variables.hostname]
        default = "www"

        [variables.httpd_port]
        type = "number"
        default = 8080
        help = "Port httpd listens on."
        """,
    )
    write(
        user / "web" / "project" / "site" / "etc" / "rc.conf.local.j2",
        "httpd_flags=\n# port {{ values.httpd_port }}\n",
    )
    write(user / "web" / "project" / "README.md.j2", "# {{ name }}: my web server\n")
    write(
        user / "web" / "project" / "__name__.pkr.hcl.j2",
        """
        {% extends "openbsd/__name__.pkr.hcl.j2" %}
        {% block extra %}

        locals {
          port = var.httpd_port
        }
        {% endblock %}
        """,
    )
    monkeypatch.setenv("PACKWRAP_BLUEPRINT_PATH", str(user))

    assert main(["blueprints"]) == 0
    out = capsys.readouterr().out
    assert "web" in out and "OpenBSD web server" in out
    assert "web-76" in out  # releases come with the parent

    target = tmp_path / "proj"
    assert (
        main(["new", "web-77", str(target), "--no-root-password", "--var", "httpd_port=8443"]) == 0
    )
    # the child's own file, the child's override, and the parent's files
    assert (target / "site" / "etc" / "rc.conf.local").read_text().endswith("# port 8443\n")
    assert (target / "README.md").read_text() == "# web-77: my web server\n"
    template = (target / "web-77.pkr.hcl").read_text()
    assert 'source "qemu" "web-77"' in template
    assert template.endswith("locals {\n  port = var.httpd_port\n}\n")
    values = hcl2.loads((target / "web-77.auto.pkrvars.hcl").read_text())
    assert values["hostname"] == '"www"'
    assert values["httpd_port"] == 8443
    assert values["release"] == '"7.7"'
    if PACKER:
        r = subprocess.run(
            [PACKER, "fmt", "-check", "."], cwd=target, capture_output=True, check=False
        )
        assert r.returncode == 0, r.stdout


def test_user_blueprint_may_shadow_and_extend_the_builtin_of_the_same_name(tmp_path, monkeypatch):
    xdg = tmp_path / "xdg" / "packwrap" / "blueprints"
    write(
        xdg / "openbsd" / "blueprint.toml",
        """
        extends = "openbsd"
        [variables.memory]
        default = 4096
        """,
    )
    bp = registry.load_blueprint("openbsd")
    assert [d.path for d in bp.chain][0] == xdg / "openbsd"
    assert len(bp.chain) == 2
    assert bp.variables["memory"].default == 4096
    assert bp.variables["memory"].type == "number"  # the rest comes from the parent
    assert bp.description  # the parent's description


def test_extends_errors(tmp_path, monkeypatch):
    root = tmp_path / "bps"
    write(root / "a" / "blueprint.toml", 'extends = "b"\n')
    write(root / "b" / "blueprint.toml", 'extends = "a"\n')
    write(root / "c" / "blueprint.toml", 'extends = "nope"\n')
    write(root / "d" / "blueprint.toml", "[variables.x]\ntpye = 'string'\n")
    monkeypatch.setenv("PACKWRAP_BLUEPRINT_PATH", str(root))
    with pytest.raises(PackwrapError, match="loops back"):
        registry.load_blueprint("a")
    with pytest.raises(PackwrapError, match="extends 'nope', which is not on the search path"):
        registry.load_blueprint("c")
    with pytest.raises(PackwrapError, match="unknown key"):
        registry.load_blueprint("d")


def test_instance_names_resolve_to_the_one_openbsd_blueprint():
    inst = registry.resolve("openbsd-76")
    assert (inst.blueprint.name, inst.release, inst.name) == ("openbsd", "7.6", "openbsd-76")
    inst = registry.resolve("openbsd")
    assert inst.release == "7.6" and inst.name == "openbsd-76"
    with pytest.raises(UsageError, match=r"known releases: 7\.5, 7\.6, 7\.7, 7\.8"):
        registry.resolve("openbsd-99")
    with pytest.raises(UsageError, match="unknown blueprint 'freebsd-14'"):
        registry.resolve("freebsd-14")


# --- values -------------------------------------------------------------------------------


def test_coerce_types_and_errors():
    assert coerce(Variable("m", "number"), "2048") == 2048
    assert coerce(Variable("b", "bool"), "yes") is True
    assert coerce(Variable("l", "list(string)"), "a, b") == ["a", "b"]
    assert coerce(Variable("l", "list(string)"), '["a b"]') == ["a b"]
    layout = coerce(Variable("d", "list(object({mount=string}))"), '[{"mount": "/"}]')
    assert layout == [{"mount": "/"}]
    with pytest.raises(UsageError, match="variable m: 'x' is not a number"):
        coerce(Variable("m", "number"), "x")
    with pytest.raises(UsageError, match="is not a bool"):
        coerce(Variable("b", "bool"), "2")
    with pytest.raises(UsageError, match="is not JSON"):
        coerce(Variable("d", "list(object({mount=string}))"), "{oops")
    with pytest.raises(UsageError, match="is not one of raw, qcow2"):
        coerce(Variable("f", choices=["raw", "qcow2"]), "vdi")


def test_parse_var_args_did_you_mean_and_password_hint():
    variables = {"hostname": Variable("hostname"), "memory": Variable("memory", "number")}
    assert parse_var_args(["memory=1", "hostname=a=b"], variables) == {
        "memory": 1,
        "hostname": "a=b",
    }
    with pytest.raises(UsageError, match="did you mean 'memory'"):
        parse_var_args(["memroy=1"], variables)
    with pytest.raises(UsageError, match="use --root-password"):
        parse_var_args(["root_password=x"], variables)


# --- HCL text -----------------------------------------------------------------------------


NULL_BUILD = (
    'source "null" "n" {\n  communicator = "none"\n}\n\nbuild {\n  sources = ["source.null.n"]\n}\n'
)
TRICKY = ["${var.s}", "$${x", 'say "hi" \\ %{ if', "{{ .HTTPIP }}", "a$$b", "100%"]


def test_tricky_literals_mean_the_same_to_packer(tmp_path):
    if not PACKER:
        pytest.skip("packer is not installed")
    decls = "".join(f'variable "s{i}" {{\n  type = string\n}}\n\n' for i in range(len(TRICKY)))
    (tmp_path / "t.pkr.hcl").write_text(
        decls + 'source "null" "n" {\n  communicator = "none"\n}\n\n'
        'build {\n  sources = ["source.null.n"]\n}\n'
    )
    lines = "".join(f"s{i} = {hcl_emit.literal(v)}\n" for i, v in enumerate(TRICKY))
    (tmp_path / "t.auto.pkrvars.hcl").write_text(hcl_fmt.fmt(lines))
    r = subprocess.run(
        [PACKER, "inspect", "."], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stderr
    for i, v in enumerate(TRICKY):
        assert f"var.s{i}: {json.dumps(v)}" in r.stdout
    # the same values as defaults, converted to HCL JSON syntax
    jdir = tmp_path / "json"
    jdir.mkdir()
    hcl_text = (
        "".join(
            f'variable "s{i}" {{\n  type = string\n  default = {hcl_emit.literal(v)}\n}}\n\n'
            for i, v in enumerate(TRICKY)
        )
        + NULL_BUILD
    )
    (jdir / "t.pkr.json").write_text(hcl.to_json(hcl_fmt.fmt(hcl_text)))
    r = subprocess.run(
        [PACKER, "inspect", "."], cwd=jdir, capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stderr
    for i, v in enumerate(TRICKY):
        assert f"var.s{i}: {json.dumps(v)}" in r.stdout


def test_literal_escapes_interpolation_unless_asked():
    assert hcl_emit.literal("a${b}%{c}") == '"a\\u0024{b}\\u0025{c}"'
    assert hcl_emit.literal("<wait${var.w}>", template=True) == '"<wait${var.w}>"'
    assert hcl_emit.literal([True, 1, "x"]) == '[true, 1, "x"]'
    assert hcl_emit.literal({"mount": "/", "a b": 1}) == '{ mount = "/", "a b" = 1 }'
    assert hcl.type_expr("list(object({a=string,b = number}))") == (
        "list(object({ a = string, b = number }))"
    )


SAMPLE = """\
source "qemu" "x" {
  a = 1
  longer_name = "v"
  # a comment ends the run
  b = [
    "one",
  ]
  cc = true
  d = "x = y"
}
"""


def test_fmt_aligns_like_packer_fmt(tmp_path):
    out = hcl_fmt.fmt(SAMPLE)
    assert '  a           = 1\n  longer_name = "v"\n' in out
    assert "  b = [\n" in out
    assert '  cc = true\n  d  = "x = y"\n' in out
    if PACKER:
        (tmp_path / "t.pkr.hcl").write_text(out)
        r = subprocess.run(
            [PACKER, "fmt", "-check", "-diff", "."],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert r.returncode == 0, r.stdout


def test_to_json_converts_blocks_labels_and_expressions():
    text = hcl_fmt.fmt(
        'variable "v" {\n  type = list(string)\n  default = ["a$${x}"]\n}\n'
        'source "qemu" "n" {\n  memory = var.m\n  name = "${var.v}-x"\n}\n'
        'build {\n  sources = ["source.qemu.n"]\n'
        '  post-processor "manifest" {\n  }\n'
        '  post-processor "checksum" {\n    checksum_types = ["sha256"]\n  }\n}\n'
    )
    doc = json.loads(hcl.to_json(text))
    assert doc["variable"]["v"] == {"type": "list(string)", "default": ["a$${x}"]}
    assert doc["source"]["qemu"]["n"] == {"memory": "${var.m}", "name": "${var.v}-x"}
    assert doc["build"]["post-processor"] == [
        {"manifest": {}},
        {"checksum": {"checksum_types": ["sha256"]}},
    ]


# --- regeneration -------------------------------------------------------------------------


def _unquote(value):
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {k: _unquote(v) for k, v in value.items()}
    return value


def _project(tmp_path) -> tuple[Path, dict]:
    """A fresh project and its variables as `packwrap build` would evaluate them."""
    target = tmp_path / "p"
    assert main(["new", "openbsd-76", str(target), "--no-root-password"]) == 0
    try:
        from packwrap.template import load_template

        return target, dict(load_template(target).variables)
    except ImportError:
        text = (target / "openbsd-76.auto.pkrvars.hcl").read_text()
        return target, _unquote(hcl2.loads(text))


def test_regenerate_rewrites_unmodified_files_when_variables_change(tmp_path):
    target, values = _project(tmp_path)
    conf = target / "http" / "install.conf.pkr.in"
    ui = RecordingUi()
    assert regenerate(target, values, ui) == []  # nothing changed
    assert ui.events == []
    assert regenerate(target, {**values, "hostname": "db7"}, ui) == ["http/install.conf.pkr.in"]
    assert "db7" in conf.read_text()
    assert any(
        "Regenerated http/install.conf.pkr.in" in m and "hostname" in m for _, m in ui.events
    )
    # recorded: the same values again change nothing
    ui.events.clear()
    assert regenerate(target, {**values, "hostname": "db7"}, ui) == []
    assert ui.events == []
    assert plan(target, {**values, "hostname": "db7"}).served() == {}


def test_plan_renders_in_memory_and_writes_nothing(tmp_path):
    target, values = _project(tmp_path)
    conf = target / "http" / "install.conf.pkr.in"
    before = conf.read_text()
    gen = plan(target, {**values, "hostname": "db7"})
    assert gen.changed == ["hostname"]
    assert {f.path: f.status for f in gen.files if f.status != "current"} == {
        "http/install.conf.pkr.in": STALE
    }
    assert "System hostname = db7" in gen.served_text("http/install.conf.pkr.in")
    assert gen.served_text("http/disklabel") is None  # current: served from disk
    assert "hostname" in gen.notes()[0] and "packwrap regenerate" in gen.notes()[0]
    assert conf.read_text() == before


def test_regenerate_keeps_hand_edited_files_and_warns_unless_forced(tmp_path):
    target, values = _project(tmp_path)
    conf = target / "http" / "install.conf.pkr.in"
    conf.write_text(conf.read_text() + "# my change\n")
    ui = RecordingUi()
    assert plan(target, values).warnings() == []  # edited, variables unchanged: nothing to say
    gen = plan(target, {**values, "hostname": "db7"})
    assert [f.status for f in gen.files if f.path == "http/install.conf.pkr.in"] == [EDITED]
    assert "edited by hand" in gen.warnings()[0] and "--force" in gen.warnings()[0]
    assert regenerate(target, {**values, "hostname": "db7"}, ui) == []
    assert "# my change" in conf.read_text() and "db7" not in conf.read_text()
    assert any(kind == "error" and "edited by hand" in m for kind, m in ui.events)
    forced = regenerate(target, {**values, "hostname": "db7"}, ui, force=True)
    assert forced == ["http/install.conf.pkr.in"]
    assert "# my change" not in conf.read_text() and "db7" in conf.read_text()
    assert plan(target, {**values, "hostname": "db7"}).files[0].status == "current"


def test_regenerate_restores_a_deleted_file_and_refuses_non_projects(tmp_path):
    target, values = _project(tmp_path)
    (target / "http" / "disklabel").unlink()
    assert plan(target, values).served()["http/disklabel"].status == MISSING
    assert regenerate(target, values, RecordingUi()) == ["http/disklabel"]
    assert (target / "http" / "disklabel").read_text().startswith("/ ")
    assert plan(tmp_path / "elsewhere", values) is None
    with pytest.raises(PackwrapError, match="not a blueprint project"):
        regenerate(tmp_path / "elsewhere", values, RecordingUi())


def test_regenerate_reads_a_relative_key_file_from_the_project_dir(tmp_path, monkeypatch):
    target, values = _project(tmp_path)
    (target / "root.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRelative x\n")
    monkeypatch.chdir(tmp_path)  # not the project dir
    changed = {**values, "ssh_public_key_file": "root.pub"}
    assert regenerate(target, changed, RecordingUi()) == ["http/install.conf.pkr.in"]
    assert "AAAAIRelative" in (target / "http" / "install.conf.pkr.in").read_text()


def test_empty_disklabel_layout_writes_no_template_until_one_is_given(tmp_path):
    target = tmp_path / "p"
    assert (
        main(
            ["new", "openbsd-76", str(target), "--no-root-password", "--var", "disklabel_layout=[]"]
        )
        == 0
    )
    assert not (target / "http" / "disklabel").exists()
    assert "disklabel" not in (target / "http" / "install.conf.pkr.in").read_text()
    try:
        from packwrap.template import load_template

        values = dict(load_template(target).variables)
    except ImportError:
        values = _unquote(hcl2.loads((target / "openbsd-76.auto.pkrvars.hcl").read_text()))
    layout = [{"mount": "/", "size": "*", "percent": 100}]
    written = regenerate(target, {**values, "disklabel_layout": layout}, RecordingUi())
    assert sorted(written) == ["http/disklabel", "http/install.conf.pkr.in"]
    assert (target / "http" / "disklabel").read_text().startswith("/ *")


# Printable text without line breaks or control characters: what a variable value is.
_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40)


@settings(max_examples=60, deadline=None)
@given(value=_TEXT, items=st.lists(_TEXT, max_size=3))
@example(value="${var.s}", items=["%{ if true }x%{ endif }", "{{ .HTTPIP }}"])
@example(value='say "hi" \\ $${', items=["ü ✓", "a,b"])
def test_literals_read_back_through_the_template_model(tmp_path_factory, value, items):
    """Whatever a value holds (quotes, backslashes, ${, %{, unicode), the pkrvars line
    packwrap writes evaluates back to exactly that value in packwrap's template model."""
    template = pytest.importorskip("packwrap.template")
    d = tmp_path_factory.mktemp("lit")
    (d / "t.pkr.hcl").write_text(
        'variable "s" {\n  type = string\n}\n\nvariable "l" {\n  type = list(string)\n}\n\n'
        'source "null" "n" {\n  communicator = "none"\n}\n\n'
        'build {\n  sources = ["source.null.n"]\n}\n'
    )
    text = hcl_fmt.fmt(f"s = {hcl_emit.literal(value)}\nl = {hcl_emit.literal(items)}\n")
    (d / "t.auto.pkrvars.hcl").write_text(text)
    got = template.load_template(d).variables
    assert got["s"] == value
    assert got["l"] == items
