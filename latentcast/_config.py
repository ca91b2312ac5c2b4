"""Where the client finds the server and its key when the caller names neither.

The defaults match a `latentcast serve` started with no settings in the current folder: it listens on
127.0.0.1:8000 and writes its first admin key to `latentcast-data/admin.key` (LATENTCAST_DATA_DIR moves that
folder, for the server and for this lookup alike).
"""

import os
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_DATA_DIR = "latentcast-data"


def default_url() -> str:
    return os.environ.get("LATENTCAST_URL") or DEFAULT_URL


def default_key() -> str | None:
    """LATENTCAST_KEY, else the admin key file of a server run from this folder, else None (no Authorization)."""
    key = os.environ.get("LATENTCAST_KEY")
    if key:
        return key
    path = Path(os.environ.get("LATENTCAST_DATA_DIR") or DEFAULT_DATA_DIR) / "admin.key"
    try:
        return path.read_text().strip() or None
    except OSError:  # absent or unreadable: the server will say 401 if it wants a key
        return None
