"""Record and replay: the scan stage's blocks written to a recording (``recording``,
``recorder``), and backtests that run them through the same path, ml and execute code in
paper mode (``backtest``), with fills that move the pools (``fills``), run on an anvil
started on the recording's state dump where there is one (``chain``); the report a backtest
gives (``report``) and the per-opportunity outcomes the learned scoring trains on
(``labels``)."""
