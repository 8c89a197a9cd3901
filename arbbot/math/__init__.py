"""Exact integer ports of on-chain math, one module per Solidity library."""
