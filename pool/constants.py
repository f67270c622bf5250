"""arq's ``arq.constants`` names, with pool's values.

pool keeps each queue's keys under its own hash tag (``pool:{<queue>}:…``, see pool/storage/keys.py), so the key
prefixes below are those of the default queue. pool keeps no in-progress or retry key (a running job is an entry
of the stream's pending list, its try count a field of its hash): those two prefixes are named for code that
imports them and nothing in pool reads or writes them. The layers never import this module.
"""

from .client.connections import EXPIRES_EXTRA_MS
from .storage.keys import DEFAULT_QUEUE_NAME, QueueKeys
from .utils import TIMEZONE_ENV_VARS

_DEFAULT = QueueKeys(DEFAULT_QUEUE_NAME)

default_queue_name = DEFAULT_QUEUE_NAME
job_key_prefix = _DEFAULT.job("")
result_key_prefix = _DEFAULT.result("")
abort_jobs_ss = _DEFAULT.aborts
in_progress_key_prefix = _DEFAULT.prefix + "in-progress:"  # never used by pool (see above)
retry_key_prefix = _DEFAULT.prefix + "retry:"  # never used by pool (see above)
abort_job_max_age = 60
health_check_key_suffix = ":health-check"  # arq's default health_check_key is the queue name + this
keep_cronjob_progress = 60
timezone_env_vars = TIMEZONE_ENV_VARS
expires_extra_ms = EXPIRES_EXTRA_MS

__all__ = [
    "abort_job_max_age",
    "abort_jobs_ss",
    "default_queue_name",
    "expires_extra_ms",
    "health_check_key_suffix",
    "in_progress_key_prefix",
    "job_key_prefix",
    "keep_cronjob_progress",
    "result_key_prefix",
    "retry_key_prefix",
    "timezone_env_vars",
]
