"""A fake Job controller and kubelet for the API server double: for every Job created, it makes
a pod, runs the real `contentgen worker` with the Job's environment (secret references resolved
from Secrets in the double), and reports back as the real ones would: pod phase and the
container's termination message, Job active/ready/succeeded/failed counts and conditions,
retries up to backoffLimit, and the podFailurePolicy rule for exit code 2.

`hold()` keeps pods running without starting the worker (to change, restart or delete things
mid-run); `release()` lets them go on.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from tests.kube.apiserver import FakeApiServer, ResourceType, _now

WORKER = str(Path(sys.executable).parent / "contentgen")


class FakeKubelet:
    def __init__(
        self, api: FakeApiServer, worker_token_file: Path, scratch: Path, extra_env: dict[str, str]
    ) -> None:
        self.api = api
        self.token_file = worker_token_file
        self.scratch = scratch
        self.extra_env = extra_env
        self.running = threading.Event()
        self.running.set()
        self.threads: list[threading.Thread] = []
        self.runs: list[str] = []  # job names, once per worker process started
        api.on_create.append(self._created)

    def hold(self) -> None:
        self.running.clear()

    def release(self) -> None:
        self.running.set()

    def join(self, timeout: float = 60) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def _created(self, t: ResourceType, obj: dict[str, Any]) -> None:
        if t.plural == "jobs":
            thread = threading.Thread(target=self._run_job, args=(obj,), daemon=True)
            self.threads.append(thread)
            thread.start()

    # --- one Job -----------------------------------------------------------------------------

    def _job_status(self, ns: str, name: str, **status: Any) -> bool:
        if self.api.get("batch", "jobs", ns, name) is None:
            return False

        def mutate(job: dict[str, Any]) -> None:
            job.setdefault("status", {}).update(status)

        self.api.update("batch", "jobs", ns, name, mutate, status=True)
        return True

    def _pod_status(self, ns: str, name: str, status: dict[str, Any]) -> None:
        if self.api.get("", "pods", ns, name) is None:
            return

        def mutate(pod: dict[str, Any]) -> None:
            pod["status"] = status

        self.api.update("", "pods", ns, name, mutate, status=True)

    def _run_job(self, job: dict[str, Any]) -> None:
        meta, spec = job["metadata"], job["spec"]
        ns, name = meta["namespace"], meta["name"]
        backoff_limit = int(spec.get("backoffLimit", 6))
        failures = 0
        self._job_status(ns, name, startTime=_now(), active=0)
        while True:
            pod_name = f"{name}-{uuid.uuid4().hex[:5]}"
            labels = {
                **spec["template"]["metadata"]["labels"],
                "batch.kubernetes.io/job-name": name,
                "job-name": name,
            }
            owner = {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": name,
                "uid": meta["uid"],
                "controller": True,
            }
            self.api.create(
                "",
                "pods",
                {
                    "metadata": {
                        "name": pod_name,
                        "namespace": ns,
                        "labels": labels,
                        "ownerReferences": [owner],
                    },
                    "spec": spec["template"]["spec"],
                },
            )
            if not self._job_status(ns, name, active=1, ready=0):
                return
            self._pod_status(ns, pod_name, {"phase": "Pending"})
            self.running.wait()
            if not self._wait_for_secrets(job, pod_name):
                return
            self._pod_status(
                ns,
                pod_name,
                {
                    "phase": "Running",
                    "containerStatuses": [self._container(job, True, {"running": {"startedAt": _now()}})],
                },
            )
            if not self._job_status(ns, name, active=1, ready=1):
                return
            code, message = self._worker(job, pod_name)
            terminated = {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "message": message,
                "finishedAt": _now(),
            }
            self._pod_status(
                ns,
                pod_name,
                {
                    "phase": "Succeeded" if code == 0 else "Failed",
                    "containerStatuses": [self._container(job, False, {"terminated": terminated})],
                },
            )
            if code == 0:
                condition = {"type": "Complete", "status": "True", "lastTransitionTime": _now()}
                self._job_status(
                    ns, name, active=0, ready=0, succeeded=1, completionTime=_now(), conditions=[condition]
                )
                return
            failures += 1
            permanent = code == 2  # the Job's podFailurePolicy: FailJob on exit code 2
            if permanent or failures > backoff_limit:
                reason = "PodFailurePolicy" if permanent else "BackoffLimitExceeded"
                message = (
                    "Container worker for pod failed with exit code 2"
                    if permanent
                    else "Job has reached the specified backoff limit"
                )
                condition = {
                    "type": "Failed",
                    "status": "True",
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": _now(),
                }
                self._job_status(ns, name, active=0, ready=0, failed=failures, conditions=[condition])
                return
            if not self._job_status(ns, name, active=0, ready=0, failed=failures):
                return

    def _missing_secret(self, job: dict[str, Any]) -> str:
        ns = job["metadata"]["namespace"]
        for entry in job["spec"]["template"]["spec"]["containers"][0].get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref is None:
                continue
            secret = self.api.get("", "secrets", ns, ref["name"])
            if secret is None:
                return f'secret "{ref["name"]}" not found'
            if ref["key"] not in (secret.get("data") or {}):
                return f"couldn't find key {ref['key']} in Secret {ns}/{ref['name']}"
        return ""

    def _wait_for_secrets(self, job: dict[str, Any], pod_name: str) -> bool:
        """Like the kubelet: a container whose secretKeyRef cannot be resolved does not start;
        the pod waits (CreateContainerConfigError) until the Secret appears. False: Job gone."""
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        while problem := self._missing_secret(job):
            waiting = {"waiting": {"reason": "CreateContainerConfigError", "message": problem}}
            statuses = [self._container(job, False, waiting)]
            self._pod_status(ns, pod_name, {"phase": "Pending", "containerStatuses": statuses})
            time.sleep(0.2)
            if self.api.get("batch", "jobs", ns, name) is None:
                return False
        return True

    @staticmethod
    def _container(job: dict[str, Any], ready: bool, state: dict[str, Any]) -> dict[str, Any]:
        image = job["spec"]["template"]["spec"]["containers"][0]["image"]
        return {
            "name": "worker",
            "ready": ready,
            "state": state,
            "image": image,
            "imageID": f"{image}@sha256:{'0' * 64}",
            "restartCount": 0,
            "started": ready,
        }

    def _worker(self, job: dict[str, Any], pod_name: str) -> tuple[int, str]:
        ns = job["metadata"]["namespace"]
        container = job["spec"]["template"]["spec"]["containers"][0]
        env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
        for entry in container.get("env", []):
            if "value" in entry:
                env[entry["name"]] = entry["value"]
            elif "secretKeyRef" in entry.get("valueFrom", {}):
                ref = entry["valueFrom"]["secretKeyRef"]
                secret = self.api.get("", "secrets", ns, ref["name"]) or {}
                env[entry["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        work = self.scratch / pod_name
        work.mkdir(parents=True)
        termination = work / "termination-log"
        env.update(
            HOME=str(work),
            CONTENTGEN_WORK_DIR=str(work / "work"),
            CONTENTGEN_TERMINATION_LOG=str(termination),
            CONTENTGEN_KUBE_API=self.api.url,
            CONTENTGEN_KUBE_TOKEN_FILE=str(self.token_file),
            **self.extra_env,
        )
        self.runs.append(job["metadata"]["name"])
        proc = subprocess.run(
            [WORKER, *container.get("args", [])],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        message = termination.read_text() if termination.exists() else ""
        if not message and proc.returncode != 0:  # terminationMessagePolicy: FallbackToLogsOnError
            message = (proc.stdout + proc.stderr)[-2048:]
        return proc.returncode, message
