# syntax=docker/dockerfile:1
#
# runbook-router image.
#
#   docker build -t runbook-router .
#   docker run --rm -p 8080:8080 runbook-router
#
# Why an editable install: the router finds its built-in rules/, runbooks/, playbooks/ and
# templates/ next to the package, at Path(router.__file__).parent.parent (see
# BUILTIN_RULES in router/config.py). A regular wheel install would put the package
# in site-packages, where those directories are not. Installing the source tree at
# /app in editable mode (pip install -e /app) keeps router.__file__ at
# /app/router/__init__.py, so the defaults resolve to /app/rules, /app/runbooks,
# /app/playbooks and /app/templates with no extra configuration. The venv and /app are built in the
# builder stage and copied to the same paths in the runtime stage (both stages use
# the same base image, so the venv's python symlink stays valid).

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app

# Dependencies first, pinned by requirements.lock (`make lock` regenerates it from
# pyproject.toml), so this layer survives code changes and every build is the same.
COPY pyproject.toml requirements.lock ./
RUN pip install --no-deps -r requirements.lock

# Then the project itself (.dockerignore lets only the package, its data and the
# packaging files through); `pip check` fails the build if the lock misses a dependency.
COPY . /app
RUN pip install --no-deps -e /app \
 && pip check \
 && python -m compileall -q /app/router \
 && for d in rules runbooks playbooks templates; do test -d "/app/$d" || exit 1; done \
 && runbook-router check

# ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="runbook-router" \
      org.opencontainers.image.description="Routes Prometheus Alertmanager alerts to runbooks, Slack and PagerDuty" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ROUTER_DATA_DIR=/var/lib/runbook-router

RUN groupadd --system --gid 10001 router \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/runbook-router --shell /usr/sbin/nologin router \
 && mkdir -p /var/lib/runbook-router \
 && chown 10001:10001 /var/lib/runbook-router

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app

WORKDIR /app
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

EXPOSE 8080

# No curl in the slim image; urlopen raises (exit 1) on a refused connection, a
# timeout or any non-2xx answer. Assumes the default --port 8080.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

ENTRYPOINT ["runbook-router"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
