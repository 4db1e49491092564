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
# What need not ship goes: the test suites some wheels carry, and pip (nothing is installed at
# run time; the root file system is read-only). The user gets passwd and group entries (home
# /tmp) for the final stage to copy: a process that asks for its name, as kopf's peering id does
# (getpass.getuser()), finds one instead of failing with `getpwuid(): uid not found`.
RUN find /opt/contentgen/lib -depth -type d -name tests -exec rm -rf {} + \
    && /opt/contentgen/bin/python -m pip uninstall --yes --quiet pip \
    && echo "contentgen:x:10001:10001:contentgen:/tmp:/usr/sbin/nologin" >> /etc/passwd \
    && echo "contentgen:x:10001:" >> /etc/group

FROM python:3.11.14-slim-bookworm
ENV PATH=/opt/contentgen/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=build /opt/contentgen /opt/contentgen
# The user and group the chart's pods run as (runAsUser, runAsGroup 10001), with their entries
# from the build stage: the final stage runs no step (a RUN would leave the build's mount points).
COPY --from=build /etc/passwd /etc/group /etc/
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["contentgen"]
CMD ["operator"]
