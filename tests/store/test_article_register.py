"""The live article register (#17): imported into the store, kept current by SESAM2's ArticleRegisterUpdate
in the transaction that routes it; an order for an article a committed update withdrew is refused from then
on, by every worker; validation reads the register's version once per batch, never per line. SQLite and
PostgreSQL; `hmc-broker catalog` on the embedded store."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event, select

from adapters.catalog_cli import register as register_catalog_cli
from adapters.catalog_file import DEMO_CATALOG, load_catalog
from broker.config import Customer, Settings
from broker.contract.dialect import DIALECTS, read
from broker.envelope import Delivery, Exchange
from broker.model import messages as m
from broker.model.codes import ArticleStatus, Side
from broker.pipeline import Pipeline
from broker.store import articles
from broker.store.tables import MessageRow, OutboxRow
from broker.store.unit_of_work import UnitOfWork
from tests.support.commands import run_command
from tests.support.fixtures import Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ORDER = (FIXTURES / "customer/valid/CustomerOrder-patient-urgent.xml").read_bytes()  # lines: 181210, ...
SETTINGS = Settings(customers=(Customer("1002", "Region Halland", "websesam-halland"),))
DEMO = load_catalog(DEMO_CATALOG).articles


def order(n: int) -> bytes:
    """The fixture's order as order n: its own message id and order id."""
    body = re.sub(rb"<MessageId>[^<]*</MessageId>", f"<MessageId>{uuid.uuid4()}</MessageId>".encode(), ORDER)
    return body.replace(b"WS-1002-2026-004817", f"WS-1002-2026-{n:06d}".encode())


def withdrawing(number: str) -> bytes:
    """SESAM2's ArticleRegisterUpdate that withdraws one article of the demo register."""
    base = read((FIXTURES / "sesam2/valid/ArticleRegisterUpdate-new-and-withdrawn.xml").read_bytes()).message
    assert isinstance(base, m.ArticleRegisterUpdate)
    header = dataclasses.replace(base.header, message_id=str(uuid.uuid4()))
    withdrawn = dataclasses.replace(DEMO[number], status=ArticleStatus.WITHDRAWN)
    return DIALECTS[Side.SESAM2].render(dataclasses.replace(base, header=header, articles=[withdrawn]))


def delivery(body: bytes) -> Delivery:
    message = read(body).message
    assert message is not None
    side = Side.CUSTOMER if message.direction.value == "inbound" else Side.SESAM2
    key = (
        f"{message.header.customer_number}.{type(message).__name__}"
        if side is Side.CUSTOMER
        else type(message).__name__
    )
    return Delivery(side=side, body=body, routing_key=key, message_id=message.header.message_id)


def run(store: Store, pipeline: Pipeline, *bodies: bytes, commit: bool = True) -> None:
    with UnitOfWork(store.sessions) as uow:
        pipeline.handle([delivery(b) for b in bodies], uow)
        if commit:
            uow.commit()


def imported(store: Store) -> None:
    with store.sessions() as session:
        articles.put(session, DEMO.values(), by="import demo-catalog.csv")
        session.commit()


def statuses(store: Store) -> list[tuple[str | None, str]]:
    with store.sessions() as session:
        return [(r.message_type, r.status) for r in session.scalars(select(MessageRow).order_by(MessageRow.id))]


def test_an_update_withdraws_an_article_for_every_worker_from_its_commit(store: Store) -> None:
    imported(store)
    worker, other = Pipeline(SETTINGS), Pipeline(SETTINGS)  # two workers, each with its cached register
    run(store, worker, order(1))
    run(store, other, order(2))
    run(store, worker, withdrawing("181210"), commit=False)  # rolled back: nothing changed
    run(store, other, order(3))
    run(store, worker, withdrawing("181210"))
    with store.sessions() as session:
        assert articles.version(session) == 2
        (broadcast,) = session.scalars(select(OutboxRow).where(OutboxRow.message_type == "ArticleRegisterUpdate"))
    assert broadcast.exchange == Exchange.CUSTOMER_OUT.value  # routed in the same transaction
    run(store, worker, order(4))
    run(store, other, order(5))
    assert statuses(store) == [
        ("CustomerOrder", "forwarded"),
        ("CustomerOrder", "forwarded"),
        ("CustomerOrder", "forwarded"),
        ("ArticleRegisterUpdate", "forwarded"),
        ("CustomerOrder", "rejected"),
        ("CustomerOrder", "rejected"),
    ]
    with store.sessions() as session:
        last = session.scalars(select(MessageRow).order_by(MessageRow.id.desc())).first()
    assert last is not None and "catalog.withdrawn-article" in (last.last_error or "")


def test_without_a_register_nothing_is_checked(store: Store) -> None:
    run(store, Pipeline(SETTINGS), order(1).replace(b"<ArticleNumber>181210<", b"<ArticleNumber>999999<"))
    assert statuses(store) == [("CustomerOrder", "forwarded")]


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = store.sessions.kw["bind"]

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_the_register_costs_one_read_per_batch_not_per_line(store: Store) -> None:
    imported(store)
    pipeline = Pipeline(SETTINGS)
    run(store, pipeline, order(0))  # the first batch loads the register
    with statements(store) as seen:
        run(store, pipeline, *(order(n) for n in range(1, 21)))  # 20 orders of 3 lines each
    assert sum("register_versions" in s for s in seen) == 1
    assert not any("FROM articles" in s for s in seen), "the cached register is not read again"


def cli(db_url: str, *args: str) -> str:
    return run_command(register_catalog_cli, db_url, *args)


def test_catalog_show_diff_and_import(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    assert json.loads(cli(db_url, "catalog", "show", "--json")) == {"version": 0, "articles": []}
    dry = json.loads(cli(db_url, "catalog", "import", str(DEMO_CATALOG), "--dry-run", "--json"))
    assert (dry["written"], len(dry["added"]), dry["version"]) == (0, len(DEMO), 0)
    done = json.loads(cli(db_url, "catalog", "import", str(DEMO_CATALOG), "--json"))
    assert (done["written"], done["version"]) == (len(DEMO), 1)
    changed = tmp_path / "export.csv"
    text = DEMO_CATALOG.read_text(encoding="utf-8")
    changed.write_text(re.sub(r"^(181210,.*),active,", r"\1,withdrawn,", text, flags=re.M), encoding="utf-8")
    found = json.loads(cli(db_url, "catalog", "diff", str(changed), "--json"))
    assert (found["changed"], found["withdrawn"], found["added"], found["missing"]) == (["181210"], ["181210"], [], [])
    cli(db_url, "catalog", "import", str(changed))
    shown = json.loads(cli(db_url, "catalog", "show", "--article", "181210", "--json"))
    assert shown["version"] == 2 and shown["articles"][0]["status"] == "withdrawn"


def test_an_update_before_any_import_changes_the_file_catalog(store: Store) -> None:
    pipeline = Pipeline(SETTINGS, load_catalog(DEMO_CATALOG))  # HMC_CATALOG, nothing imported
    run(store, pipeline, withdrawing("043306"))  # another article of the order than the one withdrawn below
    run(store, pipeline, order(1).replace(b"<ArticleNumber>043306<", b"<ArticleNumber>091218<"))
    run(store, pipeline, order(2))
    assert statuses(store) == [
        ("ArticleRegisterUpdate", "forwarded"),
        ("CustomerOrder", "forwarded"),  # the file's other articles are still known
        ("CustomerOrder", "rejected"),
    ]
