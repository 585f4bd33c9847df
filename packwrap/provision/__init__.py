"""Provisioners run in order inside the installed guest over the communicator."""
