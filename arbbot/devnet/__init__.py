"""The embedded default chain: anvil + the genuine Uniswap contracts + a market simulator."""
