"""Benchmarks: ``pmm bench`` (``bench.runner.main``). Each ``bench.<name>`` module has ``run(quick) -> list[Result]``;
``bench.common`` holds the result row, the table printer and ``artifacts/bench/latest.json``."""
