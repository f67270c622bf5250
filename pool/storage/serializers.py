"""Serializers for job payloads and results.

msgpack is the default because it is safe: reading queue data never runs code. Pickle is opt-in (pass
``pickle.dumps``/``pickle.loads`` as ``job_serializer``/``job_deserializer``), since unpickling data from Redis is
code execution for whoever can write to that Redis.

The msgpack encoding keeps the common Python types a job passes around (datetimes, dates, timedeltas, UUIDs,
Decimals, sets, bytes) and exceptions. An exception is rebuilt on read only as an instance of a class that is
already imported in the reading process; otherwise it comes back as ``JobExecutionFailed`` with the original type
name and message. No module is ever imported because the data names it.

Dataclasses and pydantic models (when pydantic is imported) are encoded as their type's name and their fields.
They are rebuilt on read only into the types the reader registered (``job_types`` on the worker and on
``create_pool``: see ``msgpack_deserializer_for``); the name in the data only picks one of those. Any other name
is a ``DeserializationError`` (the job fails with the reason; the worker goes on), never an import.

Nesting through the extension types is bounded (``MAX_NESTING``) both ways. An exception (or set) is packed as
its own msgpack document inside its parent's, so decoding one nested in another runs msgpack's C unpacker inside
itself, with a large C frame each time: a few hundred levels (an exception wrapping an exception ... 6 KB of
data) overflow the C stack and kill the process before Python's recursion limit can stop it: ~200 levels on an
8 MiB main thread, ~40 on a 512 KiB thread (macOS's default for threads); 16 leaves a wide margin. Encoding a deeper
value raises ``NestingTooDeep`` (the enqueue is refused, or the result is recorded as unserializable); decoding
one raises it before going a level too far (that job fails with the reason).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import functools
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

import msgpack

Serializer = Callable[[dict[str, Any]], bytes]
Deserializer = Callable[[bytes], dict[str, Any]]


class SerializationError(RuntimeError):
    """A value could not be encoded: raised to the caller at enqueue time, or recorded as a job's failure."""


class DeserializationError(SerializationError):
    """Stored bytes could not be decoded: the job fails with this error and the worker goes on."""


class NestingTooDeep(SerializationError):
    """A value nests exceptions or sets deeper than ``MAX_NESTING``: refused when encoding and when decoding."""


class JobExecutionFailed(RuntimeError):
    """Stands in for a job's exception whose class is not importable (or not rebuildable) in this process, and
    records failures around a job (not found, expired, max retries). Equal when the messages are (arq's)."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JobExecutionFailed):
            return self.args == other.args
        return False

    def __hash__(self) -> int:  # equal ones hash alike (arq's is unhashable)
        try:
            return hash(self.args)
        except TypeError:  # an unhashable argument
            return id(self)


_packers = threading.local()  # msgpack_serializer's Packer, one per thread
_nesting = threading.local()  # how many extension values deep the current encode / decode is, per thread
MAX_NESTING = 16  # exceptions / sets inside one another: see the module docstring
_PACKER_KEEP_BYTES = 1 << 20  # a Packer that packed more than this is dropped (its buffer keeps its size)

_EXT_EXCEPTION = 1
_EXT_DATETIME = 2
_EXT_DATE = 3
_EXT_TIMEDELTA = 4
_EXT_UUID = 5
_EXT_DECIMAL = 6
_EXT_SET = 7
_EXT_TIME = 8
_EXT_OBJECT = 9  # a dataclass or pydantic model: [type name, fields]

ExtHook = Callable[[int, bytes], Any]


@contextlib.contextmanager
def _nested() -> Iterator[None]:
    """One level deeper into extension values (a nested pack or unpack call); raise past MAX_NESTING."""
    depth = getattr(_nesting, "depth", 0)
    if depth >= MAX_NESTING:
        raise NestingTooDeep(
            f"value nested more than {MAX_NESTING} levels deep (exceptions, sets, dataclasses or models)"
        )
    _nesting.depth = depth + 1
    try:
        yield
    finally:
        _nesting.depth = depth


def _encode_exception(exc: BaseException) -> bytes:
    cls = type(exc)
    try:
        args = msgpack.packb(list(exc.args), default=_default, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        args = msgpack.packb([str(exc)], use_bin_type=True)
    return msgpack.packb([cls.__module__, cls.__qualname__, args, str(exc)], use_bin_type=True)


def _decode_exception(data: bytes, ext_hook: ExtHook) -> BaseException:
    module_name, qualname, packed_args, message = msgpack.unpackb(data, raw=False)
    args = msgpack.unpackb(packed_args, raw=False, ext_hook=ext_hook, strict_map_key=False)
    cls: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        cls = getattr(cls, part, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            return cls(*args)
        except Exception:
            pass
    name = qualname if module_name == "builtins" else f"{module_name}.{qualname}"
    return JobExecutionFailed(f"{name}: {message}")


def _default(obj: Any) -> msgpack.ExtType:
    if isinstance(obj, BaseException):
        with _nested():
            return msgpack.ExtType(_EXT_EXCEPTION, _encode_exception(obj))
    if isinstance(obj, dt.datetime):
        return msgpack.ExtType(_EXT_DATETIME, obj.isoformat().encode())
    if isinstance(obj, dt.date):
        return msgpack.ExtType(_EXT_DATE, obj.isoformat().encode())
    if isinstance(obj, dt.time):
        return msgpack.ExtType(_EXT_TIME, obj.isoformat().encode())
    if isinstance(obj, dt.timedelta):
        return msgpack.ExtType(_EXT_TIMEDELTA, msgpack.packb([obj.days, obj.seconds, obj.microseconds]))
    if isinstance(obj, uuid.UUID):
        return msgpack.ExtType(_EXT_UUID, obj.bytes)
    if isinstance(obj, decimal.Decimal):
        return msgpack.ExtType(_EXT_DECIMAL, str(obj).encode())
    if isinstance(obj, (set, frozenset)):
        with _nested():
            return msgpack.ExtType(_EXT_SET, msgpack.packb(list(obj), default=_default, use_bin_type=True))
    fields = _object_fields(obj)
    if fields is not None:
        with _nested():
            packed = msgpack.packb([type_name(type(obj)), fields], default=_default, use_bin_type=True)
            return msgpack.ExtType(_EXT_OBJECT, packed)
    raise TypeError(f"cannot serialize object of type {type(obj).__qualname__}")


def type_name(cls: type) -> str:
    """The name a dataclass or model is stored under: ``module.qualname``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _object_fields(obj: Any) -> dict[str, Any] | None:
    """The fields of a dataclass instance (those its ``__init__`` takes) or of a pydantic model (as
    ``model_validate`` reads them back); None for anything else. pydantic is looked up, never imported: a model
    exists only if pydantic is already imported."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}
    if _is_pydantic_model(type(obj)):
        return cast(dict[str, Any], obj.model_dump(by_alias=True, round_trip=True))
    return None


class UnregisteredType(DeserializationError):
    """Data names a dataclass or model this process did not register in ``job_types``: it is not rebuilt."""


Rebuild = Callable[[dict[str, Any]], Any]


def job_type_registry(job_types: Iterable[type]) -> dict[str, Rebuild]:
    """How to rebuild each registered type, by the name it is stored under. Raises TypeError for a type that is
    neither a dataclass nor a pydantic model, ValueError for two types with the same name."""
    if isinstance(job_types, (str, bytes, type)) or not isinstance(job_types, Iterable):
        raise TypeError(f"job_types must be a list of dataclasses or pydantic models, got {job_types!r}")
    registry: dict[str, Rebuild] = {}
    classes: dict[str, type] = {}
    for cls in job_types:
        rebuild: Rebuild
        if isinstance(cls, type) and dataclasses.is_dataclass(cls):
            rebuild = functools.partial(_call_with_fields, cls)
        elif isinstance(cls, type) and callable(getattr(cls, "model_validate", None)) and _is_pydantic_model(cls):
            rebuild = cls.model_validate  # type: ignore[attr-defined]
        else:
            raise TypeError(f"job_types: {cls!r} is not a dataclass nor a pydantic model")
        name = type_name(cls)
        if classes.get(name, cls) is not cls:
            raise ValueError(f"job_types: two types are named {name!r}")
        registry[name], classes[name] = rebuild, cls
    return registry


def _is_pydantic_model(cls: type) -> bool:
    base = getattr(sys.modules.get("pydantic"), "BaseModel", None)
    return isinstance(base, type) and issubclass(cls, base)


def _call_with_fields(cls: type, fields: dict[str, Any]) -> Any:
    return cls(**fields)


def _rebuild(data: bytes, ext_hook: ExtHook, registry: Mapping[str, Rebuild]) -> Any:
    decoded = msgpack.unpackb(data, raw=False, ext_hook=ext_hook, strict_map_key=False)
    if not isinstance(decoded, list) or len(decoded) != 2 or not isinstance(decoded[0], str):
        raise DeserializationError("malformed dataclass or model value")
    name, fields = decoded
    rebuild = registry.get(name)
    if rebuild is None:
        raise UnregisteredType(
            f"{name} is not a registered job type: list it in job_types (the worker's WorkerSettings.job_types, "
            "create_pool(job_types=...)) to rebuild it"
        )
    if not isinstance(fields, dict) or not all(isinstance(key, str) for key in fields):
        raise DeserializationError(f"malformed fields for {name}")
    try:
        return rebuild(fields)
    except Exception as exc:
        raise DeserializationError(f"cannot rebuild {name}: {type(exc).__name__}: {exc}") from exc


def _make_ext_hook(registry: Mapping[str, Rebuild]) -> ExtHook:
    """The msgpack ext_hook that decodes pool's extension types, rebuilding dataclasses and models from
    ``registry`` only."""

    def ext_hook(code: int, data: bytes) -> Any:
        if code == _EXT_EXCEPTION:
            with _nested():
                return _decode_exception(data, ext_hook)
        if code == _EXT_DATETIME:
            return dt.datetime.fromisoformat(data.decode())
        if code == _EXT_DATE:
            return dt.date.fromisoformat(data.decode())
        if code == _EXT_TIME:
            return dt.time.fromisoformat(data.decode())
        if code == _EXT_TIMEDELTA:
            days, seconds, micros = msgpack.unpackb(data)
            return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
        if code == _EXT_UUID:
            return uuid.UUID(bytes=data)
        if code == _EXT_DECIMAL:
            return decimal.Decimal(data.decode())
        if code == _EXT_SET:
            with _nested():
                return set(msgpack.unpackb(data, raw=False, ext_hook=ext_hook, strict_map_key=False))
        if code == _EXT_OBJECT:
            with _nested():
                return _rebuild(data, ext_hook, registry)
        return msgpack.ExtType(code, data)

    return ext_hook


_ext_hook = _make_ext_hook({})  # the default: no dataclass or model is rebuilt


def msgpack_serializer(obj: dict[str, Any]) -> bytes:
    """The default serializer. It reuses one Packer per thread: ``msgpack.packb`` builds a new one on every
    call, which cost more than packing a small job (2.2 µs against 0.8 here). Per thread because sync jobs
    run in threads; msgpack resets a Packer's buffer when a pack fails, so a bad value leaves it clean."""
    try:
        packer = _packers.packer
    except AttributeError:
        packer = _packers.packer = msgpack.Packer(default=_default, use_bin_type=True, datetime=False)
    packed = cast(bytes, packer.pack(obj))
    if len(packed) > _PACKER_KEEP_BYTES:  # its buffer grew to this size and would stay so: let it go
        del _packers.packer
    return packed


def msgpack_deserializer(data: bytes) -> dict[str, Any]:
    """The default deserializer: never imports or runs code named by the data."""
    obj = msgpack.unpackb(data, raw=False, ext_hook=_ext_hook, strict_map_key=False)
    if not isinstance(obj, dict):
        raise ValueError(f"expected a map, got {type(obj).__name__}")
    return obj


def msgpack_deserializer_for(job_types: Iterable[type]) -> Deserializer:
    """The default deserializer, which also rebuilds the dataclasses and pydantic models in ``job_types`` (what
    ``job_types=[...]`` on a Worker or ``create_pool`` uses). Only those: a name in the data picks one of them
    or fails the decode (``UnregisteredType``); it never imports anything."""
    ext_hook = _make_ext_hook(job_type_registry(job_types))

    def deserializer(data: bytes) -> dict[str, Any]:
        obj = msgpack.unpackb(data, raw=False, ext_hook=ext_hook, strict_map_key=False)
        if not isinstance(obj, dict):
            raise ValueError(f"expected a map, got {type(obj).__name__}")
        return obj

    return deserializer


def with_job_types(job_types: Iterable[type] | None, deserializer: Deserializer | None) -> Deserializer | None:
    """The deserializer a Worker or ``create_pool`` given ``job_types`` uses; ``job_types`` works with pool's
    msgpack only (a custom deserializer decodes such types itself)."""
    if job_types is None:
        return deserializer
    if deserializer is not None:
        raise ValueError("job_types works with pool's default msgpack serializer, not with a job_deserializer")
    return msgpack_deserializer_for(job_types)
