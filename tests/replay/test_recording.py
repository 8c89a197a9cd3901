"""The recording format: what is written reads back exactly; append-only across writers; a
torn tail is cut by the next writer; every bad input is refused with an error naming it."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from arbbot.replay.recording import FORMAT_VERSION, MAGIC, RecordedBlock, Recording, RecordingError, RecordingWriter
from tests.replay.market import CHAIN_ID, delta, market_blocks, meta, write_market


def test_blocks_read_back_exactly_with_their_meta(tmp_path: Path) -> None:
    path = write_market(tmp_path, first=100, count=12)
    rec = Recording.open(path)
    assert rec.chain_id == CHAIN_ID and rec.version == FORMAT_VERSION
    assert (rec.first_block, rec.last_block) == (100, 111)
    assert rec.meta["chain"]["weth"] == meta()["chain"]["weth"]
    assert [b.to_wire() for b in rec.blocks()] == [b.to_wire() for b in market_blocks(100, 12)]
    assert [b.number for b in rec.blocks(to_block=104)] == [100, 101, 102, 103, 104]
    assert rec.count(104) == 5


def test_compressed(tmp_path: Path) -> None:
    path = write_market(tmp_path, first=1, count=200)
    raw = sum(len(str(b.to_wire())) for b in market_blocks(1, 200))
    assert path.stat().st_size < raw / 2


def test_a_second_writer_appends_to_the_same_file(tmp_path: Path) -> None:
    blocks = market_blocks(10, 6)
    first, second = RecordingWriter(tmp_path, CHAIN_ID), RecordingWriter(tmp_path, CHAIN_ID)
    paths = {(first if i % 2 else second).append(b, lambda b, p: meta()) for i, b in enumerate(blocks)}
    assert len(paths) == 1
    assert [b.number for b in Recording.open(paths.pop()).blocks()] == list(range(10, 16))


def test_a_gap_starts_a_new_file_and_a_reorg_continues(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path, CHAIN_ID)
    blocks = market_blocks(10, 4)
    for b in blocks:
        writer.append(b, lambda b, p: meta())
    reorg = RecordedBlock(delta(12, blocks[2].delta.states, reorg=True, orphaned_hashes=("0x" + "ab" * 32,)))
    assert writer.append(reorg, lambda b, p: meta()) == writer.files()[0]
    later = RecordedBlock(delta(20, blocks[1].delta.states))
    new = writer.append(later, lambda b, p: meta())
    assert len(writer.files()) == 2 and new.name.endswith("000000000020.arbrec")
    assert [b.number for b in Recording.open(writer.files()[0]).blocks()] == [10, 11, 12, 13, 12]
    assert [b.delta.reorg for b in Recording.open(writer.files()[0]).blocks()][-1] is True


def test_a_torn_tail_is_an_error_naming_it_and_the_next_writer_cuts_it(tmp_path: Path) -> None:
    path = write_market(tmp_path, first=100, count=5)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size - 7)
    with pytest.raises(RecordingError, match=r"truncated: the frame at byte \d+ .* cut short .*after block 103"):
        Recording.open(path)
    writer = RecordingWriter(tmp_path, CHAIN_ID)
    assert writer.append(market_blocks(104, 1)[0], lambda b, p: meta()) == path
    assert [b.number for b in Recording.open(path).blocks()] == [100, 101, 102, 103, 104]


def test_a_newer_format_version_is_refused(tmp_path: Path) -> None:
    path = write_market(tmp_path, count=3)
    data = bytearray(path.read_bytes())
    data[len(MAGIC):len(MAGIC) + 2] = struct.pack(">H", FORMAT_VERSION + 1)
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match=f"format version {FORMAT_VERSION + 1} is newer than this arbbot reads"):
        Recording.open(path)


def test_a_gap_in_blocks_is_refused(tmp_path: Path) -> None:
    path = write_market(tmp_path, first=100, count=3)
    later = tmp_path / "later"
    write_market(later, first=105, count=2)
    # splice the later file's block frames onto this one: 100, 101, 102, 105, 106
    other = (later / "chain-31337-000000000105.arbrec").read_bytes()
    rec = Recording.open(later / "chain-31337-000000000105.arbrec")
    path.write_bytes(path.read_bytes() + other[rec.frames[0].offset:])
    with pytest.raises(RecordingError, match="gap in blocks: block 102 is followed by block 105.*103..104 are missing"):
        Recording.open(path)


def test_corruption_and_foreign_files_are_named(tmp_path: Path) -> None:
    path = write_market(tmp_path, first=100, count=3)
    rec = Recording.open(path)
    data = bytearray(path.read_bytes())
    data[rec.frames[1].offset + 20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match=r"corrupt frame at byte \d+ \(block 101\): checksum mismatch"):
        list(Recording.open(path).blocks())
    other = tmp_path / "notes.arbrec"
    other.write_text("hello")
    with pytest.raises(RecordingError, match="not an arbbot recording"):
        Recording.open(other)
    with pytest.raises(RecordingError, match="no such recording"):
        Recording.open(tmp_path / "missing.arbrec")
