"""Recovery (B8): truncation, zero-fill and bit-flip sweeps, and every refusal case."""
from __future__ import annotations

import random
import shutil
import struct
from pathlib import Path

import pytest
from tests.journal.journal_testlib import (
    INFO,
    INFO2,
    NoSyncIO,
    build,
    craft_segment,
    frame_ends,
    payloads_for,
    ref_digest,
    ref_digest_bytes,
    segments,
    snapshot,
)

from journal import (
    Journal,
    JournalCorruption,
    JournalError,
    JournalExists,
    JournalNotFound,
    JournalReader,
    JournalVersionError,
    scan,
)
from journal.format import FIXED_HEADER_SIZE, ZERO_DIGEST, encode_header, make_header, mask, read_header, segment_name


def _read_all(path: Path) -> tuple[list[tuple[int, bytes]], JournalReader]:
    r = JournalReader(path)
    return [(rec.seq, rec.payload) for rec in r.records()], r


def _expect(payloads: list[bytes]) -> list[tuple[int, bytes]]:
    return list(enumerate(payloads, 1))


def _one_line_naming(exc: JournalError, file: Path) -> None:
    msg = str(exc)
    assert "\n" not in msg
    assert msg.startswith(f"{file}: offset "), msg


# ---------------------------------------------------------------- truncation sweep

@pytest.mark.parametrize("n_first", [0, 5], ids=["one-segment", "two-segments"])
def test_truncate_last_segment_at_every_offset_when_reopened_then_exact_prefix_recovered(
    tmp_path: Path, n_first: int
) -> None:
    first = payloads_for(n_first)
    last = payloads_for(6, start=n_first)
    src = tmp_path / "src"
    with Journal.create(src, INFO, segment_bytes=1 << 20, io=NoSyncIO()) as j:
        for p in first:
            j.append(p)
    if n_first:  # force a roll: reopen with a tiny segment size, append one record, then go back to big
        with Journal.open(src, INFO, segment_bytes=1, io=NoSyncIO())[0] as j:
            j.append(last[0])
        with Journal.open(src, INFO, segment_bytes=1 << 20, io=NoSyncIO())[0] as j:
            for p in last[1:]:
                j.append(p)
    else:
        with Journal.open(src, INFO, io=NoSyncIO())[0] as j:
            for p in last:
                j.append(p)
    segs = segments(src)
    assert len(segs) == (2 if n_first else 1)
    last_seg = segs[-1]
    data = last_seg.read_bytes()
    _, hdr_end = read_header(data, "x")
    ends = frame_ends(data, hdr_end)
    assert len(ends) == len(last)
    work = tmp_path / "work"
    for cut in range(len(data) + 1):
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(src, work)
        (work / last_seg.name).write_bytes(data[:cut])
        k = sum(1 for e in ends if e <= cut) if cut >= hdr_end else 0
        want = first + last[:k]
        clean = cut in ends or cut == hdr_end

        if cut < hdr_end and not n_first:
            with pytest.raises(JournalNotFound, match=r"no complete journal segment"):
                JournalReader(work)
        else:
            got, r = _read_all(work)
            assert got == _expect(want), cut
            assert (r.torn is None) == clean, (cut, r.torn)

        rep = scan(work)
        assert (rep.last_seq, rep.digest, rep.torn) == (len(want), ref_digest(want), not clean), cut
        good_end = max([e for e in ends if e <= cut], default=hdr_end) if cut >= hdr_end else 0
        assert rep.dropped_bytes == cut - good_end

        j, rep1 = Journal.open(work, INFO2, io=NoSyncIO())
        assert rep1 == rep
        j.close()
        j, rep2 = Journal.open(work, INFO2, io=NoSyncIO())  # recovering twice: same result, now clean
        assert (rep2.last_seq, rep2.digest, rep2.torn) == (len(want), ref_digest(want), False)
        assert j.append(b"after") == len(want) + 1
        j.close()
        got, r = _read_all(work)
        assert got == _expect([*want, b"after"]) and r.torn is None
        assert JournalReader(work).digest == ref_digest([*want, b"after"])


# ---------------------------------------------------------------- zero fill

@pytest.mark.parametrize("zeros", [*range(1, 65), 4096])
def test_zero_fill_tail_when_opened_then_cut_as_torn(tmp_path: Path, zeros: int) -> None:
    payloads = payloads_for(8)
    jdir = build(tmp_path / "j", payloads, segment_bytes=200)
    seg = segments(jdir)[-1]
    size = seg.stat().st_size
    with open(seg, "ab") as f:
        f.write(bytes(zeros))
    got, r = _read_all(jdir)
    assert got == _expect(payloads)
    assert r.torn is not None and r.torn.dropped_bytes == zeros and r.torn.offset == size
    j, rep = Journal.open(jdir, INFO, io=NoSyncIO())
    assert rep.torn and rep.dropped_bytes == zeros and rep.last_seq == 8 and rep.segment == seg.name
    assert seg.stat().st_size == size
    j.append(b"next")
    j.close()
    assert _read_all(jdir)[0] == _expect([*payloads, b"next"])


def test_cut_mid_frame_then_zero_fill_when_opened_then_torn(tmp_path: Path) -> None:
    payloads = payloads_for(4, size=40)
    jdir = build(tmp_path / "j", payloads)
    seg = segments(jdir)[-1]
    data = seg.read_bytes()
    last_start = len(data) - (16 + 40)
    for k in range(1, 56):
        for z in (1, 7, 64, 4096):
            seg.write_bytes(data[:last_start + k] + bytes(z))
            rep = scan(jdir)
            assert rep.torn and rep.last_seq == 3 and rep.offset == last_start, (k, z)


# ---------------------------------------------------------------- bit flips

def _flip_journal(tmp_path: Path) -> tuple[Path, list[bytes]]:
    payloads = payloads_for(7)
    src = tmp_path / "src"
    with Journal.create(src, INFO, segment_bytes=1 << 20, io=NoSyncIO()) as j:
        for p in payloads[:3]:
            j.append(p)
    with Journal.open(src, INFO, segment_bytes=1, io=NoSyncIO())[0] as j:
        j.append(payloads[3])
    with Journal.open(src, INFO, segment_bytes=1 << 20, io=NoSyncIO())[0] as j:
        for p in payloads[4:]:
            j.append(p)
    assert len(segments(src)) == 2
    return src, payloads


def test_bit_flip_anywhere_when_scanned_and_read_then_last_frame_dropped_or_corruption(tmp_path: Path) -> None:
    src, payloads = _flip_journal(tmp_path)
    segs = segments(src)
    originals = {s.name: s.read_bytes() for s in segs}
    last = segs[-1]
    last_start = len(originals[last.name]) - (16 + len(payloads[-1]))
    work = tmp_path / "work"
    shutil.copytree(src, work)
    n_torn = n_corrupt = 0
    for seg in segs:
        data = originals[seg.name]
        target = work / seg.name
        for byte in range(len(data)):
            for bit in range(8):
                flipped = bytearray(data)
                flipped[byte] ^= 1 << bit
                target.write_bytes(flipped)
                in_last_frame = seg == last and byte >= last_start
                # scan: the recovery decision
                if in_last_frame:
                    rep = scan(work)
                    assert rep.torn and rep.last_seq == 6 and rep.offset == last_start, (seg.name, byte, bit)
                    assert rep.digest == ref_digest(payloads[:6])
                    n_torn += 1
                else:
                    with pytest.raises(JournalCorruption) as ei:
                        scan(work)
                    _one_line_naming(ei.value, target)
                    n_corrupt += 1
                # reader: never returns altered data; stops (torn) or raises at the damage
                got: list[tuple[int, bytes]] = []
                try:
                    r = JournalReader(work)
                    for rec in r.records():
                        got.append((rec.seq, rec.payload))
                except JournalCorruption as exc:
                    assert not in_last_frame
                    _one_line_naming(exc, target)
                else:
                    assert in_last_frame, (seg.name, byte, bit)
                    assert r.torn is not None
                assert got == _expect(payloads)[:len(got)]
        target.write_bytes(data)
    assert n_torn == 8 * (16 + len(payloads[-1]))
    assert n_corrupt > 8 * 300


def test_bit_flip_sampled_when_opened_for_writing_then_refused_without_changes_or_recovered(tmp_path: Path) -> None:
    src, payloads = _flip_journal(tmp_path)
    last = segments(src)[-1]
    data = last.read_bytes()
    last_start = len(data) - (16 + len(payloads[-1]))
    rng = random.Random(1234)
    work = tmp_path / "work"
    for _ in range(60):
        byte = rng.randrange(len(data))
        shutil.copytree(src, work)
        flipped = bytearray(data)
        flipped[byte] ^= 1 << rng.randrange(8)
        (work / last.name).write_bytes(flipped)
        if byte >= last_start:
            j, rep = Journal.open(work, INFO, io=NoSyncIO())
            assert rep.torn and rep.last_seq == 6
            assert j.append(b"again") == 7
            j.close()
            assert _read_all(work)[0] == _expect([*payloads[:6], b"again"])
        else:
            before = snapshot(work)
            with pytest.raises(JournalCorruption):
                Journal.open(work, INFO, io=NoSyncIO())
            after = snapshot(work)
            after.pop("LOCK", None), before.pop("LOCK", None)
            assert after == before
        shutil.rmtree(work)


# ---------------------------------------------------------------- refusals and special cases

def test_garbage_after_bad_frame_when_opened_then_refused(tmp_path: Path) -> None:
    payloads = payloads_for(5, size=30)
    jdir = build(tmp_path / "j", payloads)
    seg = segments(jdir)[-1]
    data = bytearray(seg.read_bytes())
    data[-1] ^= 0xFF  # the last frame now fails its CRC
    garbage = bytes(random.Random(7).randrange(1, 256) for _ in range(100))
    seg.write_bytes(bytes(data) + garbage)
    before = snapshot(jdir)
    with pytest.raises(JournalCorruption, match=r"fails its CRC and is followed by 100 bytes of non-zero data$") as ei:
        Journal.open(jdir, INFO, io=NoSyncIO())
    _one_line_naming(ei.value, seg)
    assert ei.value.offset == len(data) - 46
    with pytest.raises(JournalCorruption):
        list(JournalReader(jdir).records())
    assert {k: v for k, v in snapshot(jdir).items() if k != "LOCK"} == {k: v for k, v in before.items() if k != "LOCK"}


def test_damaged_record_mid_segment_when_opened_then_refused_naming_offset(tmp_path: Path) -> None:
    payloads = payloads_for(5, size=30)
    jdir = build(tmp_path / "j", payloads)
    seg = segments(jdir)[-1]
    data = bytearray(seg.read_bytes())
    _, hdr_end = read_header(bytes(data), "x")
    second = hdr_end + 46
    data[second + 3] ^= 0x01  # high byte of the 2nd record's length: its declared end now runs past EOF
    seg.write_bytes(bytes(data))
    with pytest.raises(JournalCorruption, match=r"a valid record follows at offset") as ei:
        scan(jdir)
    assert ei.value.offset == second and ei.value.path == str(seg)
    r = JournalReader(jdir)
    got = []
    with pytest.raises(JournalCorruption):
        for rec in r.records():
            got.append(rec.payload)
    assert got == payloads[:1]


def _three_segments(tmp_path: Path) -> tuple[Path, list[bytes]]:
    payloads = payloads_for(9, size=40)
    jdir = build(tmp_path / "j", payloads, segment_bytes=470)
    assert [s.name for s in segments(jdir)] == [segment_name(1), segment_name(5), segment_name(9)]
    return jdir, payloads


def test_missing_middle_segment_when_opened_then_refused(tmp_path: Path) -> None:
    jdir, _ = _three_segments(tmp_path)
    (jdir / segment_name(5)).unlink()
    msg = rf"^{jdir / segment_name(9)}: offset 16: seq gap: seq 5..8 missing \(missing segment {segment_name(5)}\?\)$"
    with pytest.raises(JournalCorruption, match=msg):
        Journal.open(jdir, INFO, io=NoSyncIO())
    with pytest.raises(JournalCorruption, match=msg):
        list(JournalReader(jdir).records())
    with pytest.raises(JournalCorruption, match=msg):
        scan(jdir)


def test_seq_gap_between_segments_when_opened_then_refused(tmp_path: Path) -> None:
    jdir = tmp_path / "j"
    jdir.mkdir()
    p = payloads_for(6)
    craft_segment(jdir, index=0, first_seq=1, prev_digest=ZERO_DIGEST, payloads=p[:3])
    bad = craft_segment(jdir, index=1, first_seq=5, prev_digest=ref_digest_bytes(p[:3]), payloads=p[3:])
    with pytest.raises(JournalCorruption, match=r"seq gap: seq 4\.\.4 missing") as ei:
        Journal.open(jdir, INFO, io=NoSyncIO())
    _one_line_naming(ei.value, bad)


def test_duplicate_segment_when_opened_then_refused(tmp_path: Path) -> None:
    jdir, payloads = _three_segments(tmp_path)
    # a stray copy next to the real segments
    shutil.copy(jdir / segment_name(5), jdir / "seg-00000000000000000005 copy.pmj")
    with pytest.raises(JournalCorruption, match=r"unexpected file in the journal directory"):
        Journal.open(jdir, INFO, io=NoSyncIO())
    (jdir / "seg-00000000000000000005 copy.pmj").unlink()
    # a segment that repeats seqs already present
    craft_segment(jdir, index=2, first_seq=7, prev_digest=ref_digest_bytes(payloads[:6]), payloads=payloads[6:8])
    with pytest.raises(JournalCorruption, match=r"starts at seq 7 but seq 7\.\.8 are in earlier segments"):
        Journal.open(jdir, INFO, io=NoSyncIO())
    with pytest.raises(JournalCorruption, match=r"duplicate or overlapping segment"):
        list(JournalReader(jdir).records())


def test_name_header_mismatch_when_opened_then_refused(tmp_path: Path) -> None:
    jdir, _ = _three_segments(tmp_path)
    (jdir / segment_name(9)).rename(jdir / segment_name(10))
    with pytest.raises(JournalCorruption, match=r"header says first seq 9 but the file name says 10$"):
        Journal.open(jdir, INFO, io=NoSyncIO())


def test_segment_from_another_journal_when_opened_then_digest_chain_refuses(tmp_path: Path) -> None:
    jdir, _ = _three_segments(tmp_path)
    (jdir / segment_name(9)).unlink()
    craft_segment(jdir, index=2, first_seq=9, prev_digest=b"\x01" * 32, payloads=[b"alien"])
    with pytest.raises(JournalCorruption, match=r"prev_digest does not match"):
        Journal.open(jdir, INFO, io=NoSyncIO())
    with pytest.raises(JournalCorruption, match=r"prev_digest does not match"):
        list(JournalReader(jdir).records())


@pytest.mark.parametrize("which", [0, -1])
def test_wrong_magic_when_opened_then_refused(tmp_path: Path, which: int) -> None:
    jdir, _ = _three_segments(tmp_path)
    seg = segments(jdir)[which]
    data = bytearray(seg.read_bytes())
    data[:8] = b"PK\x03\x04zzzz"
    seg.write_bytes(bytes(data))
    with pytest.raises(JournalCorruption, match=r"bad magic 504b03047a7a7a7a: not a pmm journal segment$") as ei:
        Journal.open(jdir, INFO, io=NoSyncIO())
    _one_line_naming(ei.value, seg)


@pytest.mark.parametrize("which", [0, -1])
def test_unsupported_format_version_when_opened_then_refused_with_upgrade_message(tmp_path: Path, which: int) -> None:
    jdir, _ = _three_segments(tmp_path)
    seg = segments(jdir)[which]
    data = bytearray(seg.read_bytes())
    data[8:10] = struct.pack("<H", 2)
    hdr_len = struct.unpack_from("<H", data, 10)[0]
    from crc32c import crc32c

    data[12:16] = struct.pack("<I", mask(crc32c(bytes(data[16:16 + hdr_len]), crc32c(bytes(data[:12])))))
    seg.write_bytes(bytes(data))
    msg = rf"^{seg}: journal format v2 not supported by this pmm \(supports 1\): upgrade pmm or regenerate$"
    with pytest.raises(JournalVersionError, match=msg):
        Journal.open(jdir, INFO, io=NoSyncIO())
    with pytest.raises(JournalVersionError, match=msg):
        list(JournalReader(jdir).records())


@pytest.mark.parametrize("cut", [0, 5, 8, 13, 16, 40, -1])
def test_crash_between_creating_segment_and_header_when_opened_then_segment_deleted(tmp_path: Path, cut: int) -> None:
    payloads = payloads_for(4)
    jdir = build(tmp_path / "j", payloads)
    hdr = encode_header(make_header(INFO, segment_index=1, first_seq=5, prev_digest=ref_digest_bytes(payloads),
                                    versions=("3.11.7", "0.22.0")))
    partial = hdr[:cut] if cut >= 0 else hdr[:-1]
    stray = jdir / segment_name(5)
    stray.write_bytes(partial)
    (jdir / (segment_name(5) + ".tmp")).write_bytes(hdr[:3])
    rep = scan(jdir)
    assert rep.torn and rep.deleted and rep.segment == stray.name and rep.last_seq == 4
    assert _read_all(jdir)[0] == _expect(payloads)
    j, rep = Journal.open(jdir, INFO, segment_bytes=1, io=NoSyncIO())
    assert rep.deleted and rep.dropped_bytes == len(partial) and "dropped whole" in str(rep)
    assert not stray.exists() and not (jdir / (segment_name(5) + ".tmp")).exists()
    assert j.append(b"five") == 5  # rolls: recreates seg 5 properly
    j.close()
    assert _read_all(jdir)[0] == _expect([*payloads, b"five"])
    assert scan(jdir).torn is False


def test_short_header_in_middle_segment_when_opened_then_refused(tmp_path: Path) -> None:
    jdir, _ = _three_segments(tmp_path)
    seg = jdir / segment_name(5)
    seg.write_bytes(seg.read_bytes()[:20])
    with pytest.raises(JournalCorruption, match=r"segment header cut short.*\(not the last segment\)$"):
        Journal.open(jdir, INFO, io=NoSyncIO())


def test_only_segment_with_incomplete_header_when_opened_then_fresh_journal(tmp_path: Path) -> None:
    jdir = build(tmp_path / "j", [])
    seg = segments(jdir)[0]
    seg.write_bytes(seg.read_bytes()[:30])
    with pytest.raises(JournalNotFound):
        JournalReader(jdir)
    j, rep = Journal.open(jdir, INFO2, io=NoSyncIO())
    assert rep.deleted and rep.last_seq == 0
    j.append(b"x")
    j.close()
    r = JournalReader(jdir)
    assert r.header.run_id == INFO2.run_id and [x.payload for x in r.records()] == [b"x"]


def test_missing_or_empty_directory_when_opened_then_not_found(tmp_path: Path) -> None:
    for fn in (lambda p: Journal.open(p, INFO), JournalReader, scan):
        with pytest.raises(JournalNotFound, match=rf"^{tmp_path / 'nope'}: no journal here"):
            fn(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(JournalNotFound, match=r"no journal"):
        Journal.open(tmp_path / "empty", INFO)
    assert list((tmp_path / "empty").iterdir()) == []
    with pytest.raises(JournalNotFound):
        JournalReader(tmp_path / "empty")


def test_create_when_journal_exists_then_refused(tmp_path: Path) -> None:
    jdir = build(tmp_path / "j", [b"a"])
    with pytest.raises(JournalExists, match=r"a journal already exists here"):
        Journal.create(jdir, INFO)


def test_recovery_report_str_is_one_line(tmp_path: Path) -> None:
    jdir = build(tmp_path / "j", payloads_for(3))
    seg = segments(jdir)[-1]
    seg.write_bytes(seg.read_bytes()[:-2])
    rep = scan(jdir)
    s = str(rep)
    assert "\n" not in s and s.startswith(f"torn tail: {seg.name} from offset ") and "last seq 2" in s
    Journal.open(jdir, INFO, io=NoSyncIO())[0].close()
    assert str(scan(jdir)).startswith("clean: last seq 2, digest ")


def test_first_segment_not_starting_at_seq_one_when_opened_then_refused(tmp_path: Path) -> None:
    jdir, _ = _three_segments(tmp_path)
    (jdir / segment_name(1)).unlink()
    with pytest.raises(JournalCorruption, match=r"seq gap: seq 1\.\.4 missing"):
        scan(jdir)
    with pytest.raises(JournalCorruption, match=r"seq gap: seq 1\.\.4 missing"):
        list(JournalReader(jdir).records())
    with pytest.raises(JournalCorruption, match=r"seq gap: seq 1\.\.4 missing"):  # even when skipping ahead
        list(JournalReader(jdir).records(from_seq=6))


def test_header_len_field_damaged_in_last_segment_when_scanned_then_corruption_not_deletion(tmp_path: Path) -> None:
    jdir = build(tmp_path / "j", payloads_for(3))
    seg = segments(jdir)[-1]
    data = bytearray(seg.read_bytes())
    hdr_len = struct.unpack_from("<H", data, 10)[0]
    data[11] ^= 0x02  # hdr_len += 512: the header now seems cut short by EOF, like a crash during creation
    assert FIXED_HEADER_SIZE + hdr_len + 512 > len(data)
    seg.write_bytes(bytes(data))
    with pytest.raises(JournalCorruption, match=rf"offset 10: header length field says {hdr_len + 512}, header is {hdr_len}$"):
        scan(jdir)
