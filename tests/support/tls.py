"""TLS peers of the tests' own: certificates openssl makes, and a listener that records each handshake.

A handshake the listener completes is one the client's certificate check accepted (and, when the listener asks
for one, whose client certificate it trusted); it then hangs up, speaking no AMQP."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest


def certificate(directory: Path, name: str, alt: str | None = None) -> tuple[Path, Path]:
    """A self-signed certificate and its key for `name` (CN), with `alt` as its subjectAltName (DNS:... or IP:...)."""
    key, cert = directory / f"{name}-key.pem", directory / f"{name}.pem"
    extra = ("-addext", f"subjectAltName={alt}") if alt else ()
    made = subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}"),
            *extra,
            *("-keyout", str(key), "-out", str(cert)),
        ],
        capture_output=True,
    )
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr[-200:]!r}")
    return cert, key


@dataclass
class Handshake:
    accepted: bool
    client: str | None  # the client certificate's common name, when one was asked for and given


class Node:
    """A TLS listener on `host` with its own certificate; `client_ca` asks for a client certificate it trusts."""

    def __init__(self, host: str, cert: Path, key: Path, client_ca: Path | None = None) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        if client_ca is not None:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(client_ca)
        try:
            self.listener = socket.create_server((host, 0))
        except OSError as e:
            pytest.skip(f"no listener on {host}: {e}")
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.handshakes: list[Handshake] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def outcomes(self) -> list[bool]:
        return [h.accepted for h in self.handshakes]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(5)
            try:
                with self.context.wrap_socket(raw, server_side=True) as tls:
                    peer = tls.getpeercert()
                    subject = dict(pair[0] for pair in peer["subject"]) if peer else {}
                    self.handshakes.append(Handshake(True, subject.get("commonName")))
            except (ssl.SSLError, OSError):
                self.handshakes.append(Handshake(False, None))  # one side did not accept the other's certificate
            finally:
                raw.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()
