"""The garbage collector of a long-running server process.

Python's full (oldest-generation) collection walks every tracked object. Once a Telerad process has loaded
Flask, SQLAlchemy, SpiffWorkflow, the diagrams and the form schemas, that is about 140,000 objects, and each
full collection stopped every request thread for 150-175 ms (measured with gc.callbacks on the HTTP
benchmark's calls; one every few hundred requests, which was the p99 of the calls in flight). Objects that
live as long as the process are therefore moved out of the collector's sight once the app is built.
"""

from __future__ import annotations

import gc


def settle_startup_objects() -> None:
    """Collect once, then freeze what is left (modules, app, specs): later collections skip it."""
    gc.collect()
    gc.freeze()
