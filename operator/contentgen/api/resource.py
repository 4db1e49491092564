"""A whole custom resource as it appears in a manifest or comes from the API server."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import Field, model_validator

from .base import ApiModel, Timestamp
from .common import NAME_PATTERN, CommonSpec

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class ObjectMeta(ApiModel):
    """The parts of Kubernetes' ObjectMeta a manifest may carry."""

    name: Annotated[str, Field(max_length=253, pattern=NAME_PATTERN)] | None = None
    generate_name: Annotated[str, Field(max_length=253)] | None = None
    namespace: Annotated[str, Field(max_length=63, pattern=DNS_LABEL_PATTERN)] | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: Timestamp | None = None
    deletion_timestamp: Timestamp | None = None
    deletion_grace_period_seconds: int | None = None
    finalizers: list[str] = []
    owner_references: list[dict[str, Any]] = []
    managed_fields: list[dict[str, Any]] = []
    self_link: str | None = None

    @model_validator(mode="after")
    def _named(self) -> ObjectMeta:
        if not self.name and not self.generate_name:
            raise ValueError("metadata.name is required (or metadata.generateName)")
        return self


SpecT = TypeVar("SpecT", bound=CommonSpec)


class Resource(ApiModel, Generic[SpecT]):
    """apiVersion, kind and metadata are checked by the caller (see validation); `status` is
    the API server's to set and is not validated here."""

    api_version: str
    kind: str
    metadata: ObjectMeta
    spec: SpecT
    status: dict[str, Any] | None = None
