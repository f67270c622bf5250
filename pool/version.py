"""pool's version (arq's ``arq.version.VERSION`` path)."""

VERSION = "0.1.0"
