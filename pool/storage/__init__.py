"""The storage layer: every Redis command and script a queue issues, written once.

``keys`` names every key of a queue, ``serializers`` and ``codecs`` encode what is stored, ``scripts`` loads
the Lua of ``lua/``. ``ops`` holds each operation off the per-job hot path as a generator that yields batches
of requests and gets their replies back, free of I/O; ``drivers`` runs one on an async client (``run``) or a
sync one (``run_sync``); ``sync.SyncQueue`` is the supervisor's facade over the same ops. The hot path
(enqueue, fetch, start, complete, requeue) stays in ``queue.RedisQueue`` as direct script calls, so it costs
nothing extra.
"""
