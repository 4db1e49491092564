"""ImageGeneration's models of the newer picture families (api/image.py): each loads its own
family's LoRAs; fal draws z-image-turbo (its app's page read), the other models are drawn offline
until fal's apps for them are read; provider cluster draws each from its base's staged directory,
its transformer in bf16 (no 8- or 4-bit memory plan); each refusal at admission on its field in one
line, by the CRD's rules and `contentgen validate` alike; and the likeness of a family's LoRA is
drawn with its family's model, where its provider draws it."""

from __future__ import annotations

from typing import Any

import pytest

from contentgen.api import KINDS
from contentgen.api.base_models import BASE_MODELS, likeness_model
from contentgen.api.crd import crd
from contentgen.api.manifests import Document
from contentgen.api.validation import validate_document
from tests.admission import admit

LORA = [{"loraRef": {"name": "demo-avatar-z"}}]
FOUR = [{"loraRef": {"name": f"demo-avatar-{n}"}} for n in range(4)]


def picture(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "ImageGeneration",
        "metadata": {"name": "p"},
        "spec": {"owner": "demo-user", "prompt": "dmavatar", **spec},
    }


REFUSED = {
    "qwen-image-2512 on fal": ({"model": "qwen-image-2512"}, "spec.model", "fal draws"),
    "an 8-bit z-image-turbo on the cluster": (
        {"model": "z-image-turbo", "provider": "cluster", "memoryPlan": "int8"},
        "spec.memoryPlan",
        "use auto, bf16 or offload with this model",
    ),
    "flux-pro on the cluster": (
        {"model": "flux-pro", "provider": "cluster"},
        "spec.model",
        "no open weights",
    ),
    "loras on flux-dev": ({"model": "flux-dev", "loras": LORA}, "spec.loras", "a model that loads them"),
    # fal's app page: up to 3 LoRAs; refused at admission, before the run starts on it
    "four loras on fal's z-image-turbo": (
        {"model": "z-image-turbo", "loras": FOUR},
        "spec.loras",
        "takes at most 3 LoRAs",
    ),
}
ADMITTED = {
    "z-image-turbo with a LoRA on fal": {"model": "z-image-turbo", "loras": LORA},
    "z-image-turbo with three LoRAs on fal": {"model": "z-image-turbo", "loras": FOUR[:3]},
    "z-image-turbo with four LoRAs offline": {"model": "z-image-turbo", "provider": "offline", "loras": FOUR},
    "klein 4B with a LoRA offline": {"model": "flux.2-klein-4b", "provider": "offline", "loras": LORA},
    "flux-lora as before": {"model": "flux-lora", "loras": LORA},
    "z-image-turbo with a LoRA on the cluster": {
        "model": "z-image-turbo",
        "provider": "cluster",
        "loras": LORA,
    },
    "qwen-image-2512 offloaded on the cluster": {
        "model": "qwen-image-2512",
        "provider": "cluster",
        "memoryPlan": "offload",
    },
    "an 8-bit flux-dev on the cluster": {"model": "flux-dev", "provider": "cluster", "memoryPlan": "int8"},
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_model_its_provider_does_not_draw_is_refused_on_its_field(case: str) -> None:
    spec, field, words = REFUSED[case]
    obj = picture(**spec)
    _, errors = admit(crd(KINDS["ImageGeneration"]), obj)
    assert [m for path, m in errors if path == field and words in m], errors
    problems = [(p.path, p.reason) for p in validate_document(Document("p.yaml", 1, obj)).problems]
    assert [r for path, r in problems if path == field and words in r], problems


@pytest.mark.parametrize("case", list(ADMITTED))
def test_a_model_its_provider_draws_is_admitted(case: str) -> None:
    obj = picture(**ADMITTED[case])
    assert admit(crd(KINDS["ImageGeneration"]), obj)[1] == []
    assert not validate_document(Document("p.yaml", 1, obj)).problems


def test_a_picture_familys_likeness_is_drawn_by_its_own_model() -> None:
    assert likeness_model("flux.1") == likeness_model("") == "flux-lora"
    assert likeness_model("z-image-turbo") == "z-image-turbo"
    assert likeness_model("qwen-image-2512") == "qwen-image-2512"
    assert likeness_model("wan-2.2-t2v-a14b") == "flux-lora"  # a video LoRA's clips: its trainer's
    assert all(m.licence is not None for m in BASE_MODELS.values())  # every row says its licence
    pictures = [m for m in BASE_MODELS.values() if not m.video and m.name != "flux.1"]
    assert all(m.recommended is not None for m in pictures)


def test_the_cluster_draws_each_picture_familys_models_from_its_bases_directory() -> None:
    from contentgen.api.base_models import drawn_from, likeness_drawn
    from contentgen.api.image import MODEL_DEFAULTS

    staged = {model: getattr(drawn_from(model), "cluster_dir", None) for model in MODEL_DEFAULTS}
    assert staged == {
        "z-image-turbo": "Z-Image-Turbo",
        "z-image": "Z-Image",
        "qwen-image-2512": "Qwen-Image-2512",
        "flux.2-klein-4b": "FLUX.2-klein-base-4B",
        "flux.2-klein-9b": "FLUX.2-klein-base-9B",
    }
    assert drawn_from("flux-dev") is None  # the cluster's settings name FLUX.1's directories
    assert likeness_drawn("z-image-base", "cluster") == "z-image"
    assert likeness_drawn("qwen-image-2512", "cluster") == "qwen-image-2512"
    assert likeness_drawn("qwen-image-2512", "fal") is None  # fal's app for it not read


def test_the_http_apis_base_models_say_each_licence() -> None:
    from contentgen.httpapi.routes.base_models import entry
    from contentgen.pricing import PriceTable

    klein9 = entry(BASE_MODELS["flux.2-klein-9b"], 1000, PriceTable())
    assert (klein9.licence, klein9.commercial) == ("FLUX Non-Commercial License", False)
    qwen = entry(BASE_MODELS["qwen-image-2512"], 1000, PriceTable())
    assert (qwen.licence, qwen.commercial) == ("Apache-2.0", True)
    # fal's page: $0.00095 a step; no likeness pictures (fal's app for qwen-image-2512 was not read)
    fal = next(p for p in qwen.providers if p.provider == "fal")
    assert fal.estimate_usd == pytest.approx(0.95) and "megapixel" not in fal.estimate
    # Z-Image-Turbo's likeness pictures drawn by fal's z-image-turbo app, at its price
    z = next(
        p for p in entry(BASE_MODELS["z-image-turbo"], 1000, PriceTable()).providers if p.provider == "fal"
    )
    assert "fal-ai/z-image-turbo-trainer-v2 x $0.00085" in z.estimate
    assert "megapixels of fal-ai/z-image/turbo/lora x $0.0085" in z.estimate
