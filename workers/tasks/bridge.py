"""bridge queue: cross-chain prices and multi-step trades. Declared and routed; its tasks
arrive with the cross-chain issue. A worker serving this queue idles until then."""
