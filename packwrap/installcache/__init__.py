"""The install cache: an installed disk kept by the hash of everything that shaped it.

- key.py    the key: a canonical JSON document of the install's inputs, and its sha256
- store.py  entries under `<cache root>/installs/<key>/` (disk, meta.json, key.json),
            written to a temporary directory and renamed into place; LRU size limit
- copy.py   the sparse disk copy (and its checksum) that fills and uses entries

The core step that looks entries up and stores them is build/steps/install_cache.py; each
builder adds its own inputs (medium, disk, machine) to the key through the SDK.
"""
