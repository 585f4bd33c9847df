"""Steps builders reuse: HTTP docroot server, boot command, site sets, output directory."""
