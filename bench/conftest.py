"""Lets ``pytest bench/`` benchmark this checkout even when cupyflash is not
pip-installed (pytest puts bench/, not the repository root, on sys.path)."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
