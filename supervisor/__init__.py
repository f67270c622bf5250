"""The process manager: ``pool start --procs N app.WorkerSettings`` (imports pool, never the reverse)."""
