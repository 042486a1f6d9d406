#!/usr/bin/env python3
"""RabbitMQ definitions for HMC Broker: the vhost, its users and their least-privilege permissions.

Inputs: hmc-broker.toml (the [[customers]] and their amqp_user, [broker] prefix) and, from the environment
(compose/.env), the passwords and HMC_PREFIX. Output: a definitions file that RabbitMQ imports at boot
(load_definitions in rabbitmq.conf). It holds salted password hashes: it is written to a Docker volume at
deploy time and never committed.

Users and what they may do (permission patterns are regular expressions; RabbitMQ searches them
unanchored, so every pattern here is anchored with ^...$):

- hmc-admin: operators (management UI, administrator tag), everything in the vhost;
- hmc-broker: the broker workers: configure, write and read the contract's names (hmc.*, sesam2.in) and
  publish to the default exchange (answers to a reply_to queue), nothing else;
- sesam2: write hmc.sesam2.in, read sesam2.in, configure nothing;
- each customer system (an amqp_user of hmc-broker.toml, owning one or more customer numbers): write
  hmc.customer.in only, with routing keys that start with its own customer numbers (topic permission),
  read its own hmc.customer.<number> queues and, only where invoice = true, hmc.invoice.<number>;
  configure nothing (the broker declares every queue).

One policy: the partners' queues dead-letter to the broker's dead-letter exchange (partner_dead_letter_policy).

Passwords: RABBITMQ_PASSWORD_<USER> (the user name in upper case, other characters than A-Z and 0-9 as _),
e.g. RABBITMQ_PASSWORD_WEBSESAM_SKANE. Users named in RABBITMQ_CERTIFICATE_USERS (comma-separated) get
no password: they can only log in with their client certificate (EXTERNAL, see rabbitmq/tls.conf).

Standard library only: it runs in a bare python image before RabbitMQ starts.

    make_definitions.py --config hmc-broker.toml --out definitions.json [--owner 999:999] [--vhost hmc]
    make_definitions.py --config hmc-broker.toml --print      # review: the same, hashes left out

--vhost names another vhost than "hmc" (a second environment on one RabbitMQ, or a test's own vhost).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VHOST = "hmc"
ADMIN_USER = "hmc-admin"
BROKER_USER = "hmc-broker"
SESAM2_USER = "sesam2"
CERTIFICATE_USERS_VAR = "RABBITMQ_CERTIFICATE_USERS"
HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
NOTHING = "^$"
_URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")


class ConfigError(Exception):
    """The configuration or the environment cannot give safe definitions."""


@dataclass
class CustomerSystem:
    user: str
    numbers: list[str] = field(default_factory=list)
    invoice_numbers: list[str] = field(default_factory=list)


def password_variable(user: str) -> str:
    return "RABBITMQ_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", user.upper())


def hash_password(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password)), 4-byte salt."""
    salt = secrets.token_bytes(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode("utf-8")).digest()).decode("ascii")


def customer_systems(config: Mapping[str, Any]) -> list[CustomerSystem]:
    """The customer systems of hmc-broker.toml, one per amqp_user (a user may own several numbers)."""
    systems: dict[str, CustomerSystem] = {}
    for customer in config.get("customers", []):
        number = str(customer["number"])
        if not re.fullmatch(r"[0-9]{4,8}", number):
            raise ConfigError(f"customer number {number!r}: expected 4 to 8 digits")
        user = customer.get("amqp_user")
        if not user:
            raise ConfigError(f"customer {number} has no amqp_user: every customer system connects as its own user")
        if user in (ADMIN_USER, BROKER_USER, SESAM2_USER):
            raise ConfigError(f"customer {number}: amqp_user {user!r} is reserved")
        system = systems.setdefault(user, CustomerSystem(user))
        system.numbers.append(number)
        if customer.get("invoice", False):
            system.invoice_numbers.append(number)
    return list(systems.values())


def _alternatives(prefix: str, names: list[str]) -> str:
    """^<prefix>(a|b)$ for literal names: exactly these names, nothing that merely starts or ends like them."""
    escaped = [re.escape(n) for n in names]
    body = escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    return f"^{re.escape(prefix)}{body}$"


def _permission(vhost: str, user: str, configure: str, write: str, read: str) -> dict[str, str]:
    return {"user": user, "vhost": vhost, "configure": configure, "write": write, "read": read}


def build(
    config: Mapping[str, Any], env: Mapping[str, str], *, salt: bytes | None = None, vhost: str = VHOST
) -> dict[str, Any]:
    """The definitions for this configuration; passwords from env (see the module docstring)."""
    prefix = env.get("HMC_PREFIX") or str(config.get("broker", {}).get("prefix", ""))
    p = re.escape(prefix)
    customers = customer_systems(config)
    certificate_users = {u.strip() for u in env.get(CERTIFICATE_USERS_VAR, "").split(",") if u.strip()}

    contract = f"^{p}(hmc\\..+|sesam2\\.in)$"  # every name the broker declares (adapters/amqp/topology.py)
    permissions = [
        _permission(vhost, ADMIN_USER, ".*", ".*", ".*"),
        # amq.default: the default exchange, for answers to a message's reply_to queue.
        _permission(vhost, BROKER_USER, contract, f"^({p}(hmc\\..+|sesam2\\.in)|amq\\.default)$", contract),
        _permission(vhost, SESAM2_USER, NOTHING, f"^{p}hmc\\.sesam2\\.in$", f"^{p}sesam2\\.in$"),
    ]
    topic_permissions = []
    for c in customers:
        readable = [f"hmc.customer.{n}" for n in c.numbers] + [f"hmc.invoice.{n}" for n in c.invoice_numbers]
        permissions.append(
            _permission(vhost, c.user, NOTHING, f"^{p}hmc\\.customer\\.in$", _alternatives(prefix, readable))
        )
        own_numbers = c.numbers[0] if len(c.numbers) == 1 else "(" + "|".join(c.numbers) + ")"
        topic_permissions.append(
            {
                "user": c.user,
                "vhost": vhost,
                "exchange": f"{prefix}hmc.customer.in",
                # routing key <customerNumber>.<MessageType>: only its own customer numbers
                "write": f"^{own_numbers}\\.",
                "read": NOTHING,
            }
        )

    users = []
    variables: dict[str, str] = {}
    for user, tags in [(ADMIN_USER, ["administrator"]), (BROKER_USER, []), (SESAM2_USER, [])] + [
        (c.user, []) for c in customers
    ]:
        variable = password_variable(user)
        if variables.setdefault(variable, user) != user:
            raise ConfigError(f"users {variables[variable]!r} and {user!r} would share {variable}: rename one")
        if user in certificate_users:
            password_hash = ""  # no password: only EXTERNAL (its client certificate) logs it in
        else:
            password = env.get(variable, "")
            if not password:
                raise ConfigError(
                    f"{variable} is not set: give {user!r} a password in compose/.env "
                    f"(or list it in {CERTIFICATE_USERS_VAR} to allow only its client certificate)"
                )
            if user == BROKER_USER and not _URL_SAFE.fullmatch(password):
                raise ConfigError(
                    f"{variable} goes into HMC_AMQP_URL: use only A-Z a-z 0-9 . _ ~ - (openssl rand -hex 24)"
                )
            password_hash = hash_password(password, salt)
        users.append(
            {"name": user, "password_hash": password_hash, "hashing_algorithm": HASHING_ALGORITHM, "tags": tags}
        )
    unknown = certificate_users - set(variables.values())
    if unknown:
        raise ConfigError(f"{CERTIFICATE_USERS_VAR} names unknown users: {', '.join(sorted(unknown))}")

    description = "HMC Broker: customer systems <-> SESAM2"
    return {
        "users": users,
        "vhosts": [
            {
                "name": vhost,
                "description": description,
                "tags": [],
                "default_queue_type": "quorum",
                "metadata": {"description": description, "tags": [], "default_queue_type": "quorum"},
            }
        ],
        "permissions": permissions,
        "topic_permissions": topic_permissions,
        "parameters": [],
        "global_parameters": [],
        "policies": [partner_dead_letter_policy(vhost, prefix)],
        "queues": [],
        "exchanges": [],
        "bindings": [],
    }


def partner_dead_letter_policy(vhost: str, prefix: str) -> dict[str, Any]:
    """The partners' queues (sesam2.in, hmc.customer.<n>, hmc.invoice.<n>) dead-letter to the broker's
    dead-letter exchange, as its own inbound queues do by their arguments.

    On RabbitMQ 4.x a quorum queue delivers a message at most 20 times (its default delivery-limit); then it
    dead-letters it, or drops it when the queue has no dead-letter exchange. A policy, not an argument: it
    applies to queues already declared, which a changed argument would make refuse their declaration.
    """
    partner_queues = r"(sesam2\.in|hmc\.customer\.[0-9]{4,8}|hmc\.invoice\.[0-9]{4,8})"
    return {
        "vhost": vhost,
        "name": "hmc-partner-dead-letter",
        "pattern": f"^{re.escape(prefix)}{partner_queues}$",
        "apply-to": "queues",
        "priority": 0,
        "definition": {"dead-letter-exchange": f"{prefix}hmc.dlx"},
    }


def redacted(definitions: dict[str, Any]) -> dict[str, Any]:
    users = [{**u, "password_hash": "<hash>" if u["password_hash"] else ""} for u in definitions["users"]]
    return {**definitions, "users": users}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="hmc-broker.toml")
    parser.add_argument("--out", type=Path, help="where to write the definitions")
    parser.add_argument("--owner", help="uid:gid to own the written file (RabbitMQ's user in its image: 999:999)")
    parser.add_argument("--print", action="store_true", help="print the definitions without password hashes")
    parser.add_argument("--vhost", default=VHOST, help=f"the vhost to define (default {VHOST})")
    args = parser.parse_args(argv)
    try:
        config = tomllib.loads(args.config.read_text(encoding="utf-8"))
        env = dict(os.environ)
        if args.print:
            # Review only: stand-in passwords where none is set, and no hash is printed.
            for user in _all_users(config):
                env[password_variable(user)] = env.get(password_variable(user)) or "-"
            print(json.dumps(redacted(build(config, env, vhost=args.vhost)), indent=2, ensure_ascii=False))
            return 0
        definitions = build(config, env, vhost=args.vhost)
    except ConfigError as e:
        print(f"make_definitions: {e}", file=sys.stderr)
        return 2
    if args.out is None:
        parser.error("--out or --print is required")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(definitions, f, indent=2, ensure_ascii=False)
    if args.owner:
        uid, gid = (int(x) for x in args.owner.split(":"))
        os.chown(tmp, uid, gid)
    os.replace(tmp, args.out)
    users = ", ".join(u["name"] for u in definitions["users"])
    print(f"make_definitions: wrote {args.out} (vhost {args.vhost}; users {users})")
    return 0


def _all_users(config: Mapping[str, Any]) -> list[str]:
    return [ADMIN_USER, BROKER_USER, SESAM2_USER] + [c.user for c in customer_systems(config)]


if __name__ == "__main__":
    sys.exit(main())
