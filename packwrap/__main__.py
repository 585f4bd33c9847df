from packwrap.cli import entry

entry()
