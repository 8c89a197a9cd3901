"""The only package that talks JSON-RPC: transport, batching, Multicall3, logs, signing,
nonces and gas. Nothing outside ``arbbot.chain`` opens a connection to a node.

One module per job: ``rpc`` (endpoints, failover, batches), ``abi`` (selectors, topics,
word decoding), ``multicall`` (aggregate3, the pool/token readers, the tickBitmap walker),
``tx`` (calldata, sending, signing), ``discovery`` (factories, pool creation logs,
getLogs backfill), ``events`` (what a block's logs mean: ``classify_log``),
``pool_registry`` and ``token_registry`` (what the scanner knows), ``token_checks``
(fee-on-transfer/rebasing probes), ``store`` (the ``Store`` protocol), ``scanner`` and
``scanner_config`` (the block follower), ``v3_state`` (a V3 pool read from its address)."""
