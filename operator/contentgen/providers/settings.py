"""The providers' own settings, from the environment (CONTENTGEN_*): how far to trust what a
provider documents, what to trade for privacy, and where prices come from. README's "Paid work"
explains each. The worker and `contentgen run` read them; the operator has them too (its settings
extend these) and passes them into every worker Job."""

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
    fal_pricing_api: bool = Field(
        default=True,
        description="Price fal usage with fal's pricing API (GET api.fal.ai/v1/models/pricing, the "
        "account's own prices, read once an hour per worker); false, or when the API cannot be read, "
        "the price table (CONTENTGEN_PRICES).",
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

    def environment(self, provider: str) -> dict[str, str]:
        """The variables a worker running `provider` reads, set to these values (the operator
        passes its own settings into every Job this way)."""
        if provider == "fal":
            return {
                "CONTENTGEN_FAL_STORE_IO": str(self.fal_store_io).lower(),
                "CONTENTGEN_FAL_PRICING_API": str(self.fal_pricing_api).lower(),
            }
        if provider == "assemblyai":
            return {
                "CONTENTGEN_ASSEMBLYAI_RESOLVE_WINDOW_SECONDS": f"{self.assemblyai_resolve_window_seconds:g}",
                "CONTENTGEN_ASSEMBLYAI_UNRESOLVED": self.assemblyai_unresolved,
            }
        return {}
