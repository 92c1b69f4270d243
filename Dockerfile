# The Xaynet coordinator, with the demo page and the browser participant's files. Build from the
# repository root:
#   docker build -t xaynet-coordinator .
#   docker run -p 8081:8081 -v "$PWD/configs/docker-dev.toml:/app/config.toml:ro" xaynet-coordinator
# The settings file is expected at /app/config.toml (bind_address must be 0.0.0.0:8081 inside a
# container); the image also carries the example configs under /app/configs/. What the page
# needs ([web] settings) is under /app: web_participant/, node_modules/ (Pyodide, libsodium.js)
# and wheels/ (the xaynet wheel the browser installs). The same image runs xaynet-test-drive.

# -- Pyodide and libsodium.js, as pinned by the committed package-lock.json ----------------------
FROM node:20-slim AS web
WORKDIR /build
COPY package.json package-lock.json ./
# No install scripts: the packages are plain files that the coordinator serves.
RUN npm ci --ignore-scripts --no-audit --no-fund

# -- the coordinator ---------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The pinned versions of requirements/dev.txt act as constraints, so the image runs what the
# tests ran; only the two distributions and their runtime dependencies are installed (xaynet with
# its sdk extra: xaynet-test-drive). The wheel is the one the browser installs (/wheels/xaynet.whl).
COPY requirements/dev.txt /tmp/build/constraints.txt
COPY shared/ /tmp/build/shared/
COPY coordinator/ /tmp/build/coordinator/
RUN pip install --no-cache-dir -c /tmp/build/constraints.txt \
        "/tmp/build/shared[sdk]" /tmp/build/coordinator \
    && pip wheel --no-cache-dir --no-deps -w /app/wheels /tmp/build/shared \
    && rm -rf /tmp/build

# A system user without a shell; /app/global-models is where the directory model store writes.
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin xaynet \
    && mkdir -p /app/global-models \
    && chown xaynet:xaynet /app/global-models
COPY --from=web /build/node_modules/pyodide /app/node_modules/pyodide
COPY --from=web /build/node_modules/libsodium /app/node_modules/libsodium
COPY --from=web /build/node_modules/libsodium-wrappers /app/node_modules/libsodium-wrappers
COPY web_participant/ /app/web_participant/
COPY configs/ /app/configs/
WORKDIR /app
USER xaynet

EXPOSE 8081

# Liveness of the HTTP server (plain HTTP on port 8081; adapt it when TLS or another port is set).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=4)"]

ENTRYPOINT ["xaynet-coordinator"]
CMD ["--config", "/app/config.toml"]
