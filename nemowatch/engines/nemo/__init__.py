"""The NemoVideo cloud engine (`engine: nemo`), one module per concern:

errors   answers and httpx failures -> the project's exception tree (the only place)
replies  each answer's published forms as pydantic models; UnexpectedReply otherwise
kept     what the engine keeps in the ledger (session, media, render), typed
auth     $NEMO_TOKEN, or an anonymous token kept 0600 in the state directory
client   httpx client, headers, renew-once, retry policies (data)
session  POST /api/tasks/me/with-session/nemo_agent
upload   local checks, then a streamed multipart upload
sse      /run_sse: pure frame decoder + event interpretation + a thin httpx adapter
speech   GUI-speak ("click Export") kept away from the user
edit     one instruction: stream -> EditEvents; never re-sent after delivery
state    the session's draft, ready-to-export, fingerprint (the edit checkpoint)
render   deterministic render ids, three poll shapes, download without the token
engine   NemoEngine: the Engine protocol over all of the above
"""

from nemowatch.imports import without_unused

with without_unused():  # httpx's first import here: without its command line's rich
    import httpx  # noqa: F401

from nemowatch.engines.nemo.engine import NemoEngine

__all__ = ["NemoEngine"]
