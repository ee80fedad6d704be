# liftwatch dashboard: web app, API, MQTT ingest, /metrics. Built from the repository root:
#   docker build -f deploy/dashboard.Dockerfile -t liftwatch-dashboard .
# python:3.11-slim is published for amd64 and arm64; every dependency has wheels for both.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/liftwatch/src
COPY pyproject.toml README.md LICENSE ./
COPY edge ./edge
COPY dashboard ./dashboard
RUN pip install ".[dashboard]" \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/liftwatch \
      --create-home --shell /usr/sbin/nologin liftwatch

USER liftwatch
WORKDIR /var/lib/liftwatch
EXPOSE 8080
ENTRYPOINT ["liftwatch-dashboard"]
CMD ["serve", "--config", "/etc/liftwatch/dashboard.yaml"]
