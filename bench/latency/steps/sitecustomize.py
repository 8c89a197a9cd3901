"""Put first on the execute worker's ``PYTHONPATH`` by ``run.py --steps`` (that worker only):
its steps timed (``bench.latency.step_marks``)."""

from bench.latency import step_marks

step_marks.install()
