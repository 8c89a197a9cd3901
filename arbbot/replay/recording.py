"""The recording format: one chain's blocks as the scan stage published them, versioned,
append-only and compressed; its writer and its strict reader.

A recording file (``chain-<id>-<first block>.arbrec``) is the magic ``ARBBOTREC``, a
big-endian u16 format version, then frames. A frame is a 17-byte head (kind u8, block
number u64, payload length u32, CRC-32 of the payload u32) and its payload, zlib-compressed
JSON. The first frame is the *meta* (kind 0: the chain, the strategy in force, the fee
policy, the exclusions, the anvil state dump the chain can be rebuilt from); each later
frame one block (kind 1, or 2 for a reorg correction): the block's ``PoolDelta`` in its
wire form, the node's header of that block and its fee data (``eth_feeHistory`` and
``eth_gasPrice`` as the execute stage reads them). Frames are only ever appended; a frame
cut short by a crash is dropped by the next writer (``RecordingWriter``) before it appends.

The reader (``Recording.open``) checks everything before anything is replayed and raises
``RecordingError`` naming the problem: not a recording, a format version newer than this
code reads, a truncated or corrupt frame (with its byte offset), a gap in the block
numbers. Blocks follow each other by one; a reorg correction may restart at any block.
"""

from __future__ import annotations

import fcntl
import json
import logging
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Mapping, Sequence

from arbbot.errors import ArbbotError, WireFormatError
from arbbot.types import PoolDelta

log = logging.getLogger(__name__)

MAGIC = b"ARBBOTREC"
FORMAT_VERSION = 1
SUFFIX = ".arbrec"
_VERSION = struct.Struct(">H")
_FRAME = struct.Struct(">BQII")  # kind, block number, payload length, crc32(payload)
KIND_META, KIND_BLOCK, KIND_REORG = 0, 1, 2
_KINDS = (KIND_META, KIND_BLOCK, KIND_REORG)
_START = len(MAGIC) + _VERSION.size


class RecordingError(ArbbotError):
    """A recording that cannot be replayed as it is; the message names the problem."""


@dataclass(frozen=True, slots=True)
class RecordedBlock:
    """One block of a recording: the scan stage's ``PoolDelta``, the node's header of the
    block (``number``, ``hash``, ``parentHash``, ``timestamp``, ``baseFeePerGas``,
    ``gasUsed``, ``gasLimit``; hex strings as the node gave them) and the fee data the
    execute stage reads (``eth_feeHistory``'s reply and ``eth_gasPrice``, hex)."""

    delta: PoolDelta
    header: Mapping[str, Any] | None = None
    fee_history: Mapping[str, Any] | None = None
    gas_price: str | None = None

    @property
    def number(self) -> int:
        return self.delta.block_number

    def to_wire(self) -> dict[str, Any]:
        return {"delta": self.delta.to_wire(), "header": self.header, "fee_history": self.fee_history,
                "gas_price": self.gas_price}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RecordedBlock:
        return cls(PoolDelta.from_wire(d["delta"]), d.get("header"), d.get("fee_history"), d.get("gas_price"))


@dataclass(frozen=True, slots=True)
class _Frame:
    offset: int  # of the frame's head
    kind: int
    block: int
    length: int
    crc: int

    @property
    def end(self) -> int:
        return self.offset + _FRAME.size + self.length


def _encode(kind: int, block: int, payload: Mapping[str, Any]) -> bytes:
    data = zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 6)
    return _FRAME.pack(kind, block, len(data), zlib.crc32(data)) + data


def _read_start(f: BinaryIO, path: Path) -> int:
    """Check the magic and the version; the version."""
    start = f.read(_START)
    if len(start) < _START or not start.startswith(MAGIC):
        raise RecordingError(f"{path}: not an arbbot recording (no {MAGIC.decode()} header)")
    (version,) = _VERSION.unpack(start[len(MAGIC):])
    if version > FORMAT_VERSION:
        raise RecordingError(
            f"{path}: recording format version {version} is newer than this arbbot reads "
            f"(version {FORMAT_VERSION}); replay it with a newer arbbot"
        )
    if version < 1:
        raise RecordingError(f"{path}: recording format version {version} is not a valid version")
    return version


def _walk(f: BinaryIO, size: int, offset: int = _START) -> tuple[list[_Frame], int | None]:
    """The whole frames from ``offset`` on, and the offset of a frame cut short (None:
    the file ends on a frame boundary)."""
    frames: list[_Frame] = []
    f.seek(offset)
    while offset < size:
        head = f.read(_FRAME.size)
        if len(head) < _FRAME.size:
            return frames, offset
        kind, block, length, crc = _FRAME.unpack(head)
        frame = _Frame(offset, kind, block, length, crc)
        if kind not in _KINDS or frame.end > size:
            return frames, offset
        frames.append(frame)
        offset = frame.end
        f.seek(offset)
    return frames, None


@dataclass
class Recording:
    """A recording opened for replay: its meta and its block frames, checked whole (see the
    module docstring); ``blocks`` decodes them in order."""

    path: Path
    version: int
    meta: dict[str, Any]
    frames: list[_Frame]

    @classmethod
    def open(cls, path: str | Path) -> Recording:
        path = Path(path)
        if not path.is_file():
            raise RecordingError(f"{path}: no such recording file")
        size = path.stat().st_size
        with path.open("rb") as f:
            version = _read_start(f, path)
            frames, torn = _walk(f, size)
            if torn is not None:
                after = next((fr.block for fr in reversed(frames) if fr.kind != KIND_META), None)
                raise RecordingError(
                    f"{path}: truncated: the frame at byte {torn} of {size} is cut short or unreadable"
                    + (f" (after block {after})" if after is not None else "")
                )
            if not frames or frames[0].kind != KIND_META:
                raise RecordingError(f"{path}: truncated: no meta frame at the start")
            meta = _payload(f, frames[0], path)
        blocks = frames[1:]
        for prev, cur in zip(blocks, blocks[1:]):
            if cur.kind == KIND_META:
                raise RecordingError(f"{path}: a second meta frame at byte {cur.offset}")
            if cur.kind == KIND_BLOCK and cur.block != prev.block + 1:
                raise RecordingError(
                    f"{path}: gap in blocks: block {prev.block} is followed by block {cur.block} "
                    f"(byte {cur.offset}); blocks {prev.block + 1}..{cur.block - 1} are missing"
                    if cur.block > prev.block + 1
                    else f"{path}: block {prev.block} is followed by block {cur.block} (byte {cur.offset}) "
                         "without a reorg correction"
                )
        if not isinstance(meta, dict) or not isinstance(meta.get("chain_id"), int):
            raise RecordingError(f"{path}: the meta frame names no chain_id")
        return cls(path, version, meta, blocks)

    @property
    def chain_id(self) -> int:
        return int(self.meta["chain_id"])

    @property
    def first_block(self) -> int | None:
        return self.frames[0].block if self.frames else None

    @property
    def last_block(self) -> int | None:
        return self.frames[-1].block if self.frames else None

    def count(self, to_block: int | None = None) -> int:
        """How many block frames ``blocks(to_block=...)`` yields."""
        if to_block is None:
            return len(self.frames)
        return sum(1 for fr in self.frames if fr.block <= to_block)

    def blocks(self, to_block: int | None = None) -> Iterator[RecordedBlock]:
        """Every block in order, up to and including ``to_block``."""
        with self.path.open("rb") as f:
            for frame in self.frames:
                if to_block is not None and frame.block > to_block:
                    return
                d = _payload(f, frame, self.path)
                try:
                    block = RecordedBlock.from_wire(d)
                except (WireFormatError, KeyError, TypeError) as exc:
                    raise RecordingError(f"{self.path}: block {frame.block} (byte {frame.offset}) is malformed: {exc}") from None
                if block.number != frame.block:
                    raise RecordingError(
                        f"{self.path}: the frame at byte {frame.offset} says block {frame.block}, its delta {block.number}"
                    )
                yield block


def _payload(f: BinaryIO, frame: _Frame, path: Path) -> Any:
    f.seek(frame.offset + _FRAME.size)
    data = f.read(frame.length)
    if len(data) != frame.length or zlib.crc32(data) != frame.crc:
        raise RecordingError(f"{path}: corrupt frame at byte {frame.offset} (block {frame.block}): checksum mismatch")
    try:
        return json.loads(zlib.decompress(data))
    except (zlib.error, ValueError) as exc:
        raise RecordingError(f"{path}: corrupt frame at byte {frame.offset} (block {frame.block}): {exc}") from None


MetaFactory = Callable[[RecordedBlock, Path], Mapping[str, Any]]


class RecordingWriter:
    """Appends one chain's blocks to the recordings in ``directory``. A block that does not
    continue the newest file (the first one, or one after a gap: recording was off, the
    scan stage was down) starts a new file, whose meta ``meta(block, path)`` gives (it may
    write files beside ``path``, such as a state dump). Several processes may append in
    turn: each append holds an exclusive lock on the file and re-reads its tail."""

    def __init__(self, directory: str | Path, chain_id: int) -> None:
        self.directory = Path(directory)
        self.chain_id = chain_id
        self._tail: tuple[Path, int, int] | None = None  # path, size, last block as last seen

    def files(self) -> list[Path]:
        """This chain's recordings, the one written last at the end."""
        found = self.directory.glob(f"chain-{self.chain_id}-*{SUFFIX}")
        return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def append(self, block: RecordedBlock, meta: MetaFactory) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        files = self.files()
        if files:
            path = files[-1]
            with path.open("r+b") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                last = self._last_block(f, path)
                if last is not None and (block.number == last + 1 or block.delta.reorg):
                    self._write(f, path, block)
                    return path
        path = self.directory / f"chain-{self.chain_id}-{block.number:012d}{SUFFIX}"
        if path.exists():  # the same first block again (the chain was restarted): keep both
            path = path.with_name(f"{path.stem}-{len(files)}{SUFFIX}")
        with path.open("xb") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(MAGIC + _VERSION.pack(FORMAT_VERSION))
            f.write(_encode(KIND_META, block.number, {"format_version": FORMAT_VERSION, **meta(block, path)}))
            self._write(f, path, block)
        log.info("chain %s: recording to %s from block %s", self.chain_id, path, block.number)
        return path

    def _write(self, f: BinaryIO, path: Path, block: RecordedBlock) -> None:
        f.seek(0, 2)
        f.write(_encode(KIND_REORG if block.delta.reorg else KIND_BLOCK, block.number, block.to_wire()))
        f.flush()
        self._tail = (path, f.tell(), block.number)

    def _last_block(self, f: BinaryIO, path: Path) -> int | None:
        """The last whole block of the file; a frame cut short (a crash mid-write) is cut off."""
        size = f.seek(0, 2)
        if self._tail is not None and self._tail[0] == path and self._tail[1] == size:
            return self._tail[2]
        f.seek(0)
        try:
            _read_start(f, path)
        except RecordingError:
            return None  # not ours to append to: a new file starts
        frames, torn = _walk(f, size)
        if torn is not None:
            log.warning("%s: dropping a frame cut short at byte %d of %d", path, torn, size)
            f.truncate(torn)
        blocks: Sequence[_Frame] = [fr for fr in frames if fr.kind != KIND_META]
        if not frames or frames[0].kind != KIND_META:
            return None
        last = blocks[-1].block if blocks else None
        if last is not None:
            self._tail = (path, torn if torn is not None else size, last)
        return last
