"""Run arq 0.26.3's own test suite against pool: ``make arq-suite`` (or ``python -m tests.arq_suite``).

It downloads arq's sdist once (``pip download``, cached in build/arq-suite/), copies its tests/ with every
``arq`` import and module reference (``arq.utils``, the logger name ``'arq.worker'``) changed to ``pool``,
and runs them with pytest in their own venv (.venv-arq: arq's pinned test tools, pytest-asyncio 0.23 among them,
which the project's venv must not get) against a private redis-server on a free port. arq's conftest starts
Redis in a docker container; here its three container fixtures are replaced by ones that read that server's
address from the environment, and every connection to port 6379 is refused.

It prints the totals and each failing test with the reason it fails by design (``KNOWN_FAILURES``, also listed
in docs/arq.md). It exits 1 when a test fails that is not in that list, or when a listed one passes (then the
list is out of date); ``-k EXPR`` and other pytest options after ``--`` are passed on.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.redis_server import RedisServer

ARQ_VERSION = "0.26.3"  # the default; --arq-version runs another release's tests (0.27 and 0.28 add no API)
REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "build" / "arq-suite"
SUITE = CACHE / "run"  # holds tests/ (arq's test modules import themselves as tests.*), pytest.ini
VENV_PYTHON = REPO / ".venv-arq" / "bin" / "python"

MODULES = "cli|connections|constants|cron|jobs|logs|typing|utils|version|worker"
REWRITES = [
    (re.compile(r"^(\s*)from arq(?=[. ])", re.M), r"\1from pool"),
    (re.compile(r"^(\s*)import arq\b", re.M), r"\1import pool"),
    (re.compile(rf"\barq\.(?=(?:{MODULES})\b)"), "pool."),
]

# arq's conftest runs Redis in docker (testcontainers): these fixtures take the private server's address instead.
CONTAINER_FIXTURES = re.compile(
    r"@pytest\.fixture\(scope='session'\)\ndef redis_container\(.*?\n\n\n"
    r"@pytest\.fixture\(scope='session'\)\ndef test_redis_host\(.*?\n\n\n"
    r"@pytest\.fixture\(scope='session'\)\ndef test_redis_port\(.*?\n\n\n",
    re.S,
)
PRIVATE_SERVER_FIXTURES = '''def _refuse_6379(connect):
    """The suite's Redis is the private one: a test falling back to Redis's default port must not reach another."""

    def guarded(*args, **kwargs):
        port = kwargs.get("port", args[1] if len(args) > 1 else None)
        address = args[0] if args else kwargs.get("address")
        if port == 6379 or (isinstance(address, tuple) and len(address) > 1 and address[1] == 6379):
            raise ConnectionRefusedError("port 6379 is never used by this suite")
        return connect(*args, **kwargs)

    return guarded


asyncio.open_connection = _refuse_6379(asyncio.open_connection)
socket.create_connection = _refuse_6379(socket.create_connection)


@pytest.fixture(scope='session')
def test_redis_host() -> str:
    return os.environ['ARQ_SUITE_REDIS_HOST']


@pytest.fixture(scope='session')
def test_redis_port() -> int:
    return int(os.environ['ARQ_SUITE_REDIS_PORT'])


'''

PYTEST_INI = """[pytest]
# arq's own settings (its pyproject.toml), but for redis-py's deprecation of an argument arq's conftest passes to
# redis-py itself (newer redis-py than arq 0.26 supports), and for connections (their socket or asyncio
# StreamWriter) closed by the garbage collector: test_jobs.py::test_enqueue_job_nondefault_queue never closes the
# pool it creates (arq's worker closes the pool it is given, pool's does not), and the warning lands on whichever
# later test runs when the collector frees it
testpaths = tests
filterwarnings =
    error
    ignore:Call to '__init__' function with deprecated usage of input argument/s 'retry_on_timeout':DeprecationWarning
    ignore:Exception ignored in.*(socket|StreamWriter):pytest.PytestUnraisableExceptionWarning
asyncio_mode = auto
timeout = 10
"""

_KEYS = "reads or writes arq's private Redis keys; pool's queue is streams under per-queue hash-tagged keys"
_INTERNAL = "drives a private part of arq's Worker"
_PICKLE = "relies on pickle being the default serializer; pool's default is msgpack (pickle is opt-in)"

# Tests that fail by design, with the reason (docs/arq.md explains each group). Those reading arq's private keys
# or driving its Worker's internals are not tests of its public API: the figure docs/arq.md gives is the share of
# the others (all but arq's own skips) that pass.
KNOWN_FAILURES: dict[str, str] = {
    **{
        f"test_cron::test_job_successful[{delay}]": f"{_KEYS} (the in-progress key kept after a cron job)"
        for delay in ("0.0", "0.5", "0.9")
    },
    "test_jobs::test_job_in_progress": f"{_KEYS} (sets the in-progress key by hand)",
    "test_jobs::test_deserialize_info": f"{_KEYS} (overwrites the job key with a string; pool's is a hash)",
    "test_main::test_defer_until": f"{_KEYS} (reads the score from arq's queue sorted set)",
    "test_main::test_defer_by": f"{_KEYS} (reads the score from arq's queue sorted set)",
    "test_worker::test_custom_queue_read_limit": f"{_KEYS} (counts arq's queue sorted set); {_INTERNAL}",
    "test_worker::test_queue_read_limit_equals_max_jobs": f"{_KEYS} (counts arq's queue sorted set); {_INTERNAL}",
    "test_worker::test_many_jobs_expire": f"{_KEYS} (adds ids to arq's queue sorted set by hand)",
    "test_worker::test_remain_keys": f"{_KEYS} (lists them)",
    "test_worker::test_remain_keys_no_results": f"{_KEYS} (lists them)",
    "test_worker::test_remain_keys_keep_results_forever": f"{_KEYS} (lists them)",
    "test_worker::test_remain_keys_keep_results_forever_in_function": f"{_KEYS} (lists them)",
    "test_worker::test_set_health_check_key": f"{_KEYS} (lists them)",
    "test_worker::test_health_check_pass": f"{_KEYS} (sets '<queue>:health-check' by hand; pool's health is one "
    "entry per live worker)",
    "test_cron::test_calculate_next_is_called_with_aware_datetime": f"{_INTERNAL} (run_cron)",
    "test_cron::test_cron_cancelled": f"{_INTERNAL} (patches keep_cronjob_progress); and a CancelledError a job "
    "raises itself is its failure in pool, where arq retries it",
    "test_jobs::test_get_job_result": f"{_INTERNAL} (ArqRedis._get_job_result)",
    "test_worker::test_handle_sig": f"{_INTERNAL} (replaces its task dicts with mocks, handle_sig)",
    "test_worker::test_handle_no_sig": f"{_INTERNAL} (replaces its task dicts with mocks, close() of a worker "
    "that never ran cancels them)",
    "test_worker::test_job_retry_race_condition": f"{_INTERNAL} (start_jobs)",
    "test_worker::test_multi_exec": f"{_INTERNAL} (start_jobs)",
    "test_worker::test_max_bursts_dont_get": f"{_INTERNAL} (_poll_iteration)",
    **{
        f"test_worker::{name}[exception_thrown{i}]": f"{_INTERNAL} (_poll_iteration) and of redis-py "
        "(_disconnect_raise)"
        for name in ("test_worker_crash", "test_worker_retry")
        for i in (0, 1)
    },
    "test_worker::test_worker_signal_completes_job_before_shutting_down": f"{_INTERNAL} "
    "(handle_sig_wait_for_completion, tasks)",
    "test_jobs::test_deserialize_job_raw": f"{_PICKLE} (decodes a pickled payload without naming a deserializer)",
    "test_worker::test_deserialization_error": f"{_PICKLE} (enqueues an argument only pickle can carry)",
    "test_worker::test_incompatible_serializers_1": f"{_PICKLE} (the msgpack.packb payload is readable by pool)",
    "test_worker::test_incompatible_serializers_2": f"{_PICKLE} (pool's payload is readable by msgpack.unpackb)",
    "test_jobs::test_result_when_job_does_not_keep_result": "with keep_result=0, pool still hands the result to a "
    "caller already waiting in Job.result(); arq raises ResultNotFound",
    "test_worker::test_abort_job_before": "pool aborts a job that has not started at once (abort() answers True); "
    "arq waits for a worker to see the request, so abort(timeout=0) times out",
    "test_worker::test_abort_deferred_job_before": "pool aborts a job that has not started at once (abort() "
    "answers True); arq waits for a worker to see the request, so abort(timeout=0) times out",
}


def private(reason: str) -> bool:
    """Whether a test failing for this reason reads arq's private keys or drives its Worker's internals."""
    return reason.startswith((_KEYS, _INTERNAL))


def rewrite(text: str) -> str:
    for pattern, replacement in REWRITES:
        text = pattern.sub(replacement, text)
    return text


def rewrite_conftest(text: str) -> str:
    text, found = CONTAINER_FIXTURES.subn(PRIVATE_SERVER_FIXTURES, text)
    if found != 1:
        raise SystemExit("arq's conftest.py is not as expected: its container fixtures were not found")
    text = text.replace("from testcontainers.redis import RedisContainer\n", "")
    return text.replace("import os\n", "import os\nimport socket\n", 1)


def fetch_sdist(version: str) -> Path:
    sdist = CACHE / f"arq-{version}.tar.gz"
    if not sdist.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        subprocess.run([*command, f"arq=={version}", "-d", str(CACHE)], check=True)
    return sdist


def prepare(version: str, sdist_path: Path) -> None:
    """build/arq-suite/run/tests: arq's tests with its imports mapped to pool."""
    shutil.rmtree(SUITE, ignore_errors=True)
    (SUITE / "tests").mkdir(parents=True)
    prefix = f"arq-{version}/tests/"
    with tarfile.open(sdist_path) as sdist:
        for member in sdist.getmembers():
            if member.isfile() and member.name.startswith(prefix) and member.name.endswith(".py"):
                source = sdist.extractfile(member)
                assert source is not None
                text = rewrite(source.read().decode())
                name = member.name[len(prefix) :]
                if name == "conftest.py":
                    text = rewrite_conftest(text)
                (SUITE / "tests" / name).write_text(text)
    (SUITE / "pytest.ini").write_text(PYTEST_INI)


def outcomes(report: Path) -> dict[str, tuple[str, str]]:
    """test id -> (passed | failed | error | skipped, first line of the message) from pytest's junit report."""
    found: dict[str, tuple[str, str]] = {}
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname", "").removeprefix("tests.")
        test_id = f"{module}::{case.get('name')}" if module else f"{case.get('name')} (collecting)"
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = "failed" if tag == "failure" else tag
                lines = (node.get("message") or "").strip().splitlines()
                message = lines[0][:160] if lines else ""
                break
        if test_id in found and found[test_id][0] != "passed" and outcome == "passed":
            continue  # a teardown error reported beside a passed call
        found[test_id] = (outcome, message)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.arq_suite", description=__doc__.splitlines()[0])
    parser.add_argument("--arq-version", default=ARQ_VERSION, help=f"the arq release whose tests run ({ARQ_VERSION})")
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    args = parser.parse_args(argv)
    if not VENV_PYTHON.exists():
        raise SystemExit(f"{VENV_PYTHON} is missing: run `make arq-suite`, which creates it")
    prepare(args.arq_version, fetch_sdist(args.arq_version))
    report = CACHE / "report.xml"
    with RedisServer() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("POOL_", "ARQ_"))}
        env.update(ARQ_SUITE_REDIS_HOST=server.host, ARQ_SUITE_REDIS_PORT=str(server.port), PYTHONPATH=str(SUITE))
        command = [str(VENV_PYTHON), "-m", "pytest", "-q", "--tb=no", "-p", "no:cacheprovider", f"--junitxml={report}"]
        subprocess.run([*command, *args.pytest_args], cwd=SUITE, env=env, check=False)
    results = outcomes(report)
    counts = {kind: sum(1 for outcome, _ in results.values() if outcome == kind) for kind in ("passed", "failed")}
    counts["failed"] += sum(1 for outcome, _ in results.values() if outcome == "error")
    skipped = sum(1 for outcome, _ in results.values() if outcome == "skipped")
    unexpected = []
    print(f"\narq {args.arq_version}'s test suite on pool")
    for test_id, (outcome, message) in sorted(results.items()):
        if outcome in ("failed", "error"):
            reason = KNOWN_FAILURES.get(test_id)
            if reason is None:
                unexpected.append(test_id)
                print(f"  FAILED (unexpected) {test_id}: {message}")
            else:
                print(f"  failed by design    {test_id}: {reason}")
        elif outcome == "passed" and test_id in KNOWN_FAILURES:
            unexpected.append(test_id)
            print(f"  PASSED (listed as failing by design) {test_id}")
    print(f"arq-suite: {counts['passed']} passed, {counts['failed']} failed, {skipped} skipped")
    public = [
        outcome
        for test_id, (outcome, _) in results.items()
        if outcome != "skipped" and not private(KNOWN_FAILURES.get(test_id, ""))
    ]
    print(
        f"public API: {public.count('passed')} of {len(public)} tests pass "
        f"({len(results) - skipped - len(public)} read arq's private keys or drive its Worker's internals)"
    )
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
