# syntax=docker/dockerfile:1
# mlflow-gitops controller image: `make image` builds it as mlflow-gitops:<version>.
#
# Stage 1 installs the project and its runtime dependencies only (the registry client is
# mlflow-skinny; no MLflow server, test or dev extras) into a virtualenv. Stage 2 copies that
# virtualenv onto a clean slim base with git and ssh, and runs as the numeric non-root user
# 65532 with an exec-form entrypoint: nothing runs through a shell at start-up. /bin/sh stays
# in the image only because git needs it for the GIT_ASKPASS script and GIT_SSH_COMMAND that
# controller/adapters/git/source.py hands it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/mlflow-gitops
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY controller ./controller
RUN /opt/mlflow-gitops/bin/pip install ".[controller]" \
 && /opt/mlflow-gitops/bin/python -c "import importlib.metadata as m, sys; \
names = {d.metadata['Name'].lower() for d in m.distributions()}; \
sys.exit('the full mlflow (server) got installed' if 'mlflow' in names else 0)" \
 && /opt/mlflow-gitops/bin/mlflow-gitops --version \
 && /opt/mlflow-gitops/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install --yes --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin nonroot \
 && install -d -o 65532 -g 65532 -m 0750 /var/cache/mlflow-gitops
COPY --from=build /opt/mlflow-gitops /opt/mlflow-gitops
# HOME=/tmp: git and ssh look for per-user files there; it is an emptyDir in the manifests.
ENV PATH=/opt/mlflow-gitops/bin:$PATH \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["mlflow-gitops", "run"]
