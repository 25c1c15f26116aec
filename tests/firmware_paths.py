"""Where the firmware under test lives (shared by the fidelity-gate tests)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The firmware the gate checks.
FIRMWARE_DIR = REPO / "firmware"
# A small known-good firmware the gate's own tests use as a baseline.
SAMPLE_FIRMWARE_DIR = REPO / "tests" / "mpvm_sample" / "firmware"


def firmware_files(root: Path = FIRMWARE_DIR) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
