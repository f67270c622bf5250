"""arq's import path for jobs: re-exports ``pool.client.jobs`` (the handle) and ``pool.storage.codecs`` (what a
job and its result are as stored)."""

from .client.jobs import Job, JobAborted, JobStatus, ResultNotFound, status_of_state
from .storage.codecs import (
    UNREADABLE,
    JobDef,
    JobResult,
    PayloadTooLarge,
    check_job_size,
    deserialize_job,
    deserialize_result,
    serialize_job,
    serialize_result,
    unreadable_result,
)
from .storage.serializers import DeserializationError, SerializationError

__all__ = [
    "UNREADABLE",
    "DeserializationError",
    "Job",
    "JobAborted",
    "JobDef",
    "JobResult",
    "JobStatus",
    "PayloadTooLarge",
    "ResultNotFound",
    "SerializationError",
    "check_job_size",
    "deserialize_job",
    "deserialize_result",
    "serialize_job",
    "serialize_result",
    "status_of_state",
    "unreadable_result",
]
