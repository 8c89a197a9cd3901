"""The only package that talks JSON-RPC: transport, batching, Multicall3, logs, signing,
nonces and gas. Nothing outside ``arbbot.chain`` opens a connection to a node."""
