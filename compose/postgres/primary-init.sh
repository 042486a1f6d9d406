#!/bin/bash
# docker-compose.ha.yml: run once by the postgres image on the primary's first start (/docker-entrypoint-initdb.d),
# after it created POSTGRES_DB. The standby's replication role, its physical slot (the primary keeps the WAL the
# standby has not yet received, also while it is down), its pg_hba line, and synchronous replication.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v replication_password="${POSTGRES_REPLICATION_PASSWORD:?set POSTGRES_REPLICATION_PASSWORD in compose/.env}" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'replication_password';
SELECT pg_create_physical_replication_slot('standby1');
-- A commit returns once the standby has flushed it (synchronous_commit = on, the default): a promoted
-- standby has every transaction a worker saw committed, and so every message it acknowledged on AMQP.
-- `remote_apply` would also wait until queries on the standby see it (the broker reads only the primary).
-- Set with ALTER SYSTEM, for the server's next start: during this init the standby does not exist yet and
-- every commit would wait for it. The price: while the standby is down, commits wait (the workers stop,
-- nothing is lost); with a second standby, name both as ANY 1 (standby1, standby2).
ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (standby1)';
SQL

echo "host replication replicator all scram-sha-256" >>"$PGDATA/pg_hba.conf"
