"""Segmentation of GSO super-frames (rattan/engine/csrc/gso.c), through a small cffi build of that
file alone: craft a TSO/UDP-GSO super-frame, cut it, check every segment's headers and checksums."""
from __future__ import annotations

import os
import struct

import pytest

cffi = pytest.importorskip("cffi")

CSRC = os.path.join(os.path.dirname(__file__), "..", "..", "rattan", "engine", "csrc")


@pytest.fixture(scope="module")
def gso(tmp_path_factory):
    ffi = cffi.FFI()
    ffi.cdef("""
        typedef struct { uint8_t flags, gso_type; uint16_t hdr_len, gso_size, csum_start, csum_offset; } gso_vnet;
        typedef struct { uint32_t segs, ip_bytes; uint16_t hdr_len, l3, l4; uint8_t ipv6, tcp; } gso_info;
        int gso_inspect(const uint8_t *frame, uint32_t len, const gso_vnet *vh, gso_info *out);
        uint32_t gso_segment(const uint8_t *frame, uint32_t len, const gso_vnet *vh, const gso_info *info,
                             uint32_t i, uint8_t *out);
        int gso_complete_csum(uint8_t *frame, uint32_t len, uint16_t csum_start, uint16_t csum_offset);
        int gso_l4_csum_ok(const uint8_t *frame, uint32_t len);
        typedef struct { uint8_t *frame; uint32_t len; gso_info g; uint16_t mss; uint32_t next_seq; uint32_t segs;
                         int closed; uint8_t psh; } gso_merge;
        int gso_merge_start(gso_merge *m, uint8_t *frame, uint32_t len, int partial);
        int gso_merge_fits(const gso_merge *m, const uint8_t *frame, uint32_t len, int partial);
        void gso_merge_add(gso_merge *m, const uint8_t *frame, uint32_t len);
        uint32_t gso_merge_finish(gso_merge *m, gso_vnet *vh);
    """)
    src = os.path.abspath(os.path.join(CSRC, "gso.c"))
    ffi.set_source("_gso_under_test", '#include "gso.h"', sources=[src], include_dirs=[os.path.abspath(CSRC)],
                   extra_compile_args=["-O2", "-std=c11"])
    out = tmp_path_factory.mktemp("gso")
    lib_path = ffi.compile(tmpdir=str(out))
    import importlib.util
    spec = importlib.util.spec_from_file_location("_gso_under_test", lib_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.ffi, mod.lib


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


ETH = bytes(6) + bytes([2, 0, 0, 0, 0, 1])


def tcp4_super(payload: bytes, flags: int = 0x18 | 0x01 | 0x80, seq: int = 1000, ip_id: int = 7) -> bytes:
    opts = bytes([1, 1, 8, 10]) + bytes(8)  # NOP NOP timestamps: a 32-byte TCP header
    tcp = struct.pack("!HHIIBBHHH", 40000, 5201, seq, 55, (8 << 4), flags, 512, 0, 0) + opts
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), ip_id, 0x4000, 64, 6, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return ETH + b"\x08\x00" + ip + tcp + payload


def tcp6_super(payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", 40000, 5201, 5, 55, (5 << 4), 0x19, 512, 0, 0)
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp) + len(payload), 6, 64, bytes(15) + b"\1", bytes(15) + b"\2")
    return ETH + b"\x86\xdd" + ip + tcp + payload


def udp4_super(payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 4000, 5000, 8 + len(payload), 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 1, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return ETH + b"\x08\x00" + ip + udp + payload


def cut(gso, frame: bytes, gso_type: int, gso_size: int) -> tuple[list[bytes], object]:
    ffi, lib = gso
    vh = ffi.new("gso_vnet *", {"flags": 1, "gso_type": gso_type, "gso_size": gso_size})
    info = ffi.new("gso_info *")
    assert lib.gso_inspect(frame, len(frame), vh, info) == 0
    out = ffi.new("uint8_t[]", 4096)
    segs = []
    for i in range(info.segs):
        n = lib.gso_segment(frame, len(frame), vh, info, i, out)
        segs.append(bytes(ffi.buffer(out, n)))
    return segs, info


def test_tcp4_segments(gso):
    ffi, lib = gso
    payload = bytes(range(256)) * 20 + b"tail!"  # 5125 bytes: 3 full segments of 1448 and one of 781
    frame = tcp4_super(payload)
    segs, info = cut(gso, frame, 1, 1448)
    assert info.segs == 4 and info.hdr_len == 14 + 20 + 32
    assert info.ip_bytes == 4 * 52 + len(payload)  # each segment's IP and TCP headers, and the payload
    assert b"".join(s[66:] for s in segs) == payload
    for i, s in enumerate(segs):
        ip, tcp = s[14:34], s[34:66]
        assert struct.unpack("!H", ip[2:4])[0] == len(s) - 14            # total length
        assert struct.unpack("!H", ip[4:6])[0] == 7 + i                  # id
        assert csum(ip) == 0xFFFF                                        # header checksum
        assert struct.unpack("!I", tcp[4:8])[0] == 1000 + i * 1448       # sequence number
        flags = tcp[13]
        assert bool(flags & 0x01) == bool(flags & 0x08) == (i == 3)      # FIN, PSH on the last only
        assert bool(flags & 0x80) == (i == 0)                            # CWR on the first only
        pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(s) - 34)
        assert csum(pseudo + s[34:]) == 0xFFFF                           # complete TCP checksum
        assert lib.gso_l4_csum_ok(s, len(s)) == 1
    broken = bytearray(segs[1])
    broken[100] ^= 1
    assert lib.gso_l4_csum_ok(bytes(broken), len(broken)) == 0


def test_tcp6_and_udp_segments(gso):
    ffi, lib = gso
    segs, info = cut(gso, tcp6_super(bytes(3000)), 4, 1000)
    assert info.segs == 3 and info.ipv6 == 1
    for i, s in enumerate(segs):
        assert struct.unpack("!H", s[18:20])[0] == len(s) - 54           # IPv6 payload length
        assert struct.unpack("!I", s[58:62])[0] == 5 + i * 1000
        assert lib.gso_l4_csum_ok(s, len(s)) == 1
    segs, info = cut(gso, udp4_super(bytes(range(200)) * 10), 5, 700)
    assert [len(s) - 42 for s in segs] == [700, 700, 600]
    for s in segs:
        assert struct.unpack("!H", s[38:40])[0] == len(s) - 34           # UDP length
        assert lib.gso_l4_csum_ok(s, len(s)) == 1


def test_complete_partial_checksum(gso):
    ffi, lib = gso
    frame = bytearray(tcp4_super(b"hello world", flags=0x18))
    seg_len = len(frame) - 34
    pseudo = csum(bytes(frame[26:34]) + struct.pack("!BBH", 0, 6, seg_len))
    frame[50:52] = struct.pack("!H", pseudo)  # what a sender with checksum offload leaves: the pseudo-header sum
    ip_hdr = bytes(frame[14:34])
    frame[24:26] = struct.pack("!H", 0xFFFF - csum(ip_hdr))
    assert lib.gso_l4_csum_ok(bytes(frame), len(frame)) == 0
    buf = ffi.new("uint8_t[]", bytes(frame))
    assert lib.gso_complete_csum(buf, len(frame), 34, 16) == 0
    assert lib.gso_l4_csum_ok(bytes(ffi.buffer(buf, len(frame))), len(frame)) == 1
    assert lib.gso_complete_csum(buf, len(frame), 34, 60) == -1  # outside the frame


def test_refuses_what_it_cannot_cut(gso):
    ffi, lib = gso
    info = ffi.new("gso_info *")
    vh = ffi.new("gso_vnet *", {"gso_type": 1, "gso_size": 1448})
    udp = udp4_super(bytes(100))
    assert lib.gso_inspect(udp, len(udp), vh, info) == -1        # TCPV4 type on a UDP frame
    arp = ETH + b"\x08\x06" + bytes(28)
    assert lib.gso_inspect(arp, len(arp), vh, info) == -1
    assert lib.gso_inspect(arp, len(arp), ffi.NULL, info) == 0 and info.segs == 1 and info.ip_bytes == 28


def merge(gso, segs: list[bytes]) -> tuple[bytes, object, int]:
    """Merge `segs` as the engine's egress does: the super-frame, its virtio-net header, and how many
    segments the run took (it stops at the first that does not fit)."""
    ffi, lib = gso
    buf = ffi.new("uint8_t[]", 70000)
    ffi.memmove(buf, segs[0], len(segs[0]))
    m = ffi.new("gso_merge *")
    assert lib.gso_merge_start(m, buf, len(segs[0]), 0) == 0
    for s in segs[1:]:
        if not lib.gso_merge_fits(m, s, len(s), 0):
            break
        lib.gso_merge_add(m, s, len(s))
    vh = ffi.new("gso_vnet *")
    n = lib.gso_merge_finish(m, vh)
    return bytes(ffi.buffer(buf, n)), vh, m.segs


def test_merge_gives_back_the_super_frame(gso):
    ffi, lib = gso
    payload = bytes(range(256)) * 20 + b"tail!"
    frame = tcp4_super(payload, flags=0x18)  # ACK|PSH: PSH goes to the last segment, and back
    segs, _ = cut(gso, frame, 1, 1448)
    merged, vh, n = merge(gso, segs)
    assert n == 4
    assert merged[66:] == payload and len(merged) == len(frame)
    assert merged[14:24] == frame[14:24] and merged[26:50] == frame[26:50]  # IP and TCP headers as sent
    assert csum(merged[14:34]) == 0xFFFF
    assert merged[47] == 0x18                                              # PSH kept
    assert (vh.flags, vh.gso_type, vh.gso_size, vh.hdr_len, vh.csum_start, vh.csum_offset) == (1, 1, 1448, 66, 34, 16)
    # the partial checksum is the pseudo-header's sum: completing it gives a right checksum
    buf = ffi.new("uint8_t[]", merged)
    assert lib.gso_complete_csum(buf, len(merged), 34, 16) == 0
    assert lib.gso_l4_csum_ok(bytes(ffi.buffer(buf, len(merged))), len(merged)) == 1
    # the super-frame cuts into the same segments again
    again, _ = cut(gso, merged, 1, 1448)
    assert again == segs


def test_merge_stops_where_the_wire_could_not_have_carried_one_frame(gso):
    ffi, lib = gso
    segs, _ = cut(gso, tcp4_super(bytes(range(256)) * 24, flags=0x10), 1, 1448)
    assert len(segs) == 5
    assert merge(gso, [segs[0], segs[2], segs[3]])[2] == 1          # a gap: segment 1 lost
    spoiled = bytearray(segs[2])
    spoiled[200] ^= 4                                               # `corrupt`: its checksum is wrong
    assert merge(gso, [segs[0], segs[1], bytes(spoiled), segs[3]])[2] == 2
    other_ack = bytearray(segs[1])
    other_ack[34 + 11] ^= 1
    assert merge(gso, [segs[0], bytes(other_ack)])[2] == 1          # another acknowledgement
    assert merge(gso, [segs[0], segs[1], segs[2], segs[3]])[2] == 4
    last = cut(gso, tcp4_super(bytes(700), flags=0x10, seq=1000 + 4 * 1448), 1, 1448)[0][0]
    after = cut(gso, tcp4_super(bytes(1448), flags=0x10, seq=1000 + 4 * 1448 + 700), 1, 1448)[0][0]
    assert merge(gso, [segs[0], segs[1], segs[2], segs[3], last, after])[2] == 5  # nothing after a short one
    # a first segment with PSH, or SYN/FIN/RST flags, starts no run
    m = ffi.new("gso_merge *")
    for flags in (0x18, 0x11, 0x12, 0x14):
        f = cut(gso, tcp4_super(bytes(1448), flags=flags), 1, 1448)[0][0]
        assert lib.gso_merge_start(m, ffi.new("uint8_t[]", f), len(f), 0) == -1, hex(flags)
    udp = udp4_super(bytes(100))
    assert lib.gso_merge_start(m, ffi.new("uint8_t[]", udp), len(udp), 0) == -1
