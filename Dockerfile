# HMC Broker: one image for every broker role (hmc-broker run, db upgrade, topology, the CLI).
#   docker build -t hmc-broker .
#   docker run --rm hmc-broker --help
# compose/docker-compose.yml builds and runs it with RabbitMQ, PostgreSQL, Prometheus and Grafana.

# ---- build: install the project and its runtime dependencies (no test or dev extras) into a venv
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/hmc-broker
WORKDIR /src
COPY pyproject.toml README.md ./
COPY broker ./broker
COPY adapters ./adapters
COPY replay ./replay
COPY schemas ./schemas
RUN /opt/hmc-broker/bin/pip install .

# ---- runtime: the venv only, run as an unprivileged user
FROM python:3.11-slim
ENV PATH=/opt/hmc-broker/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HMC_HTTP_PORT=8080
RUN groupadd --system --gid 10001 hmc \
    && useradd --system --uid 10001 --gid hmc --home-dir /var/lib/hmc-broker --create-home \
       --shell /usr/sbin/nologin hmc
COPY --from=build /opt/hmc-broker /opt/hmc-broker
# The embedded default's SQLite file (HMC_DB_URL unset) lands here; production uses PostgreSQL.
WORKDIR /var/lib/hmc-broker
USER hmc:hmc
# /metrics, /healthz, /readyz
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HMC_HTTP_PORT', '8080'), timeout=4)"]
# SIGTERM (docker stop): the worker finishes the batch in hand, flushes the outbox and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["hmc-broker"]
CMD ["run"]
