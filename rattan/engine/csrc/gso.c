/* GSO super-frames: reading what a frame with a virtio-net header stands for, and cutting it into
 * segments in user space, as the kernel's tcp_gso_segment / __udp_gso_segment would.
 *
 * In GSO mode (io.c, PACKET_VNET_HDR) a TCP sender's 64 KiB TSO frame crosses the engine whole.
 * Cells that act per packet (loss, duplicate, corrupt, the packet log, ...) must see the segments
 * the wire would carry; the compiler says at which endpoints a super-frame may meet such a cell
 * (rattan/passes/mark_segmenting.py) and the engine cuts there, at ingress. Every segment leaves
 * with a complete checksum, so that `corrupt` flips a bit the receiver's check catches. */
#include "gso.h"

#include <string.h>

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* One's complement sum of big-endian 16-bit words (an odd last byte padded with zero), unfolded. */
static uint64_t sum16(const uint8_t *p, uint32_t n, uint64_t acc) {
    while (n >= 8) {
        acc += (uint64_t)get32(p) + get32(p + 4);
        p += 8;
        n -= 8;
    }
    while (n >= 2) { acc += get16(p); p += 2; n -= 2; }
    if (n) acc += (uint64_t)p[0] << 8;
    return acc;
}

static uint16_t fold(uint64_t acc) {
    while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)acc;
}

/* The pseudo-header's sum for an L4 segment of `l4_len` bytes. */
static uint64_t pseudo(const uint8_t *frame, const gso_info *g, uint8_t proto, uint32_t l4_len) {
    if (g->ipv6) return sum16(frame + g->l3 + 8, 32, 0) + l4_len + proto;
    return sum16(frame + g->l3 + 12, 8, 0) + l4_len + proto;
}

int gso_inspect(const uint8_t *frame, uint32_t len, const gso_vnet *vh, gso_info *out) {
    memset(out, 0, sizeof *out);
    out->segs = 1;
    out->ip_bytes = len > 14 ? len - 14 : 0;
    int gso = vh && vh->gso_type != GSO_NONE;
    if (len < 14 + 20) return gso ? -1 : 0;
    uint16_t type = get16(frame + 12);
    uint8_t proto;
    uint16_t l4;
    if (type == 0x0800 && (frame[14] >> 4) == 4) {
        uint16_t ihl = (uint16_t)((frame[14] & 15) * 4);
        if (ihl < 20) return gso ? -1 : 0;
        proto = frame[14 + 9];
        l4 = (uint16_t)(14 + ihl);
    } else if (type == 0x86DD && len >= 14 + 40 && (frame[14] >> 4) == 6) {
        proto = frame[14 + 6];  /* extension headers are not followed: such a frame is not cut */
        l4 = 14 + 40;
        out->ipv6 = 1;
    } else {
        return gso ? -1 : 0;
    }
    out->l3 = 14;
    out->l4 = l4;
    if (proto == 6 && len >= (uint32_t)l4 + 20) {
        uint16_t doff = (uint16_t)((frame[l4 + 12] >> 4) * 4);
        if (doff < 20 || len < (uint32_t)l4 + doff) return gso ? -1 : 0;
        out->tcp = 1;
        out->hdr_len = (uint16_t)(l4 + doff);
    } else if (proto == 17 && len >= (uint32_t)l4 + 8) {
        out->hdr_len = (uint16_t)(l4 + 8);
    } else {
        return gso ? -1 : 0;
    }
    if (!gso) return 0;
    uint8_t t = vh->gso_type & (uint8_t)~GSO_ECN;
    int fits = (t == GSO_TCPV4 && out->tcp && !out->ipv6) || (t == GSO_TCPV6 && out->tcp && out->ipv6) ||
               (t == GSO_UDP_L4 && !out->tcp);
    if (!fits || !vh->gso_size) return -1;
    uint32_t payload = len - out->hdr_len;
    out->segs = payload ? (payload + vh->gso_size - 1) / vh->gso_size : 1;
    out->ip_bytes = out->segs * (uint32_t)(out->hdr_len - 14) + payload;
    return 0;
}

uint32_t gso_segment(const uint8_t *frame, uint32_t len, const gso_vnet *vh, const gso_info *g, uint32_t i,
                     uint8_t *out) {
    uint32_t off = g->hdr_len + i * (uint32_t)vh->gso_size;
    uint32_t plen = len - off < vh->gso_size ? len - off : vh->gso_size;
    memcpy(out, frame, g->hdr_len);
    memcpy(out + g->hdr_len, frame + off, plen);
    uint32_t l4_len = (uint32_t)(g->hdr_len - g->l4) + plen;
    if (g->ipv6) {
        put16(out + g->l3 + 4, (uint16_t)(g->hdr_len - g->l4 + plen));
    } else {
        uint16_t ihl = (uint16_t)(g->l4 - g->l3);
        put16(out + g->l3 + 2, (uint16_t)(ihl + l4_len));
        put16(out + g->l3 + 4, (uint16_t)(get16(frame + g->l3 + 4) + i));
        put16(out + g->l3 + 10, 0);
        put16(out + g->l3 + 10, (uint16_t)~fold(sum16(out + g->l3, ihl, 0)));
    }
    uint8_t *l4 = out + g->l4;
    if (g->tcp) {
        put32(l4 + 4, get32(frame + g->l4 + 4) + i * (uint32_t)vh->gso_size);
        if (i + 1 < g->segs) l4[13] &= (uint8_t)~(0x01 | 0x08);  /* FIN, PSH: the last segment's */
        if (i > 0) l4[13] &= (uint8_t)~0x80;                     /* CWR: the first's */
        put16(l4 + 16, 0);
        put16(l4 + 16, (uint16_t)~fold(sum16(l4, l4_len, pseudo(out, g, 6, l4_len))));
    } else {
        put16(l4 + 4, (uint16_t)l4_len);
        put16(l4 + 6, 0);
        uint16_t c = (uint16_t)~fold(sum16(l4, l4_len, pseudo(out, g, 17, l4_len)));
        put16(l4 + 6, c ? c : 0xffff);
    }
    return g->hdr_len + plen;
}

int gso_complete_csum(uint8_t *frame, uint32_t len, uint16_t csum_start, uint16_t csum_offset) {
    if ((uint32_t)csum_start + csum_offset + 2 > len) return -1;
    uint8_t *field = frame + csum_start + csum_offset;
    uint16_t c = (uint16_t)~fold(sum16(frame + csum_start, len - csum_start, 0));
    /* UDP sends 0 as "no checksum": a computed 0 is written as 0xffff (also right for TCP) */
    put16(field, c ? c : 0xffff);
    return 0;
}

int gso_l4_csum_ok(const uint8_t *frame, uint32_t len) {
    gso_info g;
    if (gso_inspect(frame, len, NULL, &g) < 0 || !g.hdr_len) return -1;
    uint32_t l4_len = g.ipv6 ? get16(frame + g.l3 + 4) : (uint32_t)get16(frame + g.l3 + 2) - (g.l4 - g.l3);
    if ((uint32_t)g.l4 + l4_len > len) return 0;
    if (!g.ipv6 && fold(sum16(frame + g.l3, g.l4 - g.l3, 0)) != 0xffff) return 0;
    uint64_t acc = sum16(frame + g.l4, l4_len, pseudo(frame, &g, g.tcp ? 6 : 17, l4_len));
    return fold(acc) == 0xffff;
}

/* ---------------------------------------------------------------- merging at egress */
#define TCP_ACK 0x10
#define TCP_PSH 0x08

/* A segment that may take part in a run: Ethernet IPv4 without options or fragments, TCP with
 * payload, flags ACK or ACK|PSH, headers and checksums right. Fills g; 0 or -1. */
static int mergeable(const uint8_t *f, uint32_t len, int partial, gso_info *g) {
    if (gso_inspect(f, len, NULL, g) < 0 || !g->tcp || g->ipv6 || g->l4 != 14 + 20) return -1;
    if (len <= g->hdr_len || get16(f + 14 + 2) != len - 14) return -1;   /* payload; no Ethernet padding */
    if (get16(f + 14 + 6) & 0x3fff) return -1;                          /* MF or an offset: a fragment */
    uint8_t flags = f[g->l4 + 13];
    if ((flags & ~TCP_PSH) != TCP_ACK || get16(f + g->l4 + 18)) return -1; /* urgent pointer */
    if (fold(sum16(f + 14, 20, 0)) != 0xffff) return -1;
    if (!partial && gso_l4_csum_ok(f, len) != 1) return -1;
    return 0;
}

int gso_merge_start(gso_merge *m, uint8_t *frame, uint32_t len, int partial) {
    memset(m, 0, sizeof *m);
    if (mergeable(frame, len, partial, &m->g) < 0 || (frame[m->g.l4 + 13] & TCP_PSH)) return -1;
    m->frame = frame;
    m->len = len;
    m->mss = (uint16_t)(len - m->g.hdr_len);
    m->next_seq = get32(frame + m->g.l4 + 4) + m->mss;
    m->segs = 1;
    return 0;
}

int gso_merge_fits(const gso_merge *m, const uint8_t *f, uint32_t len, int partial) {
    if (m->closed) return 0;
    gso_info g;
    if (mergeable(f, len, partial, &g) < 0 || g.hdr_len != m->g.hdr_len) return 0;
    uint32_t payload = len - g.hdr_len;
    if (payload > m->mss || m->len - 14 + payload > 65535) return 0;
    const uint8_t *a = m->frame, *l4 = f + g.l4, *al4 = a + g.l4;
    if (memcmp(f, a, 14) || f[14 + 1] != a[14 + 1] || f[14 + 6] != a[14 + 6] || f[14 + 8] != a[14 + 8] ||
        memcmp(f + 14 + 12, a + 14 + 12, 8))                 /* TOS, DF, TTL, addresses */
        return 0;
    if (memcmp(l4, al4, 4) || get32(l4 + 4) != m->next_seq || memcmp(l4 + 8, al4 + 8, 5) ||
        memcmp(l4 + 14, al4 + 14, 2) || memcmp(l4 + 20, al4 + 20, (size_t)(g.hdr_len - g.l4 - 20)))
        return 0;                                            /* ports, seq, ack, offset, window, options */
    return 1;
}

void gso_merge_add(gso_merge *m, const uint8_t *f, uint32_t len) {
    uint32_t payload = len - m->g.hdr_len;
    memcpy(m->frame + m->len, f + m->g.hdr_len, payload);
    m->len += payload;
    m->next_seq += payload;
    m->segs++;
    if (f[m->g.l4 + 13] & TCP_PSH) m->psh = 1;
    if (payload < m->mss || m->psh) m->closed = 1;
}

uint32_t gso_merge_finish(gso_merge *m, gso_vnet *vh) {
    uint8_t *f = m->frame;
    const gso_info *g = &m->g;
    put16(f + 14 + 2, (uint16_t)(m->len - 14));
    put16(f + 14 + 10, 0);
    put16(f + 14 + 10, (uint16_t)~fold(sum16(f + 14, 20, 0)));
    if (m->psh) f[g->l4 + 13] |= TCP_PSH;
    put16(f + g->l4 + 16, fold(pseudo(f, g, 6, m->len - g->l4)));
    *vh = (gso_vnet){.flags = GSO_F_NEEDS_CSUM, .gso_type = GSO_TCPV4, .hdr_len = g->hdr_len, .gso_size = m->mss,
                     .csum_start = g->l4, .csum_offset = 16};
    return m->len;
}
