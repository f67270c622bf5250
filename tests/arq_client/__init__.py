"""Code run by arq itself (0.26.3, in its own venv, ``make arq-client``), never imported by pool's tests."""
