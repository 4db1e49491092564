# The operator image: `contentgen operator` (kopf), and with the same packages `contentgen api`.
# Build from the repository root:
#   docker build -t ghcr.io/contentgen/contentgen:0.1.0 .
# Only the pinned operator+api set (requirements/operator.txt, `make lock`) and the project
# itself (--no-deps) go in; tests/chart proves that set runs both commands.
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/contentgen
COPY requirements/operator.txt /tmp/requirements.txt
RUN /opt/contentgen/bin/pip install --no-cache-dir --requirement /tmp/requirements.txt
COPY pyproject.toml README.md /src/
COPY operator /src/operator
RUN /opt/contentgen/bin/pip install --no-cache-dir --no-deps /src

FROM python:3.11.14-slim-bookworm
ENV PATH=/opt/contentgen/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=build /opt/contentgen /opt/contentgen
WORKDIR /tmp
# The chart's pods run as this user too (runAsUser 10001) with a read-only root file system.
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["contentgen"]
CMD ["operator"]
