"""Myotone host toolkit: link, emulator, command line."""
