"""Where the client finds the server and its key when the caller names neither.

The defaults match a `latentcast serve` started in the current folder with the same environment: it listens on
127.0.0.1, port LATENTCAST_PORT (8000 when unset), and writes its first admin key to `latentcast-data/admin.key`
(LATENTCAST_DATA_DIR moves that folder). LATENTCAST_URL and LATENTCAST_KEY, meant for the client alone, come first.
"""

import os
from pathlib import Path

DEFAULT_PORT = "8000"
DEFAULT_DATA_DIR = "latentcast-data"


def default_url() -> str:
    port = os.environ.get("LATENTCAST_PORT") or DEFAULT_PORT
    return os.environ.get("LATENTCAST_URL") or f"http://127.0.0.1:{port}"


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
