"""arq 0.26.3's documentation examples (docs/examples/ in its sdist, MIT licence: LICENSE here), with ``arq``
changed to ``pool`` in their imports and nothing else. tests/test_arq_examples.py runs each one; docs/arq.md lists
the examples left out and why."""
