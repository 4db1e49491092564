"""ImageGeneration: (LoRA links) → provider → store each image with its size and checksum, under
the run's version (generated-images/{owner}/{uid}/v{n}/): a re-run never touches earlier images."""

from __future__ import annotations

from collections.abc import Sequence

from contentgen.api import Artifact, GeneratedImage, ImageGenerationSpec, RunResult
from contentgen.errors import PermanentError
from contentgen.pricing import gpu_usage, image_usage
from contentgen.pricing.kinds.image_generation import KIND as IMAGES_PRICE
from contentgen.providers import image_generator
from contentgen.providers.base import ImageGenerator, ImageOutput, ImageRequest, LoraWeights
from contentgen.store import keys

from .context import RunContext, StoreCheckpoint, StoreFiles
from .links import provider_url
from .progress import Stages

PNG = "image/png"

# the stages in order, and each one's share of the run's progress
STAGES = Stages(("prepare", 5), ("generate", 80), ("store-images", 15))


def run_images(ctx: RunContext) -> RunResult:
    spec = _spec(ctx)
    provider = image_generator(ctx.provider)
    request = _prepare(ctx, spec)
    outputs = _generate(ctx, spec, provider, request)
    artifacts, images = _store_images(ctx, spec, outputs, provider.name)
    return RunResult(
        kind=ctx.snapshot.kind,
        provider=provider.name,
        placeholder=any(o.placeholder for o in outputs),
        artifacts=artifacts,
        images=images,
        # each plan the pictures were drawn with, once (a retry on another card may have another)
        memory_plan=" | ".join(dict.fromkeys(o.memory_plan for o in outputs if o.memory_plan)),
    )


def _spec(ctx: RunContext) -> ImageGenerationSpec:
    spec = ctx.snapshot.parsed_spec(local=ctx.local)
    assert isinstance(spec, ImageGenerationSpec)
    return spec


def _prepare(ctx: RunContext, spec: ImageGenerationSpec) -> ImageRequest:
    """The provider's request, with the LoRAs' links."""
    snap = ctx.snapshot
    with ctx.stage(STAGES, "prepare"):
        loras = tuple(
            LoraWeights(url=provider_url(lora.uri, ctx.store, ctx.settings.presign_seconds), scale=lora.scale)
            for lora in snap.loras
        )
        return ImageRequest(
            prompt=spec.prompt,
            model=spec.model,
            num_images=spec.num_images,
            image_size=spec.image_size,
            negative_prompt=spec.negative_prompt,
            seed=spec.seed,
            loras=loras,
            # per version, beside the run's checkpoints: a retried pod of this run takes the
            # pictures already made; another version (another spec) makes its own
            outputs=StoreFiles(ctx.store, keys.pictures_made(snap.uid, snap.version)),
            memory_plan=spec.memory_plan,
            owner=snap.owner,
            drawn_here=spec.denoising == "job",
        )


def _generate(
    ctx: RunContext, spec: ImageGenerationSpec, provider: ImageGenerator, request: ImageRequest
) -> list[ImageOutput]:
    """The paid call, its usage once it has returned, and as many pictures as were asked for."""
    with ctx.stage(STAGES, "generate") as span:
        # One per resource, not per generation: a later generation with the same provider inputs
        # (after a failed store, say) delivers what was paid for instead of paying again.
        checkpoint = StoreCheckpoint(ctx.store, keys.checkpoint(ctx.snapshot.uid, "images"))
        ctx.usage = None  # a paid call is under way
        outputs = provider.generate_images(request, ctx.scratch("images"), span, checkpoint)
        if any(o.gpu_seconds is not None for o in outputs):  # the GPU time each picture held, once each
            ctx.usage = [
                line
                for o in outputs
                for line in gpu_usage(provider.name, IMAGES_PRICE.item, o.gpu_seconds or 0.0, o.request_id)
            ]
        else:
            billed = outputs[0].request_id if outputs else ""
            ctx.usage = image_usage(provider.name, spec.model, [(o.width, o.height) for o in outputs], billed)
        if len(outputs) != spec.num_images:
            raise PermanentError(
                f"{provider.name} returned {len(outputs)} images where {spec.num_images} were asked for",
                reason="ProviderError",
            )
    return outputs


def _store_images(
    ctx: RunContext, spec: ImageGenerationSpec, outputs: Sequence[ImageOutput], provider: str
) -> tuple[list[Artifact], list[GeneratedImage]]:
    """Each paid picture stored as PNG under the run's version, with its real size."""
    images: list[GeneratedImage] = []
    artifacts: list[Artifact] = []
    with ctx.stage(STAGES, "store-images") as span, ctx.storing_paid_output("the images"):
        for n, output in enumerate(outputs, start=1):
            data, width, height = _as_png(output, n, provider)
            artifact = ctx.store.put_once_bytes(
                keys.image(spec.owner, ctx.snapshot.uid, ctx.snapshot.version, n), data, PNG
            )
            artifacts.append(artifact)
            images.append(
                GeneratedImage(
                    uri=artifact.uri,
                    width=width,
                    height=height,
                    content_type=PNG,
                    size_bytes=artifact.size_bytes,
                    sha256=artifact.sha256,
                    seed=output.seed,
                )
            )
            span(100.0 * n / len(outputs))
    return artifacts, images


def _as_png(output: ImageOutput, n: int, provider: str) -> tuple[bytes, int, int]:
    """The image as PNG bytes with its real size (decoded, not taken on trust)."""
    import cv2  # once pictures are made: a pooled worker asks its pool first (issue 47)
    import numpy as np

    data = output.path.read_bytes()
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise PermanentError(
            f"{provider} returned image {n}, which cannot be decoded", reason="ProviderError"
        )
    if output.content_type != PNG:
        ok, encoded = cv2.imencode(".png", decoded)
        if not ok:
            raise PermanentError(f"could not re-encode image {n} as PNG", reason="ProviderError")
        data = encoded.tobytes()
    height, width = decoded.shape[:2]
    return data, int(width), int(height)
