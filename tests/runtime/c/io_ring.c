/* GSO mode's receive ring against frames of every size, on a veth pair of the caller's namespace
 * (MTU 9000 on both): rattan's io.c compiled in as it is, its recvmmsg calls and the frames they
 * return counted. A GSO port on IF_TX sends, a GSO port on IF_RX receives (test_gso.py builds and
 * runs this).
 *
 * usage: io_ring IF_RX IF_TX N   prints one line of key=value:
 *   mixed_sent      N frames of six kinds in a seeded random order, sent in batches of 64: 64-byte
 *                   UDP, 1514-byte TCP with a partial checksum, UDP that just fits a ring frame, UDP
 *                   one byte longer, TCP and UDP GSO super-frames of about 64 KiB
 *   mixed_got       ... received in the order sent, each byte-exact with its virtio-net header
 *   mixed_bad       ... received out of order, changed, or with another header
 *   mixed_copies    ... received from the socket's queue (recvmmsg)
 *   mixed_over      ... of them too large for a ring frame (the copies there should be)
 *   mixed_lost      io_take_lost(p, 1) after them
 *   full_got        8 super-frames and 8 small frames with the receive buffer at the kernel's least:
 *                   received, in order ...
 *   full_cheap      ... and lost as io_take_lost(p, 0) says (the copies the kernel could not queue)
 *   ring_got        the ring's frames and 100 more small ones sent at once: received ...
 *   ring_cheap      ... and lost as io_take_lost(p, 0) says right after
 *   ring_exact      ... and as io_take_lost(p, 1) says then (the kernel's count, ring full)
 *   again_got       the same once more: received (the ring's frames, and one frame after them) ...
 *   again_cheap     ... and lost as io_take_lost(p, 0) says before that frame
 *   after_cheap     ... and after it (the frame says the kernel dropped some: TP_STATUS_LOSING)
 *   after_exact     ... and as io_take_lost(p, 1) says then */
#define _GNU_SOURCE  /* before any header, as io.c has it */
#include <sys/socket.h>

static int recvmmsg_calls, recvmmsg_frames;

static int counted_recvmmsg(int fd, struct mmsghdr *m, unsigned n, int flags, struct timespec *t) {
    recvmmsg_calls++;
    int r = recvmmsg(fd, m, n, flags, t);
    if (r > 0) recvmmsg_frames += r;
    return r;
}

#define recvmmsg counted_recvmmsg
#undef _GNU_SOURCE
#include "io.c"
#undef recvmmsg

enum { K64, K1514, KFIT, KOVER, KTSO, KUSO, KINDS };

/* tpacket_rcv puts a frame at TPACKET_ALIGN(TPACKET2_HDRLEN + 14) + vnet header - 14 into its ring frame */
#define RING_ROOM (RING_FRAME - (TPACKET_ALIGN(TPACKET2_HDRLEN + 14) + (int)sizeof(gso_vnet) - 14))

typedef struct {
    uint8_t *buf;
    uint32_t len;
    gso_vnet vh;
} sent_frame;

static uint16_t ip_csum(const uint8_t *h) {
    uint32_t s = 0;
    for (int i = 0; i < 20; i += 2) s += (uint32_t)h[i] << 8 | h[i + 1];
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* Frame `seq` of `kind`: Ethernet to a MAC no one has (the stack drops it as PACKET_OTHERHOST),
 * IPv4, UDP or TCP, a payload that says its number. */
static void build(sent_frame *f, int kind, uint32_t seq) {
    int tcp = kind == K1514 || kind == KTSO;
    uint32_t l4 = tcp ? 20 : 8, payload;
    switch (kind) {
    case K64: payload = 64 - 14 - 20 - 8; break;
    case K1514: payload = 1514 - 14 - 20 - 20; break;
    case KFIT: payload = RING_ROOM - 14 - 20 - 8; break;
    case KOVER: payload = RING_ROOM + 1 - 14 - 20 - 8; break;
    case KTSO: payload = 45 * 1448; break;
    default: payload = 44 * 1472; break;
    }
    f->len = 14 + 20 + l4 + payload;
    f->buf = malloc(f->len);
    uint8_t *b = f->buf;
    memset(b, 0, 34 + l4);
    memcpy(b, "\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00", 14);
    uint8_t *ip = b + 14;
    ip[0] = 0x45, ip[8] = 64, ip[9] = tcp ? 6 : 17;
    ip[2] = (uint8_t)((f->len - 14) >> 8), ip[3] = (uint8_t)(f->len - 14);
    ip[4] = (uint8_t)(seq >> 8), ip[5] = (uint8_t)seq;
    memcpy(ip + 12, "\x0a\x63\0\x01\x0a\x63\0\x02", 8);
    uint16_t c = ip_csum(ip);
    ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
    uint8_t *l = ip + 20;
    l[0] = 0x30, l[1] = 0x39, l[2] = 0x30, l[3] = (uint8_t)(0x3a + kind);
    if (tcp) {
        memcpy(l + 4, &seq, 4);
        l[12] = 5 << 4, l[13] = 0x10, l[14] = 0xff, l[15] = 0xff;  /* ACK, window */
    } else {
        uint32_t ul = 8 + (kind == KUSO ? 1472 : payload);
        l[4] = (uint8_t)(ul >> 8), l[5] = (uint8_t)ul;
    }
    for (uint32_t i = 0; i < payload; i++) b[34 + l4 + i] = (uint8_t)(seq * 131 + i * 7 + kind);
    memcpy(b + 34 + l4, &seq, 4);
    memset(&f->vh, 0, sizeof f->vh);
    if (kind == K1514 || kind == KTSO || kind == KUSO) {  /* a partial checksum, as an offloading sender leaves it */
        f->vh.flags = GSO_F_NEEDS_CSUM;
        f->vh.csum_start = 34;
        f->vh.csum_offset = tcp ? 16 : 6;
    }
    if (kind == KTSO) f->vh.gso_type = GSO_TCPV4, f->vh.gso_size = 1448, f->vh.hdr_len = 54;
    if (kind == KUSO) f->vh.gso_type = GSO_UDP_L4, f->vh.gso_size = 1472, f->vh.hdr_len = 42;
}

typedef struct {
    sent_frame *sent;
    int n, next, bad;
} expect;

static void take(void *ctx, const uint8_t *f, uint32_t len, uint64_t rx_ns, const gso_vnet *vh) {
    expect *x = ctx;
    (void)rx_ns;
    if (len < 14 || f[12] != 0x08 || f[13] != 0x00 || f[0] != 0x02) return;  /* not one of ours */
    const sent_frame *s = x->next < x->n ? &x->sent[x->next] : NULL;
    x->next++;
    int same = s && vh && len == s->len && memcmp(f, s->buf, len) == 0 && vh->gso_type == s->vh.gso_type &&
               (!s->vh.gso_type || vh->gso_size == s->vh.gso_size) &&
               (vh->flags & GSO_F_NEEDS_CSUM) == (s->vh.flags & GSO_F_NEEDS_CSUM) &&
               (!(s->vh.flags & GSO_F_NEEDS_CSUM) ||
                (vh->csum_start == s->vh.csum_start && vh->csum_offset == s->vh.csum_offset));
    if (!same) x->bad++;
}

static void send_frames(io_port *tx, int ifindex, sent_frame *f, int n) {
    uint8_t *frames[64];
    uint32_t lens[64];
    gso_vnet vh[64];
    int ifx[64];
    uint64_t calls = 0;
    for (int at = 0; at < n;) {
        int k = n - at < 64 ? n - at : 64;
        for (int i = 0; i < k; i++) frames[i] = f[at + i].buf, lens[i] = f[at + i].len, vh[i] = f[at + i].vh, ifx[i] = ifindex;
        int took = io_send_to(tx, frames, lens, vh, ifx, k, NULL, &calls);
        if (took != k) { fprintf(stderr, "io_ring: sent %d of %d: %s\n", took, k, strerror(errno)); exit(1); }
        at += k;
    }
}

static void receive_all(io_port *rx, expect *x) {
    struct timespec pause = {0, 20 * 1000 * 1000};  /* the last frames through the softirq */
    nanosleep(&pause, NULL);
    while (io_receive(rx, take, x, 256) > 0) {}
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s IF_RX IF_TX N\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[3]);
    io_port *rx = io_open(NULL, argv[1], IO_GSO), *tx = io_open(NULL, argv[2], IO_GSO);
    if (!rx || !tx) { fprintf(stderr, "io_ring: io_open: %s\n", strerror(errno)); return 1; }
    if (!rx->ring) { fprintf(stderr, "io_ring: the GSO port has no ring\n"); return 1; }
    int to = io_ifindex(tx);

    /* every kind, mixed, in batches that hold more copies than one recvmmsg takes */
    sent_frame *f = calloc((size_t)n, sizeof *f);
    unsigned rng = 7;
    int over = 0;
    for (int i = 0; i < n; i++) {
        rng = rng * 1103515245u + 12345u;
        int kind = (int)((rng >> 16) % KINDS);
        build(&f[i], kind, (uint32_t)i);
        over += f[i].len > RING_ROOM;
    }
    expect x = {.sent = f, .n = n};
    for (int at = 0; at < n; at += 64) {
        send_frames(tx, to, f + at, n - at < 64 ? n - at : 64);
        receive_all(rx, &x);
    }
    uint64_t mixed_lost = io_take_lost(rx, 1);
    int mixed_got = x.next, mixed_bad = x.bad, mixed_copies = recvmmsg_frames;

    /* the socket's queue full: the kernel keeps only the ring's cut-short frame */
    int small = 1, big = RX_RCVBUF;
    sent_frame g[16];
    for (int i = 0; i < 16; i++) build(&g[i], i < 8 ? KTSO : K64, (uint32_t)(n + i));
    if (setsockopt(io_fd(rx), SOL_SOCKET, SO_RCVBUF, &small, sizeof small) < 0) { perror("SO_RCVBUF"); return 1; }
    send_frames(tx, to, g, 16);
    expect y = {.sent = g, .n = 16};
    /* the first super-frame is queued (the queue was empty), the other 7 lost: expect those out of the list */
    sent_frame kept[9];
    kept[0] = g[0];
    for (int i = 0; i < 8; i++) kept[1 + i] = g[8 + i];
    y.sent = kept, y.n = 9;
    receive_all(rx, &y);
    uint64_t full_cheap = io_take_lost(rx, 0);
    int full_got = y.bad ? -1 : y.next;
    setsockopt(io_fd(rx), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);

    /* the ring full: the kernel's count */
    int burst = (int)rx->frames + 100;
    sent_frame *h = calloc((size_t)burst + 1, sizeof *h);
    for (int i = 0; i <= burst; i++) build(&h[i], K64, (uint32_t)i);
    send_frames(tx, to, h, burst);
    expect z = {.sent = h, .n = burst + 1};
    receive_all(rx, &z);
    uint64_t ring_cheap = io_take_lost(rx, 0), ring_exact = io_take_lost(rx, 1);
    int ring_got = z.bad ? -1 : z.next;
    /* again, and then one frame more, which says the kernel dropped some (TP_STATUS_LOSING) */
    z.next = 0;
    send_frames(tx, to, h, burst);
    receive_all(rx, &z);
    uint64_t again_cheap = io_take_lost(rx, 0);
    int again_ring = z.next;
    z.next = z.n - 1;  /* the frame after: any number, here the last */
    send_frames(tx, to, h + burst, 1);
    receive_all(rx, &z);
    int again_got = z.bad ? -1 : again_ring + z.next - (z.n - 1);
    uint64_t after_cheap = io_take_lost(rx, 0), after_exact = io_take_lost(rx, 1);

    printf("mixed_sent=%d mixed_got=%d mixed_bad=%d mixed_copies=%d mixed_over=%d mixed_lost=%llu full_got=%d "
           "full_cheap=%llu ring_got=%d ring_cheap=%llu ring_exact=%llu again_got=%d again_cheap=%llu after_cheap=%llu "
           "after_exact=%llu recvmmsg_calls=%d\n",
           n, mixed_got, mixed_bad, mixed_copies, over, (unsigned long long)mixed_lost, full_got,
           (unsigned long long)full_cheap, ring_got, (unsigned long long)ring_cheap, (unsigned long long)ring_exact,
           again_got, (unsigned long long)again_cheap, (unsigned long long)after_cheap, (unsigned long long)after_exact,
           recvmmsg_calls);
    io_close(rx);
    io_close(tx);
    return 0;
}
