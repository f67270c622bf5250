"""The queue's Lua scripts, loaded from ``pool/storage/lua/``, each with its contract.

Each script is one atomic step of a job's life. They are loaded once per client and run by EVALSHA (redis-py's
``Script`` falls back to EVAL after a restart flushed the script cache). Every key a script touches starts with
the queue's hash-tagged prefix, passed as ARGV[1], so a script stays inside one Redis Cluster slot.

Every script declares in KEYS every key it touches (its header lists them; the scripts build the names of per-job
keys from the prefix, and the caller declares the same names, built by pool/storage/keys.py; on a single Redis,
which checks nothing, the hot path leaves the jobs' own keys out: see RedisQueue.declares_job_keys). On Redis Cluster,
while the queue's slot moves between nodes, Redis checks a call's declared keys before running it and refuses
it whole (TRYAGAIN, ASK: retryable) when they are not all on the node; a key touched but not declared would be
met half way, after the script's first writes, which Redis does not undo (a COMPLETE could ack a job without its
result). So a script never touches a key named by data it reads: that work is its caller's next call, with the
keys declared (COMPLETE leaves the release of parked jobs to SWEEP_PARKED, of dependents to RELEASE_DEPENDENTS,
the registry's tidying to TRIM_FAILED), or the caller reads first and the script acts only on the ids it was
given (PROMOTE, SWEEP_PARKED, HAND_BACK_CONSUMER, ABORT). Nor does a script touch a key after its own commands
may have emptied (deleted) it: during a slot's migration Redis treats a missing key as moved, so that command
would fail half way too. FETCH, which starts the entries it reads, cannot declare their jobs' keys: it is used on
a single Redis only; on a cluster the worker reads and then STARTs (see RedisQueue.fetch).
tests/test_storage_contract.py checks both rules for every script against what the script actually runs.

A job is a hash ``job:<id>`` with fields d (payload), t (attempts started), s (state: d deferred, q queued,
w waiting for dependencies, p parked for a concurrency slot, r running), sc (score: the ms timestamp it is due),
e (consumer and entry it runs from), n (the enqueue call's nonce), w (dependencies left), df (a dependency that
failed), f (function name) and p (priority, absent for 0). Ready jobs are stream entries ``{id: <job_id>}`` (the
entry ENQUEUE writes for a job enqueued on its own also carries d, t, sc and f: see lib/enqueue_one.lua) in the
stream of their priority (a "lane": ``stream`` for 0, ``stream:<p>`` above); an entry stays in the consumer
group's pending list while its job runs, and is acked and deleted only in the same script that records the
result, parks the job or puts it back. That is the whole of invariant 1: no step drops a job.

Functions with ``max_concurrency`` keep the ids of the jobs holding a slot in a set ``running:<fn>``; a job read
when the set is full is parked in the list ``parked:<fn>`` (its entry acked in the same step). When one of that
function's jobs stops running (completes, is retried, handed back or aborted) its slot passes to the oldest
parked job, in the same step, and SWEEP_PARKED, the caller's next call, puts that job back on its lane; every
worker with a limited function also runs SWEEP_PARKED now and then, for slots freed any other way.

Every script is safe to run twice: redis-py retries a command whose connection dropped, even if Redis had
already run it. Acks return 0 the second time, START recognises its entry, ENQUEUE its nonce, and the steps
after COMPLETE find their work done (a dependent is counted off in the step that removes it from the set).
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

# The scripts are real .lua files, so editors and luacheck (``make lint``) read them as Lua. Each script is one
# file under pool/storage/lua/, its contract header (KEYS, ARGV, returns, replay safety) first; the functions several
# scripts share are fragments under pool/storage/lua/lib/. A file names the fragments it calls with include lines,
# ``--@include lib/lanes.lua`` (relative to pool/storage/lua/), each replaced by that fragment's text, its own includes
# resolved first, so a function is defined before the code that calls it; a fragment already in the script is
# not repeated. Files are read with importlib.resources (so an installed wheel works like a checkout) and
# assembled once, here, at import: a missing include fails the import naming the file, not the first EVAL.
LUA_ROOT: Traversable = files(__package__ or "pool") / "lua"
_INCLUDE = re.compile(r"^--@include[ \t]+(\S+)[ \t]*$")


class LuaIncludeError(ValueError):
    """A script's include lines cannot be resolved: a missing file, or fragments that include each other."""


def assemble(name: str, root: Traversable = LUA_ROOT) -> str:
    """The text of the script ``name`` (a path under ``root``) with its include lines resolved, for EVAL."""
    return "".join(_expand(name, root, done=set(), active=[], included_by=None))


def _expand(name: str, root: Traversable, done: set[str], active: list[str], included_by: str | None) -> list[str]:
    """``name``'s lines, each include line replaced by the fragment's expanded text (or by nothing if ``done``)."""
    text = _read(name, root, included_by)
    active.append(name)
    done.add(name)
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        match = _INCLUDE.match(line)
        if match is None:
            out.append(line)
            continue
        fragment = match.group(1)
        if fragment in active:
            cycle = " -> ".join([*active, fragment])
            raise LuaIncludeError(f"{_shown(root, name)}: --@include {fragment} makes a cycle: {cycle}")
        if fragment not in done:
            out.extend(_expand(fragment, root, done, active, included_by=name))
    if out and not out[-1].endswith("\n"):
        out[-1] += "\n"  # a file's last line must not run into the line after its include
    active.pop()
    return out


def _read(name: str, root: Traversable, included_by: str | None) -> str:
    """The file's text; a missing one is a LuaIncludeError naming it (and the file that included it)."""
    path = root.joinpath(*name.split("/"))
    if not path.is_file():
        where = f"{_shown(root, included_by)}: --@include {name}: " if included_by else ""
        raise LuaIncludeError(f"{where}no such Lua file: {_shown(root, name)}")
    return path.read_text(encoding="utf-8")


def _shown(root: Traversable, name: str | None) -> str:
    """A file's name as a reader finds it: under pool/storage/lua/ for the packaged scripts, else under ``root``."""
    return f"pool/storage/lua/{name}" if root is LUA_ROOT else f"{root}/{name}"


ENQUEUE = assemble("enqueue.lua")
START = assemble("start.lua")
FETCH = assemble("fetch.lua")
UNREAD = assemble("unread.lua")
SWEEP_PARKED = assemble("sweep_parked.lua")
COMPLETE = assemble("complete.lua")
REQUEUE = assemble("requeue.lua")
PROMOTE = assemble("promote.lua")
RESTORE_QUEUED = assemble("restore_queued.lua")
HAND_BACK_CONSUMER = assemble("hand_back_consumer.lua")
PRUNE_CONSUMER = assemble("prune_consumer.lua")
ABORT = assemble("abort.lua")
LOCK_EXTEND = assemble("lock_extend.lua")
LOCK_RELEASE = assemble("lock_release.lua")
WRITE_HEALTH = assemble("write_health.lua")
WAIT = assemble("wait.lua")
RELEASE_DEPENDENTS = assemble("release_dependents.lua")
TRIM_FAILED = assemble("trim_failed.lua")

# Every script by its file name: what `python -m pool.storage.scripts --dump` writes and the tests load.
SCRIPTS: dict[str, str] = {
    "enqueue.lua": ENQUEUE,
    "start.lua": START,
    "fetch.lua": FETCH,
    "unread.lua": UNREAD,
    "sweep_parked.lua": SWEEP_PARKED,
    "complete.lua": COMPLETE,
    "requeue.lua": REQUEUE,
    "promote.lua": PROMOTE,
    "restore_queued.lua": RESTORE_QUEUED,
    "hand_back_consumer.lua": HAND_BACK_CONSUMER,
    "prune_consumer.lua": PRUNE_CONSUMER,
    "abort.lua": ABORT,
    "lock_extend.lua": LOCK_EXTEND,
    "lock_release.lua": LOCK_RELEASE,
    "write_health.lua": WRITE_HEALTH,
    "wait.lua": WAIT,
    "release_dependents.lua": RELEASE_DEPENDENTS,
    "trim_failed.lua": TRIM_FAILED,
}


def _lua_constant(script: str, name: str) -> int:
    """A ``local NAME = <int>`` of a script, so Python and Lua share one value, kept where the script uses it."""
    match = re.search(rf"^local {name} = (\d+)$", script, re.MULTILINE)
    if match is None:
        raise LuaIncludeError(f"no 'local {name} = <integer>' line in the assembled script")
    return int(match.group(1))


# How long the marker nonce:<id> of an ENQUEUE call lives (see lib/enqueue_one.lua).
NONCE_TTL_MS = _lua_constant(ENQUEUE, "NONCE_TTL_MS")


class Scripts:
    """The scripts registered on one client; ``redis.register_script`` handles EVALSHA and NOSCRIPT."""

    def __init__(self, redis: Redis) -> None:
        self.enqueue: AsyncScript = redis.register_script(ENQUEUE)
        self.start: AsyncScript = redis.register_script(START)
        self.fetch: AsyncScript = redis.register_script(FETCH)
        self.unread: AsyncScript = redis.register_script(UNREAD)
        self.sweep_parked: AsyncScript = redis.register_script(SWEEP_PARKED)
        self.complete: AsyncScript = redis.register_script(COMPLETE)
        self.requeue: AsyncScript = redis.register_script(REQUEUE)
        self.promote: AsyncScript = redis.register_script(PROMOTE)
        self.hand_back_consumer: AsyncScript = redis.register_script(HAND_BACK_CONSUMER)
        self.abort: AsyncScript = redis.register_script(ABORT)
        self.prune_consumer: AsyncScript = redis.register_script(PRUNE_CONSUMER)
        self.restore_queued: AsyncScript = redis.register_script(RESTORE_QUEUED)
        self.lock_extend: AsyncScript = redis.register_script(LOCK_EXTEND)
        self.lock_release: AsyncScript = redis.register_script(LOCK_RELEASE)
        self.wait: AsyncScript = redis.register_script(WAIT)
        self.write_health: AsyncScript = redis.register_script(WRITE_HEALTH)
        self.release_dependents: AsyncScript = redis.register_script(RELEASE_DEPENDENTS)
        self.trim_failed: AsyncScript = redis.register_script(TRIM_FAILED)


def dump(directory: Path) -> list[Path]:
    """Write every assembled script to ``directory`` (for luacheck, which must see a script with its fragments)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in SCRIPTS.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """``--dump DIR``: write the assembled scripts to DIR (``make luacheck`` calls this, with ``python -c`` as
    ``python -m pool.storage.scripts`` also works but has runpy warn that ``pool`` imported this module first)."""
    parser = argparse.ArgumentParser(
        prog="python -m pool.storage.scripts", description="The queue's Lua scripts, assembled."
    )
    parser.add_argument("--dump", metavar="DIR", type=Path, required=True, help="write each script to DIR/<name>.lua")
    args = parser.parse_args(argv)
    try:
        written = dump(args.dump)
    except OSError as exc:
        print(f"cannot write the scripts to {args.dump}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{len(written)} scripts written to {args.dump}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
