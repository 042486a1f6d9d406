#!/bin/bash
# docker-compose.ha.yml: the streaming standby. On its first start (an empty data volume) it copies the
# primary with pg_basebackup -R, which writes standby.signal and primary_conninfo, streaming from the slot
# `standby1` that primary-init.sh made. cluster_name is the name the primary's synchronous_standby_names
# waits for. Runs as the postgres user (user: postgres in the compose file).
set -euo pipefail

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -q -h postgres-primary -p 5432; do sleep 1; done
  export PGPASSWORD="${POSTGRES_REPLICATION_PASSWORD:?set POSTGRES_REPLICATION_PASSWORD in compose/.env}"
  pg_basebackup -h postgres-primary -p 5432 -U replicator -D "$PGDATA" -R -X stream -S standby1 --checkpoint=fast
  chmod 0700 "$PGDATA"
fi
exec postgres -c cluster_name=standby1 -c hot_standby=on
