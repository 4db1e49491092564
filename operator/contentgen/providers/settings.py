"""The providers' own settings, from the environment (CONTENTGEN_*): how far to trust what a
provider documents, and what to trade for privacy. README's "Billing safety" explains each."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProviderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONTENTGEN_", extra="ignore")

    fal_store_io: bool = Field(
        default=True,
        description="Send X-Fal-Store-IO: 1 with every fal submit, so fal keeps the request's input "
        "and output (30 days) and a submit whose answer was lost can be recognised in fal's request "
        "list. false sends X-Fal-Store-IO: 0: fal keeps no payloads (privacy), and such a submit ends "
        "in ProviderOutcomeUnknown instead.",
    )
    assemblyai_resolve_window_seconds: float = Field(
        default=120.0,
        ge=0,
        le=3600,
        description="How long AssemblyAI's transcript list is watched for a transcript whose create "
        "answer was lost before deciding it was not created (the list promises no read-after-write).",
    )
    assemblyai_unresolved: Literal["fail", "resubmit"] = Field(
        default="fail",
        description="What happens to a lost transcript create that the list never showed: fail "
        "(ProviderOutcomeUnknown, nothing sent again) or resubmit (create it again, which pays twice "
        "if the list was only late).",
    )
