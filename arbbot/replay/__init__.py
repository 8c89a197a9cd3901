"""Record and replay: the scan stage's blocks written to a recording (``recording``), and
backtests that run them through the same path, ml and execute code in paper mode
(``backtest``), with the report a backtest gives (``report``)."""
