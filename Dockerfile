# authserver image: `docker build -t authserver .`, then `docker run -p 8080:8080 authserver`
# (embedded development database) or with AUTHSERVER_DATABASE_URL, _ISSUER, _SECRET_KEYS and
# _ADMIN_TOKENS for production. Deployment notes: docs/operations.md; Helm chart: helm/authserver.
#
# Two stages: the builder resolves dependencies and builds the wheel; the final stage gets only
# the finished virtual environment, so no compiler, pip cache or source tree ships.

FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# The environment has no pip of its own: the builder's pip installs into it from outside.
RUN python -m venv --without-pip /opt/authserver

WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip --python /opt/authserver/bin/python install --no-cache-dir --requirement requirements.txt

# Then the project itself, as a wheel (sql/, templates/ and openapi/ ship inside it).
COPY README.md ./
COPY authserver ./authserver
COPY sql ./sql
COPY templates ./templates
COPY openapi ./openapi
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && pip --python /opt/authserver/bin/python install --no-cache-dir --no-deps /wheels/authserver-*.whl \
    && python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/authserver/lib


FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/authserver/bin:${PATH}" \
    AUTHSERVER_PUBLIC_ADDR=0.0.0.0:8080 \
    AUTHSERVER_DATA_DIR=/var/lib/authserver

# AUTHSERVER_WORKERS is left to configuration too: unset, `authserver serve` starts one worker
# process per CPU the container may use (`docker run --cpus`, a Kubernetes CPU limit), read from
# its cgroup; set it to choose (the Helm chart sets it from `workers`).
# AUTHSERVER_ADMIN_ADDR is left to configuration: the server's default keeps the admin listener
# on 127.0.0.1 (sidecar); a Deployment behind an admin Service sets 0.0.0.0:8081.

# A fixed numeric id, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
RUN groupadd --system --gid 10001 authserver \
    && useradd --system --uid 10001 --gid authserver --no-create-home \
       --home-dir /var/lib/authserver --shell /usr/sbin/nologin authserver \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/authserver

COPY --from=builder /opt/authserver /opt/authserver

WORKDIR /var/lib/authserver
USER 10001:10001

EXPOSE 8080 8081

# No curl in the slim image: Python's urllib asks the public listener, wherever it was moved.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('AUTHSERVER_PUBLIC_ADDR', ':8080').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

ENTRYPOINT ["authserver"]
CMD ["serve"]
