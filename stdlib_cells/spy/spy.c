/* `spy`: records every passing packet in a pcap file (nanosecond timestamps, raw IPv4 link type),
 * then forwards it unchanged. Packets of synthetic flows carry no payload, so their record is an
 * IPv4 + UDP header built from what the engine knows (addresses, flow, sequence, size). */
#define RT_CELL_API
#include "rattan_engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    FILE *f;
    char *buf;
    uint32_t snaplen;
    int failed;              /* a write failed (disk full): stop writing, keep forwarding */
} spy_t;

#define PCAP_MAGIC_NS 0xa1b23c4du
#define LINKTYPE_RAW 101

static void put16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)(v >> 8); p[1] = (unsigned char)v; }
static void put32(unsigned char *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }

static int spy_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    spy_t *s = state;
    (void)n_outputs; (void)now;
    const char *path = rt_cfg_str(c, "path");
    uint64_t snaplen = rt_cfg_has(c, "snaplen") ? rt_cfg_u64(c, "snaplen") : 0;
    if (rt_cfg_status(c)) return RT_EINVAL;
    if (!path[0]) return rt_cfg_fail(c, "path", "must not be empty");
    s->snaplen = snaplen && snaplen < 65536 ? (uint32_t)snaplen : 96;
    s->f = fopen(path, "wb");
    if (!s->f) {
        char why[300];
        snprintf(why, sizeof why, "cannot write `%s`: %s", path, strerror(errno));
        return rt_cfg_fail(c, "path", why);
    }
    s->buf = malloc(1 << 16);
    if (s->buf) setvbuf(s->f, s->buf, _IOFBF, 1 << 16);
    /* the global header is in the writer's byte order: readers detect it from the magic */
    struct { uint32_t magic; uint16_t major, minor; int32_t zone; uint32_t sigfigs, snaplen, link; } h =
        {PCAP_MAGIC_NS, 2, 4, 0, 0, s->snaplen, LINKTYPE_RAW};
    if (fwrite(&h, sizeof h, 1, s->f) != 1) s->failed = 1;
    return RT_OK;
}

static void spy_destroy(void *state) {
    spy_t *s = state;
    if (s->f) fclose(s->f);
    free(s->buf);
}

static uint16_t ip_checksum(const unsigned char *p, int n) {
    uint32_t sum = 0;
    for (int i = 0; i < n; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void record(spy_t *s, const rt_pkt *k) {
    unsigned char pkt[28] = {0};
    uint32_t len = k->size;
    pkt[0] = 0x45;
    put16(pkt + 2, (uint16_t)(len > 0xffff ? 0xffff : len));
    put16(pkt + 4, (uint16_t)k->fseq);
    pkt[8] = 64;                                   /* TTL */
    pkt[9] = 17;                                   /* UDP */
    put32(pkt + 12, k->src_addr);
    put32(pkt + 16, k->dst_addr);
    put16(pkt + 10, ip_checksum(pkt, 20));
    put16(pkt + 20, (uint16_t)(40000 + (k->flow & 0x3fff)));
    put16(pkt + 22, 5201);
    put16(pkt + 24, (uint16_t)(len >= 28 ? len - 20 : 8));
    uint32_t cap = len < 28 ? len : 28;
    if (cap > s->snaplen) cap = s->snaplen;
    struct { uint32_t sec, nsec, caplen, len; } r = {(uint32_t)(k->t / 1000000000u), (uint32_t)(k->t % 1000000000u),
                                                      cap, len};
    if (fwrite(&r, sizeof r, 1, s->f) != 1 || fwrite(pkt, 1, cap, s->f) != cap) s->failed = 1;
}

/* A real packet: its bytes from the IP header on. */
static void record_real(spy_t *s, const rt_pkt *k) {
    uint32_t len = k->len - 14, cap = len < s->snaplen ? len : s->snaplen;
    struct { uint32_t sec, nsec, caplen, len; } r = {(uint32_t)(k->t / 1000000000u), (uint32_t)(k->t % 1000000000u),
                                                      cap, len};
    if (fwrite(&r, sizeof r, 1, s->f) != 1 || fwrite(k->buf + 14, 1, cap, s->f) != cap) s->failed = 1;
}

static void spy_enqueue(rt_node *n, void *state, rt_pkt *k) {
    spy_t *s = state;
    if (!s->failed && k->buf && k->len > 14) record_real(s, k);
    else if (!s->failed) record(s, k);
    rt_emit(n, 0, k, k->t);
}

const rt_cell_ops rt_cell_spy = {.type = "spy", .state_size = sizeof(spy_t), .init = spy_init,
                                 .destroy = spy_destroy, .enqueue = spy_enqueue};
