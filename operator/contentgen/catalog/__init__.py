"""The catalog: one document per resource (see document.py), MongoDB in the cluster and an
embedded store on a laptop, behind one interface.

    catalog = open_catalog()            # $CONTENTGEN_CATALOG, else file://./contentgen-data/catalog
    catalog.modify(uid, lambda previous: catalog_document(state, now=..., origin=..., previous=previous))
    page = catalog.find(Filters(owner="alice", type="lora-training"), Sort("createdAt"), Page(20))
    records = [to_record(doc) for doc in page.docs]

Modules: base (the Catalog class, conditional writes), mongo and embedded (the backends), config
(open_catalog), dates (BSON date normalisation), document (the document and its changes), versions
(a record's versions), kinds (what each kind's record and versions hold: one module per kind),
migrate (documents from before versions), queries (the read side), search (the search index, its
ranking and hits: where a transcript says the words), names (what a REF names), records (the
output format; common_record: what every kind's record has), params (parsing user input),
downloads (which artifact, its name, and a link to it), pruning (removing versions), lineage
(where outputs came from and what was made from them), tables (text output).
"""

from .base import INDEXES, AmbiguousReference, Catalog, CatalogUnavailable, WriteConflict
from .common_record import JobRecord
from .config import DEFAULT_CATALOG, ENV, CatalogMissing, catalog_url, open_catalog
from .document import CANCELLED, COLLECTION, DELETED, RUN_PHASES, catalog_document
from .kinds.image_generation import ImageGenerationRecord
from .kinds.lora_evaluation import LoraEvaluationRecord
from .kinds.lora_training import LoraTrainingRecord
from .kinds.transcription import TranscriptionRecord
from .kinds.video_generation import VideoGenerationRecord
from .names import resolve
from .queries import (
    DEFAULT_LIMIT,
    DEFAULT_PRICE_PER_GB_MONTH,
    FILTER_HELP,
    MAX_LIMIT,
    SORT_FIELDS,
    SORT_HELP,
    STATUSES,
    TERMINAL_RUN_PHASES,
    TERMINAL_STATUSES,
    Filters,
    OwnerScope,
    Page,
    ResultPage,
    Sort,
)
from .records import (
    AnyRecord,
    ImagePage,
    JobPage,
    LoraPage,
    RecordPage,
    SignedUrl,
    Stats,
    TranscriptPage,
    record_json,
    to_record,
)
from .resource import ResourceState

__all__ = [
    "CANCELLED",
    "COLLECTION",
    "DEFAULT_CATALOG",
    "DEFAULT_LIMIT",
    "DEFAULT_PRICE_PER_GB_MONTH",
    "DELETED",
    "ENV",
    "FILTER_HELP",
    "INDEXES",
    "MAX_LIMIT",
    "RUN_PHASES",
    "SORT_FIELDS",
    "SORT_HELP",
    "STATUSES",
    "TERMINAL_RUN_PHASES",
    "TERMINAL_STATUSES",
    "AmbiguousReference",
    "AnyRecord",
    "Catalog",
    "CatalogMissing",
    "CatalogUnavailable",
    "Filters",
    "ImageGenerationRecord",
    "ImagePage",
    "JobPage",
    "JobRecord",
    "LoraEvaluationRecord",
    "LoraPage",
    "LoraTrainingRecord",
    "OwnerScope",
    "Page",
    "RecordPage",
    "ResourceState",
    "ResultPage",
    "SignedUrl",
    "Sort",
    "Stats",
    "TranscriptPage",
    "TranscriptionRecord",
    "VideoGenerationRecord",
    "WriteConflict",
    "catalog_document",
    "catalog_url",
    "open_catalog",
    "record_json",
    "resolve",
    "to_record",
]
