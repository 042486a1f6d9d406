"""The customer fixtures' inbound messages and running them through the pipeline, for the prescriber
register's tests (tests/store/test_prescriber_register.py, test_register_pg.py)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from broker.config import Settings
from broker.contract.dialect import read
from broker.model import messages as m
from broker.pipeline import Pipeline
from broker.store.unit_of_work import UnitOfWork
from tests.support.deliveries import customer_delivery

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures/customer/valid"
ENV = {"HMC_CUSTOMERS": "1001:Region Skåne,1002:Region Halland,2040:Västerby kommun"}


def inbound() -> list[m.Message]:
    found = [read(p.read_bytes()).message for p in sorted(FIXTURES.glob("*.xml"))]
    return [x for x in found if x is not None and x.direction.value == "inbound"]


def run(sessions: sessionmaker[Session], env: dict[str, str], *messages: m.Message) -> None:
    with UnitOfWork(sessions) as uow:
        Pipeline(Settings.from_env(env)).handle([customer_delivery(x) for x in messages], uow)
        uow.commit()
