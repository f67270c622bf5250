"""Redis access, the lowest layer: settings and URL forms, the short path for scripts (fastpath), auto-pipelining,
blocking reads under a socket timeout, which errors are worth retrying, and the TLS probe. Nothing here knows
about queues or jobs."""
