"""Optional integrations with other services, each needing its own extra (``pip install 'pool-queue[sentry]'``).

Nothing in pool's layers imports them: an application opts in by naming one in its settings.
"""
