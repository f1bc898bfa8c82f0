"""nemowatch: folders in, finished videos out.

The flow: cli -> config -> daemon -> watch -> intake -> ledger -> pipeline -> engine -> outbox.
"""

__version__ = "0.2.0"
