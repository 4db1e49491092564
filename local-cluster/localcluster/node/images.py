"""What stands in for container images: the node pulls nothing; an image is a known entry point on
this machine. An image reference matches by the last part of its repository
(`registry.example.com/team/contentgen-worker:0.1.0` is `contentgen-worker`), any tag or digest.

The container's argv follows Docker's rules: `command` replaces the image's ENTRYPOINT, `args` its
CMD. argv[0] is looked up in the image's PATH, whose container directories map to host ones
(`/opt/contentgen/bin` to this installation's bin directory), then in the host's PATH.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any


class ImageUnknown(Exception):
    pass


class NotFound(Exception):
    """argv[0] is nowhere to be found (the container runtime's StartError)."""


@dataclass(frozen=True)
class Image:
    entrypoint: list[str]
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    path_map: dict[str, str] = field(default_factory=dict)  # container dir -> host dir
    # Only when the node cannot give a pod its own mount namespace: variables that tell the
    # process where its token, CA, API server and termination-message file are on the host.
    # Values may name {token_file}, {ca_file}, {api_url}, {termination_log}, {kubeconfig}.
    fallback_env: dict[str, str] = field(default_factory=dict)


def repository_name(reference: str) -> str:
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


@dataclass
class Images:
    known: dict[str, Image]

    def get(self, reference: str) -> Image:
        image = self.known.get(repository_name(reference))
        if image is None:
            names = ", ".join(sorted(self.known)) or "none"
            raise ImageUnknown(
                f'failed to pull image "{reference}": the local node runs no images, only these '
                f"entry points by repository name: {names}"
            )
        return image

    def argv(self, image: Image, container: dict[str, Any]) -> list[str]:
        if container.get("command"):
            argv = [*container["command"], *(container.get("args") or [])]
        else:
            args = container.get("args")
            argv = [*image.entrypoint, *(args if args is not None else image.cmd)]
        if not argv:
            raise NotFound("no command specified")
        return [self.resolve(image, str(argv[0]), container), *map(str, argv[1:])]

    def resolve(self, image: Image, program: str, container: dict[str, Any]) -> str:
        path = PurePosixPath(program)
        if path.is_absolute():
            host = str(path.parent)
            mapped = image.path_map.get(host)
            candidate = os.path.join(mapped, path.name) if mapped else program
            if os.access(candidate, os.X_OK):
                return candidate
            raise NotFound(f'exec: "{program}": stat {program}: no such file or directory')
        env_path = next(
            (str(e.get("value")) for e in container.get("env") or [] if e.get("name") == "PATH"),
            image.env.get("PATH", ""),
        )
        for directory in env_path.split(":"):
            if directory in image.path_map:
                candidate = os.path.join(image.path_map[directory], program)
                if os.access(candidate, os.X_OK):
                    return candidate
        found = shutil.which(program)
        if found is None:
            raise NotFound(f'exec: "{program}": executable file not found in $PATH')
        return found
