"""The console's pages: server-rendered HTML (templates in console/templates, autoescaped), no script.

A patient identifier never appears in a URL: the patient search and every reveal are POSTs, and what they
show is rendered in the response to that POST.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adapters.exports.files import Export
from console import accounts, charts, replays
from console import operations as ops
from console.accounts import Identity, LoginRefused
from console.app import Console, page
from console.security import csrf_ok


async def login_form(request: Request) -> Response:
    console: Console = request.app.state.console
    return console.render(request, "login.html")


async def login(request: Request) -> Response:
    console: Console = request.app.state.console
    form = dict(await request.form())
    if not csrf_ok(request, form):
        return console.render(request, "login.html", 403, error="the form's CSRF token is missing: reload the page")
    name, password = str(form.get("name") or "").strip(), str(form.get("password") or "")
    address = request.client.host if request.client else "?"
    if console.attempts.blocked(address):
        return console.render(request, "login.html", 429, error="too many failed logins from here: try again later")
    with console.sessions() as session:
        try:
            identity = accounts.login(session, name, password, console.dormant_after)
        except LoginRefused as e:
            console.attempts.failed(address)
            session.commit()  # the failure count and a dormant account's disabling
            if accounts.current(session, name) is not None or name:
                ops.record(session, Identity(name[:100] or "?", frozenset()), "login-refused", str(e), {})
            return console.render(request, "login.html", 401, error=str(e))
        session.commit()
        ops.record(session, identity, "login", "console login", {"roles": sorted(identity.roles)})
    request.session.clear()  # a new session (and CSRF token) at login: no fixation
    request.session["user"] = identity.name
    return RedirectResponse("/flow", status_code=303)


async def oidc_start(request: Request) -> Response:
    console: Console = request.app.state.console
    if console.sso is None:
        return console.render(request, "login.html", 404, error="single sign-on is not configured here")
    return await console.sso.start(request)


async def oidc_callback(request: Request) -> Response:
    console: Console = request.app.state.console
    if console.sso is None:
        return console.render(request, "login.html", 404, error="single sign-on is not configured here")
    return await console.sso.finish(request)


@page
async def logout(request: Request, console: Console, identity: Identity, form: dict[str, Any]) -> Response:
    with console.sessions() as session:
        ops.record(session, identity, "logout", "console logout", {})
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@page
async def flow(request: Request, console: Console, identity: Identity, form: dict[str, Any]) -> Response:
    window = request.query_params.get("window", "day")
    data = ops.flow(
        console.sessions, console.settings, identity, window, console.partners, console.workers, console.counts
    )
    by_type: dict[str, dict[str, int]] = {}
    for t in data["per_type"]:
        label = f"{'in' if t['direction'] == 'inbound' else 'out'} {t['message_type']}"
        by_type.setdefault(label, {})[t["status"]] = t["count"]
    fmt = "%H:%M" if window != "week" else "%a %d"
    labels = [datetime.fromisoformat(s["start"]).strftime(fmt) for s in data["per_slot"]]
    return console.render(
        request,
        "flow.html",
        user=identity,
        data=data,
        windows=list(ops.WINDOWS),
        per_slot_svg=charts.stacked_columns(labels, [s["counts"] for s in data["per_slot"]], "messages per slot"),
        per_type_svg=charts.stacked_bars(sorted(by_type.items()), "messages per type and status"),
        legend=charts.legend(data["statuses"]),
    )


@page
async def messages(request: Request, console: Console, identity: Identity, form: dict[str, Any]) -> Response:
    values = {k: str(v) for k, v in (form or request.query_params).items()}
    with console.sessions() as session:
        data = ops.list_messages(
            session,
            console.settings,
            identity,
            values,
            patient=values.get("patient") or None,
            reason=values.get("reason") or None,
            revealed=request.method == "POST" and values.get("reveal") == "1",
        )
    shown = {k: v for k, v in values.items() if k in ops.FILTER_FIELDS and v}
    return console.render(
        request,
        "messages.html",
        user=identity,
        data=data,
        values=shown,
        patient_search=request.method == "POST",
        can_search_patient=identity.may(accounts.PRIVACY),
        may_act=identity.may(accounts.OPERATOR),
    )


@page
async def messages_act(request: Request, console: Console, identity: Identity, form: dict[str, Any]) -> Response:
    """Replay (dry run first), resolve or export every message the Messages page's filter matches: the filter
    travels as hidden f.NAME fields, so that the dry run's form posts the same selection again."""
    chosen = {k[2:]: str(v) for k, v in form.items() if k.startswith("f.") and v}
    body = {**form, "filter": chosen}
    action = form.get("action")
    if action == "export":
        with console.sessions() as session:
            data = ops.export_messages(session, identity, body)
        return attachment(data, "messages.jsonl", "application/x-ndjson")
    if action == "resolve":
        with console.sessions() as session:
            result = ops.resolve(session, identity, body)
        return console.render(request, "resolved.html", user=identity, result=result)
    return _replay(request, console, identity, body, None, back="/messages")


@page
async def message(request: Request, console: Console, identity: Identity, form: dict[str, Any]) -> Response:
    pk = int(request.path_params["pk"])
    reason = str(form.get("reason") or "") if request.method == "POST" else None
    with console.sessions() as session:
        doc = ops.show_message(session, identity, pk, reveal_reason=reason)
    return console.render(
        request,
        "message.html",
        user=identity,
        doc=doc,
        may_replay=identity.may(accounts.OPERATOR),
        may_reveal=identity.may(accounts.PRIVACY),
        may_edit=identity.may(accounts.OPERATOR) and identity.may(accounts.PRIVACY),
    )


@page
async def replay_message(request: Request, console: Console, identity: Identity, form: dict[str, Any]) -> Response:
    pk = int(request.path_params["pk"])
    body = {**form, "ids": str(pk)}
    # A browser sends a textarea's lines ending in CRLF: back to what the stored payload uses.
    edited = str(form["payload"]).replace("\r\n", "\n").encode() if form.get("payload") else None
    return _replay(request, console, identity, body, edited, back=f"/messages/{pk}")


@page
async def edit_message(request: Request, console: Console, identity: Identity, form: dict[str, Any]) -> Response:
    """The payload in clear in an editor: needs operator and privacy, and a reason (audited as a reveal)."""
    pk = int(request.path_params["pk"])
    ops.need(identity, accounts.OPERATOR)
    with console.sessions() as session:
        doc = ops.show_message(session, identity, pk, reveal_reason=str(form.get("reason") or ""))
    return console.render(request, "edit.html", user=identity, doc=doc, reason=form.get("reason"))


@page
async def failures(request: Request, console: Console, identity: Identity, form: dict[str, Any]) -> Response:
    values = dict(request.query_params)
    with console.sessions() as session:
        page = ops.failure_groups(session, identity, values)
    return console.render(
        request,
        "failures.html",
        user=identity,
        page=page,
        by=",".join(page.by) or "rule",
        splits=[
            ("type,customer", "rule, type and customer"),
            ("type", "rule and type"),
            ("customer", "rule and customer"),
            ("rule", "rule alone"),
        ],
        may_act=identity.may(accounts.OPERATOR),
    )


@page
async def failures_act(request: Request, console: Console, identity: Identity, form: dict[str, Any]) -> Response:
    if form.get("action") == "resolve":
        with console.sessions() as session:
            result = ops.resolve(session, identity, form)
        return console.render(request, "resolved.html", user=identity, result=result)
    return _replay(request, console, identity, form, None, back="/failures")


def _replay(
    request: Request,
    console: Console,
    identity: Identity,
    body: dict[str, Any],
    edited: bytes | None,
    back: str,
) -> Response:
    """`action` preview: the dry run's outcomes and a form to go on; replay: start the job, show its page."""
    if body.get("action") == "replay":
        started = console.replays.start(identity, body, edited)
        return RedirectResponse(f"/jobs?started={started['job']}", status_code=303)
    preview = console.replays.preview(identity, body, edited)
    hidden = {k: str(v) for k, v in body.items() if k not in ("csrf", "action", "filter") and v is not None}
    return console.render(
        request, "preview.html", user=identity, preview=preview, hidden=hidden, back=back, action=request.url.path
    )


@page
async def jobs(request: Request, console: Console, identity: Identity, form: dict[str, Any]) -> Response:
    listing = replays.jobs(console.sessions, identity)
    running = any(j["status"] == "running" for j in listing)
    return console.render(
        request,
        "jobs.html",
        user=identity,
        jobs=listing,
        refresh=running,
        may_act=identity.may(accounts.OPERATOR),
    )


@page
async def resume_job(request: Request, console: Console, identity: Identity, form: dict[str, Any]) -> Response:
    console.replays.resume(identity, int(request.path_params["job"]), form)
    return RedirectResponse("/jobs", status_code=303)


@page
async def audit(request: Request, console: Console, identity: Identity, form: dict[str, Any]) -> Response:
    values = {k: str(v) for k, v in request.query_params.items()}
    with console.sessions() as session:
        data = ops.audit_trail(session, identity, values)
    shown = {k: v for k, v in values.items() if k in ("since", "until", "actor", "action") and v}
    return console.render(request, "audit.html", user=identity, data=data, values=shown)


@page
async def exports(request: Request, console: Console, identity: Identity, form: dict[str, Any]) -> Response:
    customers = [c for c in console.settings.customers if c.invoice and identity.exports_invoices_of(c.number)]
    return console.render(
        request,
        "exports.html",
        user=identity,
        invoice_customers=customers,
        customers=console.settings.customers,
        may_prescribers=identity.may(accounts.PRIVACY),
    )


@page
async def export_file(request: Request, console: Console, identity: Identity, form: dict[str, Any]) -> Response:
    make = ops.export_invoice if request.path_params["what"] == "invoice" else ops.export_prescribers
    with console.sessions() as session:
        made = make(session, console.settings, identity, form)
    return download(made)


def download(made: Export) -> Response:
    return attachment(made.data, made.name, ops.MEDIA_TYPES[made.name.rsplit(".", 1)[-1]])


def attachment(data: bytes, name: str, media_type: str) -> Response:
    """A file to save, never to show: names are ours (customer numbers, months), not a sender's."""
    return Response(data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})


ROUTES = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/login/oidc", oidc_start, methods=["GET"]),
    Route("/login/oidc/callback", oidc_callback, methods=["GET"], name="oidc_callback"),
    Route("/logout", logout, methods=["POST"]),
    Route("/flow", flow, methods=["GET"]),
    Route("/messages", messages, methods=["GET", "POST"]),
    Route("/messages/act", messages_act, methods=["POST"]),
    Route("/messages/{pk:int}", message, methods=["GET", "POST"]),
    Route("/messages/{pk:int}/replay", replay_message, methods=["POST"]),
    Route("/messages/{pk:int}/edit", edit_message, methods=["POST"]),
    Route("/failures", failures, methods=["GET"]),
    Route("/failures", failures_act, methods=["POST"]),
    Route("/jobs", jobs, methods=["GET"]),
    Route("/jobs/{job:int}/resume", resume_job, methods=["POST"]),
    Route("/audit", audit, methods=["GET"]),
    Route("/exports", exports, methods=["GET"]),
    Route("/exports/{what:str}", export_file, methods=["POST"]),
]
