# liftwatch edge agent, one camera per container, for a Pi (arm64) or an x86 box:
#   docker build -f deploy/edge.Dockerfile -t liftwatch-edge .
#   docker run -v /etc/liftwatch:/etc/liftwatch:ro -v liftwatch-outbox:/var/lib/liftwatch \
#     -v /srv/liftwatch/models:/opt/liftwatch/models:ro -p 9108:9108 \
#     liftwatch-edge run --config /etc/liftwatch/dock-3.yaml
# The ONNX weights are not in the image (never shipped with the code): mount them.
# A USB camera also needs --device /dev/video0 --group-add video.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LIFTWATCH_MODEL_DIR=/opt/liftwatch/models

WORKDIR /opt/liftwatch/src
COPY pyproject.toml README.md LICENSE ./
COPY edge ./edge
COPY models/manifest.yaml ./models/manifest.yaml
# edge/manifest.yaml links to models/manifest.yaml; the wheel carries a copy of it.
RUN pip install ".[edge]" \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/liftwatch \
      --create-home --shell /usr/sbin/nologin liftwatch \
 && install -d -o liftwatch -g liftwatch /opt/liftwatch/models

USER liftwatch
WORKDIR /var/lib/liftwatch
VOLUME ["/var/lib/liftwatch"]
EXPOSE 9108
# SIGTERM (docker stop) flushes the outbox and publishes "offline"; give it the time.
STOPSIGNAL SIGTERM
ENTRYPOINT ["liftwatch-edge"]
CMD ["run", "--config", "/etc/liftwatch/camera.yaml"]
