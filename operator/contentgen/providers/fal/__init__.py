"""fal.ai: LoRA training and image generation through fal's queue, with the fal-client SDK.

The queue (https://fal.ai/docs/documentation/model-apis/inference/queue): POST queue.fal.run/{app}
answers {request_id, status_url, response_url, cancel_url}; GET .../requests/{id}/status?logs=1 is
IN_QUEUE (with queue_position), IN_PROGRESS (with logs) or COMPLETED (with error and error_type
when the request failed); GET .../requests/{id} is the result, or the failure's status and detail
(https://fal.ai/docs/documentation/model-apis/errors, .../request-errors). Local files go to fal's
CDN first (https://fal.ai/docs/documentation/model-apis/fal-cdn).

Every request id is saved in the checkpoint right after the submit, so a retried pod polls the
request it already paid for instead of submitting it again.
"""

from .provider import DEFAULT_TRAINING_APP, IMAGE_APPS, KEY_ENV, FalProvider, Limits

__all__ = ["DEFAULT_TRAINING_APP", "IMAGE_APPS", "KEY_ENV", "FalProvider", "Limits"]
