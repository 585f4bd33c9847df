"""Install media: download, verify (signify + SHA256 or Packer checksums), cache.

Modules, one concern each:
- fetch.py      the flow behind `packwrap fetch-iso` (FetchRequest -> FetchResult)
- download.py   streaming HTTP: validated Range resume, retries, mirrors, HTML detection
- hashing.py    hashing on a worker thread with a pool of reusable buffers
- signify.py    signify keys and embedded signatures (Ed25519 via `cryptography`)
- checksums.py  SHA256 lists (BSD/GNU formats) and Packer iso_checksum forms
- keys.py       where the signify key comes from (flag, /etc/signify, blueprint pin)
- cache.py      the XDG cache: verified media by SHA-256, partials, locks, signed lists
- progress.py   rich bar on a terminal, sparse lines otherwise, nothing with --quiet
- project.py    a project's release/arch/mirror/iso_file in, iso_url/iso_checksum out
- command.py    the command body (packwrap/commands/fetch_iso.py is the typer shell)
"""
