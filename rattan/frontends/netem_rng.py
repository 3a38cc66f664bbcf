"""Upstream Rattan's random numbers, bit for bit: rand's `StdRng` and rand_distr's normal law.

netem-trace 0.4 (the models of upstream's `BwReplay`, `DelayReplay` and `DelayPerPacket`)
draws its seeded models with `StdRng::seed_from_u64(seed)` and `rand_distr::Normal` /
`LogNormal` (rand 0.9, rand_distr 0.5). This module reproduces that sequence exactly, so
an upstream file gives upstream's trace here:

- `StdRng` is ChaCha12 (rand_chacha): key = the 32-byte seed, 64-bit block counter from
  0, stream 0; each 64-bit draw is two consecutive little-endian keystream words.
- `seed_from_u64` (rand_core) expands a u64 into the 32-byte seed with PCG32.
- `StandardNormal` is rand_distr's 256-layer ziggurat; its tables are generated here with
  the same construction and decimal rounding as rand's `ziggurat_tables.py`.

The doc tests of netem-trace pin the result (seed 42, N(12 Mbit/s, 1 Mbit/s) gives
12069427 bit/s then 12132938); tests/frontends/test_netem_rng.py checks them. It runs
at compile time only: a few microseconds per draw in pure Python.
"""
from __future__ import annotations

import math
import struct

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF


def _pcg32_seed(state: int) -> bytes:
    """rand_core's `SeedableRng::seed_from_u64`: 32 seed bytes from PCG32 outputs."""
    out = bytearray()
    for _ in range(8):
        state = (state * 6364136223846793005 + 11634580027462260723) & _M64
        xorshifted = (((state >> 18) ^ state) >> 27) & _M32
        rot = state >> 59
        out += (((xorshifted >> rot) | (xorshifted << ((-rot) & 31))) & _M32).to_bytes(4, "little")
    return bytes(out)


class ChaCha:
    """rand_chacha's ChaCha{8,12,20}Rng reading 64-bit values (`next_u64`)."""

    def __init__(self, seed: bytes, rounds: int = 12):
        if len(seed) != 32:
            raise ValueError("a ChaCha seed is 32 bytes")
        self.key = list(struct.unpack("<8I", seed))
        self.rounds = rounds
        self.counter = 0
        self.buf: list[int] = []
        self.pos = 0

    @classmethod
    def seed_from_u64(cls, seed: int, rounds: int = 12) -> "ChaCha":
        return cls(_pcg32_seed(seed & _M64), rounds)

    def _block(self) -> list[int]:
        c = self.counter
        s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574, *self.key,
             c & _M32, (c >> 32) & _M32, 0, 0]
        x = s[:]

        def qr(a: int, b: int, c_: int, d: int) -> None:
            x[a] = (x[a] + x[b]) & _M32
            t = x[d] ^ x[a]
            x[d] = ((t << 16) | (t >> 16)) & _M32
            x[c_] = (x[c_] + x[d]) & _M32
            t = x[b] ^ x[c_]
            x[b] = ((t << 12) | (t >> 20)) & _M32
            x[a] = (x[a] + x[b]) & _M32
            t = x[d] ^ x[a]
            x[d] = ((t << 8) | (t >> 24)) & _M32
            x[c_] = (x[c_] + x[d]) & _M32
            t = x[b] ^ x[c_]
            x[b] = ((t << 7) | (t >> 25)) & _M32

        for _ in range(self.rounds // 2):
            qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
            qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
        self.counter = (c + 1) & _M64
        return [(x[i] + s[i]) & _M32 for i in range(16)]

    def next_u32(self) -> int:
        if self.pos >= len(self.buf):
            self.buf, self.pos = self._block(), 0
        w = self.buf[self.pos]
        self.pos += 1
        return w

    def next_u64(self) -> int:
        # rand_core's BlockRng::next_u64: low word first; the 64-word buffer keeps pairs aligned
        lo = self.next_u32()
        return lo | (self.next_u32() << 32)


def _f64(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def _tables() -> tuple[list[float], list[float]]:
    """ZIG_NORM_X and ZIG_NORM_F as rand's ziggurat_tables.py makes them (printed with `%.18f`)."""
    r, v = 3.6541528853610088, 0.00492867323399

    def f(x: float) -> float:
        return math.exp(-x * x / 2.0)

    def f_inv(y: float) -> float:
        return math.sqrt(-2.0 * math.log(y))

    x = [0.0] * 257
    x[0] = v / f(r)
    x[1] = r
    for i in range(2, 256):
        x[i] = f_inv(v / x[i - 1] + f(x[i - 1]))
    y = [f(t) for t in x]
    return [float("%.18f" % t) for t in x], [float("%.18f" % t) for t in y]


ZIG_NORM_X, ZIG_NORM_F = _tables()
ZIG_NORM_R = 3.654152885361008796


def _open01(rng: ChaCha) -> float:
    return _f64((rng.next_u64() >> 12) | (1023 << 52)) - (1.0 - 2.0 ** -53)


def standard_normal(rng: ChaCha) -> float:
    """rand_distr's `StandardNormal` (utils::ziggurat with the normal tables, symmetric)."""
    xt, ft = ZIG_NORM_X, ZIG_NORM_F
    while True:
        bits = rng.next_u64()
        i = bits & 0xFF
        u = _f64((bits >> 12) | (1024 << 52)) - 3.0  # [2, 4) - 3 = [-1, 1)
        x = u * xt[i]
        if abs(x) < xt[i + 1]:
            return x
        if i == 0:  # the tail, by hand
            tx, ty = 1.0, 0.0
            while -2.0 * ty < tx * tx:
                tx = math.log(_open01(rng)) / ZIG_NORM_R
                ty = math.log(_open01(rng))
            return tx - ZIG_NORM_R if u < 0.0 else ZIG_NORM_R - tx
        uniform = (rng.next_u64() >> 11) * 2.0 ** -53
        if ft[i + 1] + (ft[i] - ft[i + 1]) * uniform < math.exp(-x * x / 2.0):
            return x


def normal(rng: ChaCha, mean: float, std_dev: float) -> float:
    """rand_distr's `Normal::sample`: mean + std_dev * z."""
    return mean + std_dev * standard_normal(rng)


def upstream_normal_samples(seed: int, n: int) -> list[float]:
    """The first `n` standard normal draws of upstream's `StdRng::seed_from_u64(seed)`."""
    rng = ChaCha.seed_from_u64(seed)
    return [standard_normal(rng) for _ in range(n)]
