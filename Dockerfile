# One Dockerfile for every inferq image; docker-compose.yml builds them all.
#
#   docker build -t inferq .                                          # no extras: light workers
#   docker build -t inferq-embeddings --build-arg EXTRAS=embeddings .  # the API, embeddings worker
#   docker build -t inferq-flower --target flower .                   # Flower (profile monitoring)
#
# EXTRAS is a comma-separated list of the package's extras (pyproject.toml): "embeddings",
# "diffusers", or both. The API serves only the models whose `requires` it can import, so its
# image needs the extras of every worker's models. The images hold the package and its runtime
# dependencies only: no compiler, no dev extra, no tests. They run as the unprivileged user
# `inferq`, and their entry point is the `inferq` command (`inferq api`, the default, or
# `inferq worker --queues ...`).

ARG PYTHON_IMAGE=python:3.11-slim

# ---- base: what every stage shares ----------------------------------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/inferq \
    PATH=/opt/inferq/bin:$PATH
# /var/lib/inferq is INFERQ_DATA_DIR in docker-compose.yml; files/ under it is a named volume,
# which Docker initialises from this directory, owner included, so the user can write to it.
RUN groupadd --system --gid 10001 inferq \
    && useradd --system --uid 10001 --gid inferq --create-home --home-dir /home/inferq \
        --shell /usr/sbin/nologin inferq \
    && install -d -o inferq -g inferq /var/lib/inferq /var/lib/inferq/files

# ---- build: a virtualenv with the package and the extras asked for --------------------------
FROM base AS build
# A compiler only for dependencies without a wheel for this platform; it stays in this stage
# (unpinned: Debian's versions follow the base image).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv "$VIRTUAL_ENV"
WORKDIR /src
ARG EXTRAS=""
# torch's CPU-only wheels. This index is used only when EXTRAS is set (every extra needs torch);
# the machines inferq is developed on cannot reach it, but a user's builder can. Without it pip
# takes torch from PyPI: the CUDA build, gigabytes larger.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Dependencies first, from pyproject.toml alone, so that editing the code does not reinstall
# torch. An extra pyproject.toml does not define fails the build here (pip would only warn).
COPY pyproject.toml ./
RUN python -c 'import sys, tomllib; \
project = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
runtime = {name: deps for name, deps in project["optional-dependencies"].items() if name != "dev"}; \
extras = [name.strip() for name in sys.argv[1].split(",") if name.strip()]; \
refused = [name for name in extras if name not in runtime]; \
sys.exit(f"EXTRAS {refused} refused: the runtime extras are {sorted(runtime)}") if refused else None; \
print("\n".join(project["dependencies"] + [dep for name in extras for dep in runtime[name]]))' \
        "$EXTRAS" > /tmp/requirements.txt \
    && pip install ${EXTRAS:+--extra-index-url "$TORCH_INDEX_URL"} -r /tmp/requirements.txt
COPY README.md ./
COPY api ./api
COPY common ./common
COPY workers ./workers
RUN pip install --no-deps . && pip check

# ---- flower: the runtime plus Flower (`celery ... flower`), for the monitoring profile ------
# Flower is not a dependency of inferq; it is installed in this image only.
FROM base AS flower
COPY --from=build /opt/inferq /opt/inferq
RUN pip install "flower==2.2.0" && pip check
USER 10001:10001
WORKDIR /home/inferq
EXPOSE 5555
ENTRYPOINT ["celery"]
CMD ["flower"]

# ---- runtime: the API and worker image (the default target) ---------------------------------
FROM base AS runtime
COPY --from=build /opt/inferq /opt/inferq
# The user inferq, by number so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
WORKDIR /home/inferq
EXPOSE 8000
# The API's liveness. Worker containers run the same image without an HTTP server, so their
# compose services disable this check. Port 8000 is the one `inferq api` binds by default here.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]
ENTRYPOINT ["inferq"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
