"""The single exception root. Every error the core raises derives from ``ArbbotError``."""


class ArbbotError(Exception):
    """Root of all arbbot errors."""


class ConfigError(ArbbotError):
    """Bad configuration: an invalid address, unknown chain, missing secret."""


class MathError(ArbbotError):
    """An on-chain math routine would revert (the Solidity ``require`` failed)."""


class InsufficientLiquidity(MathError):
    """A swap asks for more than the pool holds, or the pool is empty."""


class RpcError(ArbbotError):
    """A JSON-RPC call failed: transport error, timeout or an error object in the reply."""

    def __init__(self, message: str, *, code: int | None = None, data: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class WireFormatError(ArbbotError):
    """A message or record could not be decoded: it is malformed and must not be retried."""
