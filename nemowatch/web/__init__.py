"""The daemon's web page and JSON API (docs/http.md), served inside the daemon.

    server (WebPage: a companion that serves, for the daemon's life)
      -> app (the routes) -> guard (who may see, who may change)
                          -> data (what the daemon shows) -> page (its HTML), pictures

Starlette and uvicorn run on the daemon's own asyncio loop, in its process: the page
reads the same ledger and pauses as the daemon, and needs no second process to keep.
"""

from nemowatch.web.server import WebPage

__all__ = ["WebPage"]
