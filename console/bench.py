"""`hmc-broker console-bench`: how fast the console's Messages page answers on a large store.

Seeds an empty store as `hmc-broker messages bench` does (replay/bench.py: a year of synthetic traffic, by
COPY on PostgreSQL), serves the console with uvicorn on 127.0.0.1, logs in as a browser would and times
whole HTTP requests of the Messages page (the search, the page rendered, the bytes received) for the
filters operators use, following the next-page cursor for some. It reports per filter and over all
requests the median and the 95th percentile; Flow and Failures are timed too. A benchmark, not a test: the
figures depend on the machine.
"""

from __future__ import annotations

import html
import re
import secrets
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from rich.console import Console as Rich
from rich.table import Table

from broker.config import Settings
from broker.store import Session, sessionmaker
from broker.store import accounts as account_rows
from console import accounts
from console.app import create_app
from console.cli import build, in_thread
from replay.bench import RARE_ERROR, Probe, seeded

TARGET_MS = 300.0  # the bar for the Messages page, p95
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_NEXT = re.compile(r'href="/messages\?([^"]*after=[^"]+)" id="next"')


def _cases(probe: Probe) -> list[tuple[str, dict[str, str], int]]:
    """(what, the page's query, pages to follow) for the filters operators use."""
    week = (datetime.now(UTC) - timedelta(days=7)).isoformat(timespec="seconds")
    month = datetime.now(UTC) - timedelta(days=30)
    return [
        ("newest, no filter", {}, 1),
        ("status parked", {"status": "parked"}, 1),
        ("status rejected, 5 pages", {"status": "rejected"}, 5),
        ("customer + last 7 days", {"customer": probe.customer, "since": week}, 1),
        (
            "type + status + 30..20 days ago",
            {
                "type": "CustomerOrder",
                "status": "delivered",
                "since": month.isoformat(timespec="seconds"),
                "until": (month + timedelta(days=10)).isoformat(timespec="seconds"),
            },
            1,
        ),
        ("correlation id", {"correlation_id": probe.correlation_id}, 1),
        ("order reference", {"order": probe.order}, 1),
        ("message id", {"message_id": probe.message_id}, 1),
        ("error text 'Luhn'", {"error": "Luhn"}, 1),
        (f"error text, rare ({RARE_ERROR})", {"error": RARE_ERROR}, 1),
        (
            "error + customer + rejected,parked",
            {"error": "not configured", "customer": probe.customer, "status": "rejected,parked"},
            1,
        ),
    ]


# The Failures page on the seeded store's unresolved failures (4.5 % of its messages, in some 6,700 groups
# of status, rule, type and customer): each way of grouping, a later page, and the API.
_FAILURE_PAGES = (
    ("Failures (by rule, type, customer)", "/failures"),
    ("Failures (by rule alone)", "/failures?by=rule"),
    ("Failures (by rule and customer)", "/failures?by=customer"),
    ("Failures (groups 101-200)", "/failures?offset=100"),
    ("Failures API (by rule, type, customer)", "/api/v1/failures"),
)
_GROUP = re.compile(r'<form method="post" action="/failures" class="group">(.*?)</form>', re.DOTALL)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def _group_dry_run(browser: Browser, csrf: str, repeat: int) -> dict[str, Any]:
    """The dry run of replaying the largest group split by rule and customer, as its button posts it."""
    page = browser.request("GET", "/failures?by=customer").text
    found = _GROUP.search(page)
    if found is None:
        raise RuntimeError("no failure group on the Failures page")
    form = {k: html.unescape(v) for k, v in _HIDDEN.findall(found.group(1)) if k != "csrf"}
    form |= {"csrf": csrf, "reason": "benchmark", "action": "preview"}
    timings = [_timed(browser.request, "POST", "/failures", data=form)[0] for _ in range(repeat)]
    what = f"Failures: dry run of the largest group by rule and customer ({form['rule']})"
    return {"page": what, **_figures(timings)}


def _bench_account(sessions: sessionmaker[Session]) -> tuple[str, str]:
    """An account of this run (privacy: the patient search is timed; operator: a group's dry run); its name
    and password."""
    name, password = f"bench-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    with sessions() as session:
        if account_rows.get(session, name) is None:
            accounts.add_person(session, name, password, [accounts.PRIVACY, accounts.OPERATOR])
            session.commit()
    return name, password


class Browser:
    """An HTTP client that keeps the session cookie by hand: the cookie is Secure, and httpx (rightly) keeps
    Secure cookies off plain HTTP, which a browser allows on 127.0.0.1."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, follow_redirects=False, timeout=60)
        self.cookie = ""

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        answer = self.http.request(method, path, headers={**(headers or {}), "cookie": self.cookie}, **kwargs)
        if "set-cookie" in answer.headers:
            self.cookie = answer.headers["set-cookie"].split(";", 1)[0]
        if answer.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
        return answer

    def log_in(self, name: str, password: str) -> str:
        token = _csrf(self.request("GET", "/login").text)
        self.request("POST", "/login", data={"name": name, "password": password, "csrf": token})
        return _csrf(self.request("GET", "/flow").text)


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    if not found:
        raise RuntimeError("no CSRF token on the page")
    return found.group(1)


def _timed(call: Callable[..., httpx.Response], *args: Any, **kwargs: Any) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    answer = call(*args, **kwargs)
    return (time.perf_counter() - started) * 1000, answer


def run(settings: Settings, sessions: sessionmaker[Session], *, rows: int, repeat: int, reuse: bool) -> dict[str, Any]:
    out = Rich()
    probe, dialect = seeded(sessions, rows=rows, reuse=reuse, console=out)
    name, password = _bench_account(sessions)
    app = create_app(build(settings, sessions), secrets.token_urlsafe(32))
    results: list[dict[str, Any]] = []
    every: list[float] = []
    with in_thread(app) as url:
        browser = Browser(url)
        csrf = browser.log_in(name, password)
        cases = [(what, query, pages, "GET") for what, query, pages in _cases(probe)]
        cases.append(("patient (a POST, audited)", {"patient": probe.patient, "reason": "benchmark"}, 1, "POST"))
        for what, query, pages, method in cases:
            timings: list[float] = []
            for _ in range(repeat):
                page_query = dict(query)
                for _page in range(pages):
                    if method == "POST":
                        ms, answer = _timed(browser.request, "POST", "/messages", data={**page_query, "csrf": csrf})
                    else:
                        ms, answer = _timed(browser.request, "GET", "/messages", params=page_query)
                    timings.append(ms)
                    following = _NEXT.search(answer.text)
                    if following is None:
                        break
                    page_query = dict(httpx.QueryParams(following.group(1).replace("&amp;", "&")))
            every += timings
            results.append({"page": f"Messages: {what}", **_figures(timings)})
        for label, path in (
            ("Flow (day)", "/flow?window=day"),
            ("Flow (week)", "/flow?window=week"),
            *_FAILURE_PAGES,
        ):
            timings = [_timed(browser.request, "GET", path)[0] for _ in range(max(3, repeat // 4))]
            results.append({"page": label, **_figures(timings)})
        results.append(_group_dry_run(browser, csrf, max(3, repeat // 4)))
    overall = _figures(every)
    table = Table(
        title=f"console pages on {dialect}, {rows:,} messages: whole HTTP requests, {repeat} runs each",
        header_style="bold",
    )
    for column in ("page", "requests", "median ms", "p95 ms", "slowest ms"):
        table.add_column(column, justify="left" if column == "page" else "right")
    for r in results:
        table.add_row(
            r["page"], str(r["requests"]), f"{r['median_ms']:.1f}", f"{r['p95_ms']:.1f}", f"{r['max_ms']:.1f}"
        )
    out.print(table)
    verdict = "within" if overall["p95_ms"] < TARGET_MS else "OVER"
    out.print(
        f"Messages page, all {overall['requests']} requests: median {overall['median_ms']:.1f} ms, "
        f"p95 {overall['p95_ms']:.1f} ms ({verdict} the {TARGET_MS:.0f} ms target)"
    )
    return {"dialect": dialect, "rows": rows, "pages": results, "messages_overall": overall}


def _figures(timings: list[float]) -> dict[str, Any]:
    ordered = sorted(timings)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"requests": len(ordered), "median_ms": statistics.median(ordered), "p95_ms": p95, "max_ms": ordered[-1]}
