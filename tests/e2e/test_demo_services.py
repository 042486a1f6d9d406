"""The same demo on the machine's RabbitMQ and PostgreSQL."""

from __future__ import annotations

from adapters.harness.demo import Demo, account_from_store, cleanup, demo_settings


def test_demo_runs_on_rabbitmq_and_postgresql(amqp_url: str, postgres_url: str) -> None:
    settings = demo_settings(amqp_url, postgres_url)
    assert settings.prefix.startswith("demo-"), "a demo on a real RabbitMQ keeps to its own names"
    demo = Demo(settings, count=30, seed=3)
    try:
        worker = demo.run()
    finally:
        cleanup(settings)
    lines = account_from_store(demo, worker)
    assert {line.message_type: line.stored for line in lines} == dict(demo.account.sent)
    assert len(demo.account.rejections) == 4
    delivered_answers = sum(line.delivered for line in lines if line.direction == "outbound")
    assert delivered_answers > 20
