"""arq's import path for jobs: re-exports ``pool.client.jobs`` (the handle) and ``pool.storage.codecs`` (what a
job and its result are as stored).

``serialize_result`` here has arq's positional signature (``pool.storage.codecs.serialize_result_arq``); pool's
own, keyword-only one is ``pool.storage.codecs.serialize_result``."""

from .client.jobs import Job, JobAborted, JobStatus, ResultNotFound, status_of_state
from .storage.codecs import (
    UNREADABLE,
    JobDef,
    JobResult,
    PayloadTooLarge,
    check_job_size,
    deserialize_job,
    deserialize_job_raw,
    deserialize_result,
    serialize_job,
    unreadable_result,
)
from .storage.codecs import serialize_result_arq as serialize_result
from .storage.serializers import DeserializationError, Deserializer, SerializationError, Serializer

__all__ = [
    "UNREADABLE",
    "DeserializationError",
    "Deserializer",
    "Job",
    "JobAborted",
    "JobDef",
    "JobResult",
    "JobStatus",
    "PayloadTooLarge",
    "ResultNotFound",
    "SerializationError",
    "Serializer",
    "check_job_size",
    "deserialize_job",
    "deserialize_job_raw",
    "deserialize_result",
    "serialize_job",
    "serialize_result",
    "status_of_state",
    "unreadable_result",
]
