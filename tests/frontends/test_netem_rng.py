"""Upstream's random numbers (rand 0.9 StdRng + rand_distr 0.5 Normal), pinned by netem-trace's doc tests."""
from __future__ import annotations

import math
from fractions import Fraction

from rattan.frontends.netem_rng import ChaCha, normal, upstream_normal_samples


def test_chacha20_keystream_of_the_zero_key():
    # rand_chacha's test_chacha_true_values_a (the RFC 7539 / djb zero-key block)
    rng = ChaCha(bytes(32), rounds=20)
    assert [rng.next_u32() for _ in range(4)] == [0xADE0B876, 0x903DF1A0, 0xE56A5D40, 0x28BD8653]


def test_stdrng_and_chacha20_normal_draws_match_upstreams_doc_tests():
    # bw.rs NormalizedBwConfig docs: StdRng (ChaCha12) and ChaCha20Rng, seed 42, N(12e6, 1e6) as u64
    std = ChaCha.seed_from_u64(42)
    assert [int(normal(std, 12e6, 1e6)) for _ in range(2)] == [12_069_427, 12_132_938]
    cha = ChaCha.seed_from_u64(42, rounds=20)
    assert [int(normal(cha, 12e6, 1e6)) for _ in range(3)] == [12_044_676, 11_754_367, 11_253_775]


def test_lognormal_delay_draws_match_upstreams_doc_tests():
    # delay_per_packet.rs LogNormalizedDelayPerPacketConfig docs: mean 12ms, std_dev 1ms, seed 42
    m, s = 0.012, 0.001
    sigma = math.sqrt(math.log(1.0 + s**2 / m**2))
    mu = math.log(m) - sigma**2 / 2.0
    rng = ChaCha.seed_from_u64(42)
    ns = [round(Fraction(math.exp(normal(rng, mu, sigma))) * 10**9) for _ in range(2)]
    assert ns == [12_027_817, 12_091_533]


def test_100k_draws_with_tails_and_rejections_match_upstreams_average():
    # bw.rs truncated-normal docs: N(12, 12) Mbit/s, 100 s in 1 ms steps, clamped at 0 by `as u64`;
    # a sum over 100 000 draws exercises the ziggurat's rejection and tail paths
    rng = ChaCha.seed_from_u64(42)
    total = 0.0
    for _ in range(100_000):
        v = normal(rng, 12e6, 12e6)
        bps = int(v) if v > 0 else 0
        total += (float(bps // 10**9) + float(bps % 10**9) / 1e9) * 1000.0
    assert total / 100_000 == 12.974758080079994


def test_upstream_normal_samples_is_the_standard_normal_stream():
    z = upstream_normal_samples(42, 3)
    rng = ChaCha.seed_from_u64(42)
    assert [normal(rng, 0.0, 1.0) for _ in range(3)] == z and len(set(z)) == 3


def test_ziggurat_tables_are_rands():
    # the first and last entries of rand_distr's ziggurat_tables.rs (printed there with 18 decimals)
    from rattan.frontends.netem_rng import ZIG_NORM_F, ZIG_NORM_X
    assert ["%.18f" % x for x in ZIG_NORM_X[:3]] == ["3.910757959537090045", "3.654152885361008796",
                                                     "3.449278298560964462"]
    assert ["%.18f" % f for f in ZIG_NORM_F[:3]] == ["0.000477467764586655", "0.001260285930498598",
                                                     "0.002609072746106363"]
    assert (len(ZIG_NORM_X), ZIG_NORM_X[256], ZIG_NORM_F[256]) == (257, 0.0, 1.0)
