"""Errors that carry a reason: a CamelCase word for status conditions and a sentence for people.

`PermanentError`: retrying will not help (bad input, a refused key, a provider's rejection);
the run fails with its reason. `TransientError`: worth retrying with backoff (a 5xx, a 429,
a timeout); raised after the retries are spent, the run fails but a new attempt may succeed.
"""

from __future__ import annotations


class ContentgenError(Exception):
    reason = "Error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self)


class PermanentError(ContentgenError):
    reason = "Failed"


class TransientError(ContentgenError):
    reason = "Unavailable"


class InvalidInput(PermanentError):
    """The input (a source, a file) cannot be used."""

    reason = "InvalidInput"


class SourceRefused(PermanentError):
    """A source URL the settings do not allow fetching (scheme, internal address, size)."""

    reason = "SourceRefused"


class MissingCredentials(PermanentError):
    """A provider's key that is not set or was refused; the message ends with what to do instead
    (`OFFLINE`, what `contentgen run` takes), which a command with other options replaces."""

    reason = "MissingCredentials"
    OFFLINE = "run with --offline"

    def instead(self, hint: str) -> str:
        """The message with `hint` where it says to run with --offline."""
        return str(self).replace(self.OFFLINE, hint)


class ModelNotFound(PermanentError):
    """provider: cluster, and a base model's directory is missing or incomplete (nothing is
    downloaded at run time: a platform team stages the weights, docs/cluster-gpus.md)."""

    reason = "ModelNotFound"


class DeviceUnavailable(PermanentError):
    """provider: cluster, and the device CONTENTGEN_CLUSTER_DEVICE names (cuda, cuda:N) is not on
    this machine: said before any model is loaded, instead of the framework's error mid-run."""

    reason = "DeviceUnavailable"


class GpuMemoryTooSmall(PermanentError):
    """provider: cluster, and the job's memory plan (the base model's weights, the LoRA's training
    state, the activations) cannot fit the GPU's free memory: said with the numbers before any
    model is loaded (providers/cluster/memory.py), instead of CUDA's out-of-memory error mid-run."""

    reason = "GpuMemoryTooSmall"
