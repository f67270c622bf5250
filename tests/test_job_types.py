"""Dataclasses and pydantic models as job arguments and results, with the default (msgpack) serializer.

They are stored as a type name and their fields, and rebuilt only into the types a worker (``job_types``) or a
client (``create_pool(job_types=...)``) registered: a name in the data never imports anything.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest

from pool import Job, PoolRedis, RedisSettings, create_pool, func
from pool.jobs import DeserializationError
from pool.storage.serializers import (
    MAX_NESTING,
    NestingTooDeep,
    UnregisteredType,
    msgpack_deserializer,
    msgpack_deserializer_for,
    msgpack_serializer,
)
from pool.worker import FailedJobs
from pool.worker.checks import SettingsError
from tests.worker_utils import make_worker, run_burst


@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass(frozen=True)
class Order:
    order_id: str
    at: datetime
    corner: Point
    tags: list[str] = dataclasses.field(default_factory=list)
    total: int = dataclasses.field(init=False, default=0)  # computed, not stored

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", len(self.tags))


async def describe_order(ctx: dict[str, Any], order: Order) -> Point:
    assert isinstance(order, Order) and isinstance(order.corner, Point)
    return Point(order.corner.x + order.total, order.corner.y)


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


ORDER = Order("o-1", datetime(2026, 5, 1, 12, tzinfo=UTC), Point(3, 4), ["a", "b"])


async def test_a_dataclass_argument_is_rebuilt_by_a_worker_that_registered_it(redis_url: str) -> None:
    """The client needs no registration to send one; the worker rebuilds the dataclass (nested ones too) and its
    return value, a dataclass, reads back as one on a client that registered it (and the arguments' types: a
    result record keeps the job's arguments)."""
    client = await create_pool(RedisSettings.from_dsn(redis_url), job_types=[Order, Point])
    try:
        job = await client.enqueue_job("describe_order", ORDER)
        assert job is not None
        worker = await run_burst(redis_url, functions=[describe_order], job_types=[Order, Point])
        assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)
        assert await job.result(timeout=5) == Point(5, 4)
        info = await job.info()
        assert info is not None and info.args == (ORDER,) and info.args[0].total == 2
    finally:
        await client.aclose()


async def test_a_dataclass_the_worker_did_not_register_fails_that_job_with_a_clear_error(
    redis: PoolRedis, redis_url: str
) -> None:
    """The job fails with the type's name and how to register it; the worker goes on with the next job."""
    failed = await redis.enqueue_job("describe_order", ORDER)
    fine = await redis.enqueue_job("add", 1, 2)
    assert failed is not None and fine is not None
    with pytest.raises(FailedJobs) as info:
        await make_worker(redis_url, functions=[describe_order, add], job_types=[Point], burst=True).run_check()
    assert info.value.count == 1
    error = (await failed.result_info()).result  # type: ignore[union-attr]
    assert isinstance(error, DeserializationError)
    assert f"{__name__}.Order is not a registered job type" in str(error) and "job_types" in str(error)
    assert await fine.result(timeout=5) == 3


def test_a_type_name_in_the_data_is_never_imported() -> None:
    """Data naming a module that is not loaded decodes to UnregisteredType; the module stays unimported."""
    fields = msgpack.packb(["tests.job_types_never_imported.Evil", {"a": 1}], use_bin_type=True)
    payload = msgpack.packb({"r": msgpack.ExtType(9, fields)}, use_bin_type=True)
    for deserializer in (msgpack_deserializer, msgpack_deserializer_for([Point])):
        with pytest.raises(UnregisteredType, match=r"tests\.job_types_never_imported\.Evil is not a registered"):
            deserializer(payload)
    assert "tests.job_types_never_imported" not in sys.modules


def test_a_registered_name_with_fields_that_do_not_fit_is_a_deserialization_error() -> None:
    fields = msgpack.packb([f"{__name__}.Point", {"x": 1, "nope": 2}], use_bin_type=True)
    with pytest.raises(DeserializationError, match=rf"cannot rebuild {__name__}.Point: TypeError"):
        msgpack_deserializer_for([Point])(msgpack.packb({"r": msgpack.ExtType(9, fields)}, use_bin_type=True))


def test_dataclasses_nested_deeper_than_the_limit_are_refused() -> None:
    @dataclasses.dataclass
    class Node:
        child: Any

    value: Any = None
    for _ in range(MAX_NESTING + 1):
        value = Node(value)
    with pytest.raises(NestingTooDeep, match="nested more than"):
        msgpack_serializer({"a": [value]})


def test_job_types_must_be_dataclasses_or_models_and_not_with_a_custom_deserializer(redis_url: str) -> None:
    with pytest.raises(SettingsError, match="job_types: <class 'int'> is not a dataclass nor a pydantic model"):
        make_worker(redis_url, functions=[add], job_types=[int])
    with pytest.raises(SettingsError, match="not with a job_deserializer"):
        make_worker(redis_url, functions=[add], job_types=[Point], job_deserializer=msgpack_deserializer)


async def test_a_pydantic_model_argument_is_rebuilt_and_validated(redis: PoolRedis, redis_url: str) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Customer(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        name: str
        since: datetime
        corner: Point

    async def greet(ctx: dict[str, Any], customer: Any) -> str:
        assert isinstance(customer, Customer)
        return f"{customer.name} {customer.since.year} {customer.corner.x}"

    customer = Customer(name="Ada", since=datetime(2020, 1, 2, tzinfo=UTC), corner=Point(7, 8))
    job = await redis.enqueue_job("greet", customer)
    assert job is not None
    worker = await run_burst(redis_url, functions=[func(greet, name="greet")], job_types=[Customer])
    assert worker.jobs_complete == 1
    client = await create_pool(RedisSettings.from_dsn(redis_url), job_types=[Customer])
    try:  # the result record holds the argument: read with the model registered
        assert await Job(job.job_id, client, _deserializer=client.job_deserializer).result(timeout=5) == "Ada 2020 7"
    finally:
        await client.aclose()
