"""Where things live on disk. The recorded data is read in place, never copied into the repo."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROFILES_DIR = REPO / "config" / "profiles"


def data_dir() -> Path:
    """The shared recorded market data: $ARBITRAGE_DATA, else ../shared/data beside the repo."""
    return Path(os.environ.get("ARBITRAGE_DATA", REPO.parent / "shared" / "data")).resolve()
