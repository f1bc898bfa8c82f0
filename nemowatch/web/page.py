"""The page's HTML, written on the server: no template engine, no build step, no CDN.

Every value from outside (file names, errors, rule names) goes through `escape`. The
live part (`live`) is fetched again every second by static/page.js and swapped in when it
changed; without JavaScript the page still works, reloaded by hand, and its forms post.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from nemowatch.ledger import FINISHED, JobRecord, JobState
from nemowatch.web.data import Overview
from nemowatch.web.guard import CSRF_FIELD

TITLE = "nemowatch"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def document(title: str, body: str, *, refresh: bool = False, reload: int | None = None) -> str:
    """A whole page around `body`. `refresh`: the live part updates itself; `reload`: the
    whole page is loaded again every so many seconds (a job's page while it runs)."""
    script = '<script src="/static/page.js" defer></script>' if refresh else ""
    if reload is not None:
        script += f'<meta http-equiv="refresh" content="{reload}">'
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        '<link rel=stylesheet href="/static/page.css">'
        f"{script}</head><body>"
        f'<header><a href="/" class=brand>{TITLE}</a></header>'
        f"{body}</body></html>"
    )


def button(action: str, label: str, csrf: str, *, fields: dict[str, str] | None = None) -> str:
    """A form of one button that POSTs `action` (an action of /actions/)."""
    hidden = "".join(
        f"<input type=hidden name={_e(name)} value={_e(value)}>"
        for name, value in {CSRF_FIELD: csrf, **(fields or {})}.items()
    )
    return (
        f'<form method=post action="{_e(action)}" class=inline>{hidden}'
        f"<button type=submit>{_e(label)}</button></form>"
    )


def home(overview: Overview, csrf: str) -> str:
    body = f'<main id=live data-src="/live">{live(overview, csrf)}</main>'
    return document(TITLE, body, refresh=True)


def live(overview: Overview, csrf: str) -> str:
    """The part of the home page that changes."""
    parts = [f"<p class=status>{_e(overview.status_line)}</p>"]
    if overview.paused:
        parts.append(
            "<p class=paused>Paused: no new job starts. "
            f"{button('/actions/resume', 'Resume all', csrf)}</p>"
        )
    else:
        parts.append(f"<p>{button('/actions/pause', 'Pause all', csrf)}</p>")
    if overview.credits is not None:
        credits = overview.credits
        total = f" of {credits.total:g}" if credits.total is not None else ""
        parts.append(
            f"<p class=credits>NemoVideo credits: <b>{credits.available:g}</b>{total}"
            f" (frozen {credits.frozen:g})</p>"
        )
    parts.append(_inboxes(overview, csrf))
    if overview.nodes:
        parts.append(_nodes(overview))
    parts.append(_running(overview))
    parts.append(_recent(overview, csrf))
    return "".join(parts)


def _inboxes(overview: Overview, csrf: str) -> str:
    rows = []
    for inbox in overview.inboxes:
        if inbox.rule_paused:
            action = button("/actions/resume", "Resume", csrf, fields={"rule": inbox.rule})
        else:
            action = button("/actions/pause", "Pause", csrf, fields={"rule": inbox.rule})
        state = f"<span class=paused>{_e(inbox.paused)}</span>" if inbox.paused else "watching"
        rows.append(
            f"<tr><td data-label=Rule>{_e(inbox.rule)}</td>"
            f"<td data-label=Inbox class=path>{_e(inbox.inbox)}</td>"
            f"<td data-label=Engine>{_e(inbox.engine)}</td>"
            f"<td data-label=State>{state}</td>"
            f"<td data-label=Waiting class=num>{inbox.waiting}</td><td>{action}</td></tr>"
        )
    return (
        "<section><h2>Inboxes</h2><table class=inboxes><thead><tr><th>Rule</th><th>Inbox</th>"
        "<th>Engine</th><th>State</th><th>Waiting</th><th></th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _nodes(overview: Overview) -> str:
    """A fleet's daemons (docs/fleet.md): which are alive, and their unfinished jobs."""
    rows = []
    for node in overview.nodes:
        shown = node.as_json(overview.lease)
        state = shown["state"]
        if state != "alive":
            state = f"<span class=paused>{state}</span>, {round(node.age)} s ago"
        rows.append(
            f"<tr><td data-label=Node>{_e(node.name)}</td><td data-label=Host>{_e(node.host)}"
            f"</td><td data-label=State>{state}</td>"
            f"<td data-label=Jobs class=num>{len(node.jobs)}</td></tr>"
        )
    return (
        "<section id=nodes><h2>Nodes</h2><table class=inboxes><thead><tr><th>Node</th>"
        "<th>Host</th><th>State</th><th>Jobs</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _node(record: JobRecord, overview: Overview) -> str:
    return f" <span class=node>@{_e(record.node)}</span>" if overview.nodes and record.node else ""


def progress(record: JobRecord) -> str:
    stage = record.stage or record.state.value
    if record.percent is None:
        return f"<span class=stage>{_e(stage)}</span> <progress></progress>"
    percent = int(record.percent)  # floored: 100 % only when it is done
    return (
        f"<span class=stage>{_e(stage)}</span> "
        f"<progress max=100 value={percent}></progress> <span class=percent>{percent} %</span>"
    )


def _job_link(record: JobRecord) -> str:
    return f'<a href="/jobs/{_e(record.id)}">{_e(record.source.name)}</a>'


def _running(overview: Overview) -> str:
    items = [
        f"<li class=job data-job={_e(record.id)}>{_job_link(record)} "
        f"<span class=rule>{_e(record.rule)}</span>{_node(record, overview)} "
        f"{progress(record)}</li>"
        for record in overview.running
    ]
    items += [
        f"<li class=job data-job={_e(record.id)}>{_job_link(record)} "
        f"<span class=rule>{_e(record.rule)}</span> <span class=stage>queued</span></li>"
        for record in overview.queued
    ]
    listing = f"<ul class=jobs>{''.join(items)}</ul>" if items else "<p class=none>none</p>"
    return f"<section id=running><h2>Running</h2>{listing}</section>"


def outcome(record: JobRecord, hint: str | None) -> str:
    """What became of a finished job: its outputs, or its error and what to do."""
    if record.state is JobState.DONE:
        outputs = [path for path in record.published.values() if path] or (
            [str(record.output)] if record.output else []
        )
        text = ", ".join(_e(output) for output in outputs)
        if record.warnings:
            text += f" <span class=warn>({len(record.warnings)} warning(s))</span>"
        return text
    text = f"<span class=error>{_e(record.error or '')}</span>"
    if hint and hint not in (record.error or ""):  # most errors end with their hint
        text += f"<br><span class=hint>{_e(hint)}</span>"
    return text


def _recent(overview: Overview, csrf: str) -> str:
    items = []
    for record in overview.recent:
        action = ""
        if record.state is JobState.FAILED and record.retried_at is None:
            action = button(f"/actions/retry/{record.id}", "Retry", csrf)
        elif record.retried_at is not None:
            action = "<span class=note>retried</span>"
        items.append(
            f"<li class='job {_e(record.state.value)}' data-job={_e(record.id)}>"
            f"<span class=state>{_e(record.state.value)}</span> {_job_link(record)} "
            f"<span class=rule>{_e(record.rule)}</span>{_node(record, overview)} {action}"
            f"<div class=outcome>{outcome(record, overview.hints.get(record.id))}</div></li>"
        )
    listing = f"<ul class=jobs>{''.join(items)}</ul>" if items else "<p class=none>none yet</p>"
    return f"<section id=recent><h2>Recent</h2>{listing}</section>"


def job_page(
    record: JobRecord,
    history: list[tuple[str | None, str, float, str | None]],
    hint: str | None,
    csrf: str,
    *,
    picture: bool,
    thumbnails: bool,
) -> str:
    rows: list[tuple[str, str]] = [
        ("State", _e(record.state.value)),
        ("Rule", _e(record.rule)),
        ("Engine", _e(record.engine)),
        ("Source", f"<span class=path>{_e(record.source)}</span>"),
        ("Created", _e(_when(record.created_at))),
    ]
    if record.state in FINISHED:
        rows.append(("Outcome", outcome(record, hint)))
    else:
        rows.append(("Progress", progress(record)))
    if record.warnings:
        rows.append(("Warnings", "<br>".join(_e(warning) for warning in record.warnings)))
    if record.timings:
        rows.append(("Timings", ", ".join(f"{_e(k)} {v:.1f} s" for k, v in record.timings.items())))
    table = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    action = ""
    if record.state is JobState.FAILED and record.retried_at is None:
        action = button(f"/actions/retry/{record.id}", "Retry", csrf)
    pictures = ""
    if picture:
        pictures += (
            f'<figure><img class=timeline src="/jobs/{_e(record.id)}/timeline.svg" '
            'alt="the timeline of the edit"><figcaption>Timeline</figcaption></figure>'
        )
    if thumbnails:
        pictures += (
            f'<figure><img class=thumbs src="/jobs/{_e(record.id)}/thumbnails" '
            'alt="thumbnails of the output"><figcaption>Output</figcaption></figure>'
        )
    steps = "".join(
        f"<li>{_e(_when(at))}: {_e(before or '-')} &rarr; {_e(after)}"
        f"{' (' + _e(detail) + ')' if detail else ''}</li>"
        for before, after, at, detail in history
    )
    body = (
        f"<main><h1>{_e(record.source.name)}</h1><p class=id>job {_e(record.id)}</p>"
        f"<table class=details>{table}</table>{action}{pictures}"
        f"<section><h2>History</h2><ol class=history>{steps}</ol></section></main>"
    )
    finished = record.state in FINISHED
    return document(f"{record.source.name} - {TITLE}", body, reload=None if finished else 2)


def login_page(csrf: str, next_path: str, failed: bool) -> str:
    wrong = "<p class=error>That is not the token or the password.</p>" if failed else ""
    body = (
        f"<main class=login><h1>Log in</h1>{wrong}<form method=post action=/login>"
        f"<input type=hidden name={CSRF_FIELD} value={_e(csrf)}>"
        f"<input type=hidden name=next value={_e(next_path)}>"
        "<label>Token or password <input type=password name=secret autocomplete=current-password"
        " autofocus required></label> <button type=submit>Log in</button></form></main>"
    )
    return document(f"Log in - {TITLE}", body)


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def message_page(title: str, text: str) -> str:
    return document(title, f"<main><h1>{_e(title)}</h1><p>{_e(text)}</p></main>")
