"""Group commit for ``enqueue_job``: calls made while the client's connections are all busy leave together.

A web application under load calls ``enqueue_job`` from many requests at once, each an ENQUEUE script call of
its own: each pays the request's cost in Redis (a read, a reply, the event loop's turn; about what a PING
costs) and the script call's (its lookup, its KEYS and ARGV tables), and in the client a write and a read.
ENQUEUE takes any number of jobs in one call (that is what ``enqueue_many`` sends), so the calls that arrive
while ``MAX_IN_FLIGHT`` calls are already on their way are held and sent as one batch as soon as one of those
returns: the more callers wait, the fewer requests each of them costs. A lone caller, or a few, is sent at
once, as before: nothing waits for company.

Nothing changes for a caller but the cost: each job keeps its own nonce (a replayed batch creates nothing
twice), its own uniqueness check and its own reply (ENQUEUE answers 1 or 0 per job and raises for none of
them); an error of the whole call (a lost connection after the fall-backs, NotReplicated) reaches every caller
of the batch, as it would have reached each of their own calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ..redis.replication import NotReplicated
from .specs import JobSpec

MAX_IN_FLIGHT = 4  # calls sent at once before later ones wait to be batched (the fast path's connections)

SendBatch = Callable[[list[JobSpec]], Awaitable[list[Any]]]  # one reply per spec, in order (NotReplicated too)


class EnqueueBatcher:
    """Sends single enqueues, batching those that arrive while ``MAX_IN_FLIGHT`` calls are in flight."""

    def __init__(self, send: SendBatch, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._send = send
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self._waiting: list[tuple[JobSpec, asyncio.Future[Any]]] = []
        self._batches: set[asyncio.Task[None]] = set()  # held so a running batch is not garbage-collected

    async def enqueue(self, spec: JobSpec) -> Any:
        """ENQUEUE's reply for ``spec`` (truthy: enqueued), sent now or with the next batch."""
        if self._in_flight < self._max_in_flight:
            try:
                return (await self._run([spec]))[0]
            except NotReplicated as exc:
                exc.replies = [exc.replies]  # the replies of its one call, as enqueue_job alone had them
                raise
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((spec, reply))
        return await reply

    async def _run(self, specs: list[JobSpec]) -> list[Any]:
        self._in_flight += 1
        try:
            return await self._send(specs)
        finally:
            self._in_flight -= 1
            if self._waiting:  # this call's place goes to everything that waited meanwhile
                waiting, self._waiting = self._waiting, []
                batch = asyncio.get_running_loop().create_task(self._run_batch(waiting))
                self._batches.add(batch)
                batch.add_done_callback(self._batches.discard)

    async def _run_batch(self, waiting: list[tuple[JobSpec, asyncio.Future[Any]]]) -> None:
        try:
            replies = await self._run([spec for spec, _ in waiting])
        except NotReplicated as exc:  # written, not confirmed: each caller is told, with its job's reply
            for index, (_, reply) in enumerate(waiting):
                if not reply.done():
                    reply.set_exception(_own_copy(exc, [[exc.replies[index]]]))
            return
        except BaseException as exc:  # every caller of the batch gets what the call raised
            for _, reply in waiting:
                if not reply.done():
                    reply.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
            return
        for (_, reply), value in zip(waiting, replies, strict=True):
            if not reply.done():  # a caller cancelled while waiting: its job was sent all the same
                reply.set_result(value)


def _own_copy(exc: NotReplicated, replies: list[Any]) -> NotReplicated:
    """The batch's NotReplicated for one caller: the same message and count, the replies of its own call (one
    call of one job, as ``enqueue_job`` alone would have got), and a traceback of its own."""
    own = NotReplicated.__new__(NotReplicated)
    own.__dict__.update(exc.__dict__)
    own.args = exc.args
    own.replies = replies
    return own
