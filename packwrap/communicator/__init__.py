"""Talking to the guest after the install: SSH (paramiko), or none."""
