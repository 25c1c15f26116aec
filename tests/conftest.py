"""Make the in-tree ``host/`` package importable without installing it."""
import pathlib
import sys

_HOST = pathlib.Path(__file__).resolve().parent.parent / "host"
if str(_HOST) not in sys.path:
    sys.path.insert(0, str(_HOST))
