"""Where the firmware tree and board files are (the repository checkout)."""
from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    env = os.environ.get("MYOTONE_ROOT")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2]


def firmware_dir() -> Path:
    return repo_root() / "firmware"


def boards_dir() -> Path:
    return repo_root() / "boards"
