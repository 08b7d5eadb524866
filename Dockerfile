# syntax=docker/dockerfile:1.7
# One image for the five services (intake, routing, tracking, followup, analytics).
#
#   docker build --build-arg SERVICE=routing --build-arg PORT=8002 -t cfp/routing:local .
#
# SERVICE and PORT only set the default command and the HEALTHCHECK port; any image built
# from this file can run any service (`cfp serve <service> ...`) or the one-shot commands
# (`cfp migrate`, `cfp topics create`). See docs/operations.md.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# ---------------------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder

COPY --from=uv /uv /usr/local/bin/uv

# Byte-compile at build time (the runtime root filesystem is read-only), copy instead of
# hard-linking from the cache mount, and never download a Python: use the image's.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Dependencies first (cached as long as the lock file does not change) ...
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --no-install-project

# ... then the project itself, installed into the same venv.
COPY pyproject.toml uv.lock README.md ./
COPY shared ./shared
COPY services ./services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev \
    && python -m compileall -q shared services

# ---------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

ARG SERVICE=intake
ARG PORT=8001

LABEL org.opencontainers.image.title="cfp-${SERVICE}" \
      org.opencontainers.image.description="Complaint and feedback platform: ${SERVICE} service" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid/gid so Kubernetes can check runAsNonRoot without a passwd lookup.
RUN groupadd --system --gid 10001 cfp \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin cfp

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CFP_SERVICE=${SERVICE} \
    CFP_PORT=${PORT}

WORKDIR /app

# Only the virtual environment and the source; owned by root, so the service user can read
# but not modify its own code.
COPY --from=builder /app /app

USER 10001:10001

EXPOSE ${PORT}

# Liveness only (no database or Kafka): /readyz is for orchestrators that route traffic.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CFP_PORT', '8001'), timeout=2)"]

CMD ["sh", "-c", "exec cfp serve \"$CFP_SERVICE\" --host 0.0.0.0 --port \"$CFP_PORT\""]
