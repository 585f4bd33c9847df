"""Response files for OpenBSD's installer (autoinstall(8)), done right.

- release.py    per-release question lists (blueprints/openbsd/releases/*.toml)
- variables.py  every answer as a typed blueprint variable (installer-variables.toml)
- render.py     install.conf from those variables; disklabel.py: -T templates
- passwords.py  bcrypt hashes the installer keeps as-is
- matching.py   install.sub's line format and key-matching rule
- simulate.py   the installer's question flow, fed a response file
- checks.py     which answers each question takes; lint.py: `packwrap lint`
- siteset.py    siteNN.tgz + index.txt from a project's site/ directory
"""
