"""Blueprints: find, layer and render them into a Packer project (`packwrap new`).

registry.py   search path, `extends`, `openbsd-76` -> openbsd at release 7.6
model.py      blueprint.toml + project/ as data; layering of a chain
values.py     --var parsing, types, per-instance defaults
render.py     Jinja2 rendering of project/ (HCL aligned like `packer fmt`, or HCL JSON)
hcl.py        HCL literals, alignment, HCL -> JSON
project.py    all-or-nothing writing, .packwrap/project.json
new.py        the `new` flow: plan (all checks) -> password -> render -> write
record.py     .packwrap/project.json (the one reader) and the release of a project
regenerate.py generated docroot files vs the variables: plan() (read only), regenerate()
lint_context.py the response file `lint` and `validate` check, rendered in memory
installer.py  the one door into packwrap.autoinstall
"""
