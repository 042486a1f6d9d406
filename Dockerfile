# HMC Broker: one image for every broker role (hmc-broker run, db upgrade, topology, the CLI).
#   docker build -t hmc-broker .
#   docker run --rm hmc-broker --help
# compose/docker-compose.yml builds and runs it with RabbitMQ, PostgreSQL, Prometheus and Grafana.

# ---- build: the runtime dependencies from the lock, then the project alone, into a venv (no test or dev extras)
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/hmc-broker && python -m venv /opt/build
WORKDIR /src
# Every file pip installs is checked against the lock's hashes: requirements.lock (the runtime dependencies,
# exactly as tested) and requirements-build.lock (hatchling, which builds the wheel in a venv of its own and
# stays out of the image). README.md, section "Docker image", says how to make them again.
COPY requirements.lock requirements-build.lock ./
RUN /opt/hmc-broker/bin/pip install --require-hashes --no-deps -r requirements.lock \
    && /opt/build/bin/pip install --require-hashes --no-deps -r requirements-build.lock
COPY pyproject.toml README.md ./
COPY broker ./broker
COPY adapters ./adapters
COPY replay ./replay
COPY console ./console
COPY schemas ./schemas
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /dist . \
    && /opt/hmc-broker/bin/pip install --no-deps /dist/*.whl

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
