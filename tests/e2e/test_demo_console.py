"""`hmc-broker demo --console`: the demo, then the console on its embedded store, with an account printed
for the run; a newcomer logs in and sees the flow and the demo's failures with no services at all."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx

from console.bench import Browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_console_serves_the_demo_store_to_the_printed_account() -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HMC_")}
    command = [sys.executable, "-c", "from broker.cli import main; main()", "demo", "--console",
               "--console-port", str(port), "--count", "12", "--seed", "5"]  # fmt: skip
    demo = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        account = None
        deadline = time.monotonic() + 120
        assert demo.stderr is not None
        while time.monotonic() < deadline:
            line = demo.stderr.readline()
            assert line or demo.poll() is None, "the demo ended before serving the console"
            account = account or re.search(r"log in as (\S+) with password (\S+)", line)
            if "console on http://" in line:
                break
        assert account is not None, "the demo printed no account"
        browser = Browser(f"http://127.0.0.1:{port}")
        for _ in range(50):  # uvicorn starts listening just after the line
            try:
                csrf = browser.log_in(account.group(1), account.group(2))
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert "<svg" in browser.request("GET", "/flow").text
        groups = browser.request("GET", "/api/v1/failures").json()["groups"]
        assert any(g["status"] == "rejected" for g in groups) and any(g["status"] == "parked" for g in groups)
        parked = next(g for g in groups if g["status"] == "parked")
        key = {k: parked[k] for k in ("status", "rule", "type", "customer")}
        preview = browser.request(
            "POST", "/api/v1/replays/preview", json={**key, "reason": "demo"}, headers={"X-CSRF-Token": csrf}
        ).json()
        assert preview["count"] == parked["count"]
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(30)
