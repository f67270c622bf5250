"""Small apps (WorkerSettings classes) that tests run with the real ``pool`` command in a subprocess."""
