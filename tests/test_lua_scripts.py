"""The queue's Lua scripts live in pool/storage/lua/ as .lua files and pool.storage.scripts assembles them at
import: every script assembled loads into a real Redis, include lines resolve in order (each fragment once), a
missing include is an error naming the file, and no script text is left in a Python string."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from redis.asyncio import Redis

from pool.storage import scripts
from pool.storage.scripts import SCRIPTS, LuaIncludeError, Scripts, assemble

LUA_DIR = Path(scripts.__file__).parent / "lua"
SCRIPTS_PY = Path(scripts.__file__)


async def test_every_assembled_script_loads_into_redis(redis_url: str) -> None:
    """SCRIPT LOAD compiles a script without running it: a syntax error in any script or fragment fails here."""
    client = Redis.from_url(redis_url)
    try:
        for name, text in SCRIPTS.items():
            sha = await client.script_load(text)
            assert sha == hashlib.sha1(text.encode()).hexdigest(), name
    finally:
        await client.aclose()


async def test_the_scripts_class_registers_every_assembled_script(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        registered = {attr: script.script for attr, script in vars(Scripts(client)).items()}
    finally:
        await client.aclose()
    assert sorted(registered.values()) == sorted(SCRIPTS.values())
    assert registered["complete"] == scripts.COMPLETE and registered["lock_extend"] == scripts.LOCK_EXTEND


def test_every_script_starts_with_its_contract_header() -> None:
    for name, text in SCRIPTS.items():
        assert text.startswith("-- KEYS:"), f"{name} does not start with its contract header"
        assert "--@include" not in text, f"{name} still has an include line"


def test_the_nonce_ttl_is_the_one_the_enqueue_script_uses() -> None:
    assert scripts.NONCE_TTL_MS == 60_000
    assert f"local NONCE_TTL_MS = {scripts.NONCE_TTL_MS}\n" in scripts.ENQUEUE


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_includes_resolve_recursively_in_order_each_fragment_once(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "main.lua": "-- header\n--@include lib/b.lua\n--@include lib/a.lua\n--@include lib/c.lua\nmain()\n",
            "lib/a.lua": "a()",  # no newline at its end
            "lib/b.lua": "--@include lib/a.lua\nb()\n",
            "lib/c.lua": "--@include lib/b.lua\n--@include lib/a.lua\nc()\n",
        },
    )
    assert assemble("main.lua", root) == "-- header\na()\nb()\nc()\nmain()\n"


def test_a_missing_include_is_an_error_naming_the_file_and_its_includer(tmp_path: Path) -> None:
    root = _write(tmp_path, {"main.lua": "--@include lib/a.lua\n", "lib/a.lua": "--@include lib/gone.lua\na()\n"})
    with pytest.raises(
        LuaIncludeError, match=r"lib/a\.lua: --@include lib/gone\.lua: no such Lua file: .*lib/gone\.lua"
    ):
        assemble("main.lua", root)


def test_a_missing_script_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(LuaIncludeError, match=r"no such Lua file: .*nope\.lua"):
        assemble("nope.lua", tmp_path)


def test_fragments_that_include_each_other_are_refused(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "main.lua": "--@include lib/a.lua\n",
            "lib/a.lua": "--@include lib/b.lua\n",
            "lib/b.lua": "--@include lib/a.lua\n",
        },
    )
    with pytest.raises(
        LuaIncludeError,
        match=r"lib/b\.lua: --@include lib/a\.lua makes a cycle: main\.lua -> lib/a\.lua -> lib/b\.lua -> lib/a\.lua",
    ):
        assemble("main.lua", root)


def test_no_script_text_lives_in_a_python_string() -> None:
    source = SCRIPTS_PY.read_text()
    for lua in ("redis.call", "redis.pcall", "local function", "cmsgpack.unpack"):
        assert lua not in source, f"pool/storage/scripts.py still holds Lua ({lua!r})"


def test_every_lua_file_is_a_script_or_a_fragment_some_script_includes() -> None:
    assert sorted(path.name for path in LUA_DIR.glob("*.lua")) == sorted(SCRIPTS)
    included = {
        match
        for path in [*LUA_DIR.glob("*.lua"), *LUA_DIR.glob("lib/*.lua")]
        for match in re.findall(r"^--@include (\S+)$", path.read_text(), re.MULTILINE)
    }
    assert sorted(f"lib/{path.name}" for path in LUA_DIR.glob("lib/*.lua")) == sorted(included)


def test_every_fragment_function_is_called_by_some_script() -> None:
    """luacheck is told that a script may leave some of a fragment's functions unused; none may be unused by all."""
    everything = "\n".join(SCRIPTS.values())
    for path in LUA_DIR.glob("lib/*.lua"):
        for function in re.findall(r"^local function (\w+)\(", path.read_text(), re.MULTILINE):
            calls = len(re.findall(rf"\b{function}\(", everything)) - everything.count(f"local function {function}(")
            assert calls > 0, f"{function} (lib/{path.name}) is called by no script"
