"""arq 0.26's import surface under ``pool``: every name arq's own test suite imports, and arq's command line
(``pool.cli.cli``, and arq's flags on ``pool worker``)."""

from __future__ import annotations

import importlib
import pickle
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pool import PoolRedis
from pool.storage.keys import QueueKeys
from tests.worker_utils import worker_env

ARQ_NAMES = {
    "pool": ["ArqRedis", "VERSION", "Retry", "Worker", "check_health", "create_pool", "cron", "func", "run_worker"],
    "pool.connections": ["ArqRedis", "RedisSettings", "create_pool", "log_redis_info"],
    "pool.constants": [
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
    ],
    "pool.cron": ["cron", "next_cron", "CronJob"],
    "pool.jobs": [
        "DeserializationError",
        "Deserializer",
        "Job",
        "JobDef",
        "JobResult",
        "JobStatus",
        "ResultNotFound",
        "SerializationError",
        "Serializer",
        "deserialize_job",
        "deserialize_job_raw",
        "serialize_job",
        "serialize_result",
    ],
    "pool.logs": ["default_log_config"],
    "pool.typing": ["OptionType", "WeekdayOptionType", "SecondsTimedelta", "WorkerCoroutine", "WorkerSettingsType"],
    "pool.utils": [
        "args_to_string",
        "get_tz",
        "import_string",
        "ms_to_datetime",
        "poll",
        "timestamp_ms",
        "to_ms",
        "to_seconds",
        "to_unix_ms",
        "truncate",
    ],
    "pool.version": ["VERSION"],
    "pool.worker": [
        "FailedJobs",
        "Function",
        "JobExecutionFailed",
        "Retry",
        "RetryJob",
        "Worker",
        "async_check_health",
        "check_health",
        "create_worker",
        "func",
        "get_kwargs",
        "run_worker",
    ],
    "pool.cli": ["cli"],
}


@pytest.mark.parametrize("module", sorted(ARQ_NAMES))
def test_every_name_arqs_suite_imports_is_importable_from_pool(module: str) -> None:
    imported = importlib.import_module(module)
    assert [name for name in ARQ_NAMES[module] if not hasattr(imported, name)] == []


def test_the_constants_name_the_default_queues_keys() -> None:
    from pool import constants

    keys = QueueKeys("default")
    assert constants.default_queue_name == "default"
    assert constants.job_key_prefix + "x" == keys.job("x") and constants.result_key_prefix + "x" == keys.result("x")
    assert constants.abort_jobs_ss == keys.aborts and constants.expires_extra_ms == 86_400_000
    assert "OptionType" in importlib.import_module("pool.typing").__all__


def test_arqs_helpers_give_arqs_values() -> None:
    from pool.utils import args_to_string, timestamp_ms, to_ms, truncate

    assert truncate("123456", 4) == "123…"
    assert args_to_string((1, 2, 3), {"e": 5, "d": 4}) == "1, 2, 3, d=4, e=5"
    assert to_ms(42.123_987) == 42124 and abs(timestamp_ms() - to_ms(__import__("time").time())) < 1000


def test_serialize_result_and_deserialize_job_raw_take_arqs_arguments() -> None:
    from pool.jobs import deserialize_job_raw, deserialize_result, serialize_job, serialize_result

    payload = serialize_result("foobar", (1,), {}, 1, 123, True, 42, 123, 124, "testing", "test-queue", "job_1")
    assert payload is not None
    result = deserialize_result(payload, None)
    assert (result.function, result.result, result.queue_name, result.job_id) == ("foobar", 42, "test-queue", "job_1")
    constant = serialize_result(
        "f", (object(),), {}, 1, 1, True, object(), 1, 1, "r", "q", "j", serializer=lambda data: b"0123"
    )
    assert constant == b"0123"
    assert deserialize_job_raw(serialize_job("f", (1,), {"k": 2}, 5, None)) == ("f", (1,), {"k": 2}, None, 5)
    job = pickle.dumps({"f": "g", "a": [2], "k": {}, "t": 4, "et": 6})
    assert deserialize_job_raw(job, deserializer=pickle.loads) == ("g", (2,), {}, 4, 6)


async def test_close_is_arqs_and_pole_delay_warns(redis: PoolRedis) -> None:
    from pool.jobs import Job, ResultNotFound

    job = Job("never", redis)
    with pytest.warns(DeprecationWarning, match='"pole_delay" is deprecated'), pytest.raises(ResultNotFound):
        await job.result(timeout=0.01, pole_delay=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await redis.close(close_connection_pool=True)  # redis-py's own close() is deprecated; arq's is not


@pytest.fixture
def settings_module(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "arq_cli_app.py").write_text(
        "from pool import RedisSettings\n\n"
        "async def foobar(ctx):\n    return 42\n\n"
        "class WorkerSettings:\n"
        "    burst = True\n"
        "    functions = [foobar]\n"
        f"    redis_settings = RedisSettings.from_dsn({redis_url!r})\n\n"
        "log_dict = {'version': 1, 'handlers': {'out': {'class': 'logging.StreamHandler', 'stream': 'ext://sys.stdout'}},"
        " 'loggers': {'pool': {'handlers': ['out'], 'level': 'INFO'}}}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "arq_cli_app.WorkerSettings"


def test_the_arq_cli_runs_a_burst_worker_and_checks_health(settings_module: str) -> None:
    from pool.cli import cli

    runner = CliRunner()
    help_result = runner.invoke(cli, ["--help"])
    assert help_result.exit_code == 0 and help_result.output.startswith("Usage: arq [OPTIONS] WORKER_SETTINGS\n")
    assert runner.invoke(cli, ["-V"]).output.strip() == "pool, version 0.1.0"
    run = runner.invoke(cli, [settings_module, "--custom-log-dict", "arq_cli_app.log_dict"])
    assert run.exit_code == 0, run.output
    assert "Starting worker for 1 functions: foobar" in run.output
    assert "redis_version=" in run.output and "redis at " not in run.output  # arq's start-up lines only
    check = runner.invoke(cli, [settings_module, "--check"])
    assert check.exit_code == 1
    bad = runner.invoke(cli, ["no_such_module_xyz.Settings"])
    assert bad.exit_code == 2 and "cannot import settings" in bad.output


def pool_command(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pool", *args], cwd=cwd, env=worker_env(), capture_output=True, text=True, timeout=60
    )


def test_pool_worker_takes_arqs_flags(settings_module: str, tmp_path: Path) -> None:
    """-V/--version, --no-burst, --check and --custom-log-dict as arq spells them; pool's own forms stay."""
    assert pool_command("-V", cwd=tmp_path).stdout.strip() == "pool, version 0.1.0"
    assert pool_command("--version", cwd=tmp_path).stdout.strip() == "pool, version 0.1.0"
    check = pool_command("worker", settings_module, "--check", cwd=tmp_path)
    assert check.returncode == 1 and "Health check failed" in check.stderr + check.stdout
    logged = pool_command("worker", settings_module, "--custom-log-dict", "arq_cli_app.log_dict", cwd=tmp_path)
    assert logged.returncode == 0 and "Starting worker for 1 functions: foobar" in logged.stdout, logged.stderr
    # pool's own command names the Redis, the queue and the worker at start-up, for its operators
    assert re.search(r"redis at redis://\S+ \(redis_version=.*\), queue 'default', worker \S+:\d+:", logged.stdout)
    missing = pool_command("worker", settings_module, "--custom-log-dict", "arq_cli_app.nothing", cwd=tmp_path)
    assert missing.returncode == 1 and "--custom-log-dict" in missing.stderr and "Traceback" not in missing.stderr
    help_text = pool_command("worker", "--help", cwd=tmp_path).stdout
    assert "--no-burst" in help_text and "--burst" in help_text


def test_no_burst_overrides_the_settings_burst(settings_module: str) -> None:
    from pool.cli.commands import build_parser

    args: Any = build_parser().parse_args(["worker", settings_module, "--no-burst"])
    assert args.burst is False
    assert build_parser().parse_args(["worker", settings_module]).burst is None
