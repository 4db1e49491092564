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

# The installed set, trimmed, in a stage of its own: its layer in the image is reused as long as the
# pinned set is unchanged, whatever the project's edits. What need not ship goes: the test suites
# some wheels carry, pip (nothing is installed at run time; the root file system is read-only) and
# kubernetes.aio, the Kubernetes client's asyncio copy of itself, which nothing here imports (a
# quarter of the image).
# The user gets passwd and group entries (home /tmp): a process that asks for its name, as kopf's
# peering id does (getpass.getuser()), finds one instead of `getpwuid(): uid not found`.
FROM build AS deps
RUN find /opt/contentgen/lib -depth -type d -name tests -exec rm -rf {} + \
    && rm -rf /opt/contentgen/lib/python3*/site-packages/kubernetes/aio \
    && /opt/contentgen/bin/python -m pip uninstall --yes --quiet pip \
    && echo "contentgen:x:10001:10001:contentgen:/tmp:/usr/sbin/nologin" >> /etc/passwd \
    && echo "contentgen:x:10001:" >> /etc/group

# The project alone, as files under /project laid out as they go into the venv.
FROM build AS project
COPY pyproject.toml README.md /src/
COPY operator /src/operator
RUN /opt/contentgen/bin/pip install --no-cache-dir --no-deps --root /project /src

FROM python:3.11.14-slim-bookworm
ENV PATH=/opt/contentgen/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=deps /opt/contentgen /opt/contentgen
COPY --from=project /project/ /
# The user and group the chart's pods run as (runAsUser, runAsGroup 10001), with their entries
# from the deps stage: the final stage runs no step (a RUN would leave the build's mount points).
COPY --from=deps /etc/passwd /etc/group /etc/
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["contentgen"]
CMD ["operator"]
