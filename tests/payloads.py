"""Where the real Graph payloads are: ``shared/graph-payloads`` beside the repository
(as on the developers' machines and in CI), or ``$GRAPH_PAYLOADS``."""

import os
from pathlib import Path

PAYLOADS = Path(os.environ.get("GRAPH_PAYLOADS") or Path(__file__).resolve().parents[2] / "shared" / "graph-payloads")
