"""Operator settings with every option set, for the Job builder's tests (tests/controller)."""

from __future__ import annotations

from contentgen.controller.settings import OperatorSettings, SecretKey

UID = "6f1c2a8e-9d3b-4c5e-8f7a-1b2c3d4e5f60"


def full_settings() -> OperatorSettings:
    return OperatorSettings(
        store="s3://bucket/contentgen",
        key_secrets={
            "fal": SecretKey(name="fal-credentials", key="FAL_KEY"),
            "assemblyai": SecretKey(name="aai", key="ASSEMBLYAI_API_KEY"),
        },
        s3_secret="s3-credentials",
        s3_endpoint_url="https://minio.example.com",
    )
