# One image for both parts: kube-gpu-exporter (DaemonSet) and kube-gpu-adapter (Deployment), plus
# kube-gpu-hpa (the HPA lab's `watch` against a live adapter); the manifests in deploy/ pick the
# program with `command:`.
#
#   docker build -t kube-gpu-metrics:0.1.0 .
#
# BASE_IMAGE: any image with Python >= 3.11 and its venv module, the same for both stages (the
# virtualenv links to the base's interpreter). Where registries are unreachable, build on a local
# one, e.g. `mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm - |
# docker import - local/python:bookworm`, and pass --build-arg BASE_IMAGE=local/python:bookworm.
# pip behind a TLS-intercepting proxy: DOCKER_BUILDKIT=1 docker build --secret id=pip-ca,src=CA.pem .
ARG BASE_IMAGE=python:3.12-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/kube-gpu-metrics
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kgm_common kgm_common
COPY exporter exporter
COPY adapter adapter
COPY hpalab hpalab
# Only wheels are accepted, so no compiler is ever needed here or left behind; pip itself leaves
# the virtualenv before it is copied.
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && /opt/kube-gpu-metrics/bin/pip install --only-binary=:all: --no-binary=kube-gpu-metrics . \
    && /opt/kube-gpu-metrics/bin/pip uninstall -q -y pip setuptools

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="kube-gpu-metrics" \
      org.opencontainers.image.description="GPU exporter with pod attribution and custom.metrics.k8s.io adapter for Kubernetes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/kube-gpu-metrics /opt/kube-gpu-metrics
ENV PATH=/opt/kube-gpu-metrics/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A numeric user needs no passwd entry; deploy/ runs the adapter as it (runAsNonRoot) and the
# exporter as root only for the kubelet's root-owned pod-resources socket.
USER 65532:65532
EXPOSE 9402 6443
CMD ["kube-gpu-exporter"]
