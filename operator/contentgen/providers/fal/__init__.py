"""fal.ai: LoRA training, image and video generation through fal's queue, with the fal-client SDK.

The queue (https://fal.ai/docs/documentation/model-apis/inference/queue): POST queue.fal.run/{app}
answers {request_id, status_url, response_url, cancel_url}; GET .../requests/{id}/status?logs=1 is
IN_QUEUE (with queue_position), IN_PROGRESS (with logs) or COMPLETED (with error and error_type
when the request failed); GET .../requests/{id} is the result, or the failure's status and detail
(https://fal.ai/docs/documentation/model-apis/errors, .../request-errors). Local files go to fal's
CDN first (https://fal.ai/docs/documentation/model-apis/fal-cdn).

Billing (https://fal.ai/docs/documentation/model-apis/pricing): "You pay only for successful
outputs, and you are never charged for server errors or time spent waiting in the queue." So a
request is paid once it succeeds, and queue.py makes each one once: the intent to submit is
checkpointed before the submit leaves, a lost answer is looked up in fal's request list
(history.py) instead of being sent again, and the output URLs are checkpointed the moment fal
returns them. Uploads to fal's CDN are not billed and are simply retried.
"""

from .errors import KEY_ENV
from .provider import IMAGE_APPS, MAX_IMAGES_PER_REQUEST, FalProvider, Limits

__all__ = ["IMAGE_APPS", "KEY_ENV", "MAX_IMAGES_PER_REQUEST", "FalProvider", "Limits"]
