/* Packet I/O for real-time runs: AF_PACKET with a memory-mapped TPACKET_V2 receive ring and batched
 * sendmmsg, on veth interfaces that may live in another network namespace.
 *
 * Measured on these machines (../shared/notes/packet-io.md): TPACKET_V2 has no block-retire wait
 * (V3 adds 1-2 ms per hop at low rates); veth hands over partial checksums unless transmit
 * checksumming is off on the endpoints (io_tune); an rx socket sees our own transmissions unless
 * PACKET_IGNORE_OUTGOING; arrival times come from the kernel, not from user space.
 *
 * GSO mode (IO_GSO) puts a virtio-net header before every frame (PACKET_VNET_HDR), sent as a second
 * iovec before the frame. It receives from a TPACKET_V2 ring too, with the header before each frame
 * (tpacket_rcv writes it there): a frame too large for a ring frame (a super-frame) arrives there
 * cut short with TP_STATUS_COPY while the kernel queues the whole of it on the socket
 * (PACKET_COPY_THRESH), and is read with recvmmsg when the ring reaches it, so order is kept. The
 * kernel queues the copy under the lock it takes a ring frame with, so the socket's queue holds the
 * copies in ring order, and one only for a frame that says TP_STATUS_COPY; a copy it cannot queue
 * (the receive buffer full) leaves the ring's frame cut short without the flag: counted lost.
 * RATTAN_GSO_RX=socket in the environment, or a kernel that refuses the ring with the header,
 * reads everything with recvmmsg instead (what GSO mode did first; benchmarks compare the two). */
#define _GNU_SOURCE
#include "io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

/* Overridable at build time (RATTAN_CFLAGS="-DRING_BLOCKS=512"): benchmarks/kernel_settings.py says
 * how sizes were measured against each other, docs/running.md has the figures (no gain either way). */
#ifndef RING_FRAME
#define RING_FRAME 2048          /* the smallest power of two that holds a 1514-byte frame and its header */
#endif
#ifndef RING_BLOCK
#define RING_BLOCK (1 << 16)
#endif
#ifndef RING_BLOCKS
#define RING_BLOCKS 128          /* 4096 frames of 2 KiB, 8 MiB per port (a 4 s TCP run at 5 Gbit/s
                                    overflowed 2048 frames 0.3 % of the time) */
#endif

#define RX_BATCH 16             /* GSO mode: frames per recvmmsg, each buffer IO_SUPER_MAX (1 MiB per port) */
#define RX_RCVBUF (16 << 20)    /* GSO mode: the socket's queue, for bursts of super-frames */

_Static_assert(sizeof(gso_vnet) == 10, "gso_vnet is struct virtio_net_hdr");

struct io_port {
    int rx, tx, ifindex, mode;
    uint64_t netns;          /* inode of its network namespace: ports with the same one share sends */
    uint8_t *ring;
    size_t ring_size;
    unsigned frames, next;
    uint64_t lost;           /* frames not delivered: ring full (kernel count) or oversized */
    /* GSO mode; with a ring, rbuf and rvh take the frames copied whole to the socket's queue */
    uint8_t *rbuf;           /* RX_BATCH receive buffers */
    gso_vnet rvh[RX_BATCH];
    char cmsg[RX_BATCH][CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(uint32_t))];
    int rxq_ovfl;            /* SO_RXQ_OVFL is on: each frame says how many the socket had dropped */
    uint32_t drops_seen;     /* ... the latest such count */
    int drops_due;           /* ... it grew: the kernel's count has drops io_take_lost has not taken */
};

/* Run the next calls in the namespace at `path`; `saved` gets the caller's (this thread only). */
static int enter(const char *path, int *saved) {
    *saved = -1;
    if (!path) return 0;
    *saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (*saved < 0) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
        int err = errno;
        if (fd >= 0) close(fd);
        close(*saved);
        *saved = -1;
        errno = err;
        return -1;
    }
    close(fd);
    return 0;
}

static void leave(int saved) {
    if (saved < 0) return;
    int err = errno;
    if (setns(saved, CLONE_NEWNET) < 0) abort();  /* a thread stuck in the wrong namespace must not go on */
    close(saved);
    errno = err;
}

static void close_rx(io_port *p);

void io_close(io_port *p) {
    if (!p) return;
    close_rx(p);
    if (p->tx >= 0) close(p->tx);
    free(p);
}

static int tx_setup(io_port *p, struct sockaddr_ll *sll) {
    int one = 1, sndbuf = 4 << 20;
    setsockopt(p->tx, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    setsockopt(p->tx, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    sll->sll_protocol = 0;
    return bind(p->tx, (struct sockaddr *)sll, sizeof *sll);
}

/* GSO mode without a ring: the vnet header on, kernel timestamps, room for bursts of super-frames. */
static int open_gso_rx(io_port *p) {
    int one = 1, rcvbuf = RX_RCVBUF;
    if (setsockopt(p->rx, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) return -1;
    if (setsockopt(p->rx, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) < 0) return -1;
    /* the socket's drop count on each frame, so that the kernel's statistics are read only after
     * drops (without it, io_take_lost reads them at every call) */
    p->rxq_ovfl = setsockopt(p->rx, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) == 0;
    if (setsockopt(p->rx, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
        setsockopt(p->rx, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    return 0;
}

/* The TPACKET_V2 receive ring; in GSO mode with the vnet header before each frame, and a super-frame
 * copied whole to the socket's queue (PACKET_VNET_HDR must come before the ring). */
static int open_ring(io_port *p) {
    int one = 1, v2 = TPACKET_V2;
    if (setsockopt(p->rx, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2) < 0) return -1;
    if (p->mode == IO_GSO) {
        int rcvbuf = RX_RCVBUF;
        if (setsockopt(p->rx, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) return -1;
        if (setsockopt(p->rx, SOL_PACKET, PACKET_COPY_THRESH, &one, sizeof one) < 0) return -1;
        if (setsockopt(p->rx, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
            setsockopt(p->rx, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    struct tpacket_req req = {.tp_block_size = RING_BLOCK, .tp_block_nr = RING_BLOCKS,
                              .tp_frame_size = RING_FRAME, .tp_frame_nr = RING_BLOCK / RING_FRAME * RING_BLOCKS};
    if (setsockopt(p->rx, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) return -1;
    p->frames = req.tp_frame_nr;
    p->ring_size = (size_t)req.tp_block_size * req.tp_block_nr;
    p->ring = mmap(NULL, p->ring_size, PROT_READ | PROT_WRITE, MAP_SHARED, p->rx, 0);
    if (p->ring == MAP_FAILED) { p->ring = NULL; return -1; }
    return 0;
}

/* The receive socket, bound last: created with protocol 0 it receives nothing before, so that its
 * queue holds nothing but the ring's copies. */
static int open_rx(io_port *p, struct sockaddr_ll *sll, int ring) {
    int one = 1;
    p->rx = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (p->rx < 0) return -1;
    setsockopt(p->rx, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);  /* kernels >= 4.20 */
    if (ring ? open_ring(p) < 0 : open_gso_rx(p) < 0) return -1;
    if (p->mode == IO_GSO && !(p->rbuf = malloc((size_t)RX_BATCH * IO_SUPER_MAX))) return -1;
    return bind(p->rx, (struct sockaddr *)sll, sizeof *sll);
}

static void close_rx(io_port *p) {
    if (p->ring) munmap(p->ring, p->ring_size);
    free(p->rbuf);
    if (p->rx >= 0) close(p->rx);
    p->ring = NULL, p->rbuf = NULL, p->rx = -1;
}

static int open_sockets(io_port *p, const char *ifname) {
    struct stat ns;
    if (stat("/proc/thread-self/ns/net", &ns) == 0) p->netns = (uint64_t)ns.st_ino;
    p->ifindex = (int)if_nametoindex(ifname);
    if (!p->ifindex) return -1;
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = p->ifindex};
    int one = 1;
    p->tx = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);  /* protocol 0: it receives nothing */
    if (p->tx < 0) return -1;
    if (p->mode == IO_GSO && setsockopt(p->tx, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) return -1;
    const char *rx = getenv("RATTAN_GSO_RX");
    int ring = p->mode == IO_PLAIN || !rx || strcmp(rx, "socket") != 0;
    if (open_rx(p, &sll, ring) < 0) {
        if (p->mode == IO_PLAIN || !ring) return -1;
        close_rx(p);  /* the kernel refused the ring with the vnet header: recvmmsg alone */
        if (open_rx(p, &sll, 0) < 0) return -1;
    }
    return tx_setup(p, &sll);
}

io_port *io_open(const char *netns_path, const char *ifname, int mode) {
    if (mode != IO_PLAIN && mode != IO_GSO) { errno = EINVAL; return NULL; }
    io_port *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->rx = p->tx = -1;
    p->mode = mode;
    int saved;
    if (enter(netns_path, &saved) < 0) { free(p); return NULL; }
    int rc = open_sockets(p, ifname);
    leave(saved);
    if (rc < 0) {
        int err = errno;
        io_close(p);
        errno = err;
        return NULL;
    }
    return p;
}

int io_fd(const io_port *p) { return p->rx; }
int io_mode(const io_port *p) { return p->mode; }

static int receive_gso(io_port *p, io_receive_fn *cb, void *ctx, int budget) {
    struct mmsghdr msgs[RX_BATCH];
    struct iovec iov[RX_BATCH][2];
    int n = 0;
    while (n < budget) {
        int k = budget - n < RX_BATCH ? budget - n : RX_BATCH;
        for (int i = 0; i < k; i++) {
            iov[i][0] = (struct iovec){.iov_base = &p->rvh[i], .iov_len = sizeof p->rvh[i]};
            iov[i][1] = (struct iovec){.iov_base = p->rbuf + (size_t)i * IO_SUPER_MAX, .iov_len = IO_SUPER_MAX};
            memset(&msgs[i], 0, sizeof msgs[i]);
            msgs[i].msg_hdr.msg_iov = iov[i];
            msgs[i].msg_hdr.msg_iovlen = 2;
            msgs[i].msg_hdr.msg_control = p->cmsg[i];
            msgs[i].msg_hdr.msg_controllen = sizeof p->cmsg[i];
        }
        int r = recvmmsg(p->rx, msgs, (unsigned)k, MSG_DONTWAIT, NULL);
        if (r <= 0) break;
        for (int i = 0; i < r; i++) {
            uint32_t got = msgs[i].msg_len;
            uint64_t ts = 0;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
                if (c->cmsg_level != SOL_SOCKET) continue;
                if (c->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec t;
                    memcpy(&t, CMSG_DATA(c), sizeof t);
                    ts = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
                } else if (c->cmsg_type == SO_RXQ_OVFL) {  /* absent while the socket has dropped nothing */
                    uint32_t drops;
                    memcpy(&drops, CMSG_DATA(c), sizeof drops);
                    if (drops != p->drops_seen) p->drops_seen = drops, p->drops_due = 1;
                }
            }
            if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || got < sizeof(gso_vnet)) { p->lost++; continue; }
            if (!ts) {  /* no kernel stamp: now, on the same clock */
                struct timespec t;
                clock_gettime(CLOCK_REALTIME, &t);
                ts = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
            }
            cb(ctx, p->rbuf + (size_t)i * IO_SUPER_MAX, got - (uint32_t)sizeof(gso_vnet), ts, &p->rvh[i]);
        }
        n += r;
        if (r < k) break;
    }
    return n;
}

static struct tpacket2_hdr *ring_frame(const io_port *p, unsigned i) {
    return (struct tpacket2_hdr *)(p->ring + (size_t)i * RING_FRAME);
}

/* The next `n` frames the kernel copied whole to the socket's queue (GSO mode with a ring): into
 * rbuf and rvh, their lengths (vnet header excluded; 0: not received) into `len`. */
static void receive_copies(io_port *p, int n, uint32_t *len) {
    struct mmsghdr msgs[RX_BATCH];
    struct iovec iov[RX_BATCH][2];
    for (int i = 0; i < n; i++) {
        iov[i][0] = (struct iovec){.iov_base = &p->rvh[i], .iov_len = sizeof p->rvh[i]};
        iov[i][1] = (struct iovec){.iov_base = p->rbuf + (size_t)i * IO_SUPER_MAX, .iov_len = IO_SUPER_MAX};
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = iov[i];
        msgs[i].msg_hdr.msg_iovlen = 2;
    }
    int r = recvmmsg(p->rx, msgs, (unsigned)n, MSG_DONTWAIT, NULL);
    for (int i = 0; i < n; i++) {
        int ok = i < r && !(msgs[i].msg_hdr.msg_flags & MSG_TRUNC) && msgs[i].msg_len >= sizeof(gso_vnet);
        len[i] = ok ? msgs[i].msg_len - (uint32_t)sizeof(gso_vnet) : 0;
    }
}

/* Hand over the ring's frames in order (plain mode; GSO mode with a ring). A frame the ring holds
 * cut short is a super-frame copied whole to the socket's queue (TP_STATUS_COPY), read in batches of
 * up to RX_BATCH in the ring's order; or, without the flag, a frame lost (too large, no copy). */
static int receive_ring(io_port *p, io_receive_fn *cb, void *ctx, int budget) {
    int gso = p->mode == IO_GSO, n = 0;
    while (n < budget) {
        int k = 0, copies = 0, full = 0;  /* full: stopped at RX_BATCH copies, not at the ring's end */
        for (unsigned at = p->next; n + k < budget; at = (at + 1) % p->frames) {
            uint32_t status = __atomic_load_n(&ring_frame(p, at)->tp_status, __ATOMIC_ACQUIRE);
            if (!(status & TP_STATUS_USER)) break;
            if (status & TP_STATUS_COPY) {
                if (copies == RX_BATCH) { full = 1; break; }
                copies++;
            }
            k++;
        }
        if (!k) break;
        uint32_t copy_len[RX_BATCH];
        if (gso && copies) receive_copies(p, copies, copy_len);
        for (int i = 0, c = 0; i < k; i++) {
            struct tpacket2_hdr *h = ring_frame(p, p->next);
            uint32_t status = h->tp_status;
            uint64_t ts = (uint64_t)h->tp_sec * 1000000000u + h->tp_nsec;
            const uint8_t *frame = (const uint8_t *)h + h->tp_mac;
            if (gso && (status & TP_STATUS_COPY)) {  /* the whole frame from the queue: its length checks the pairing */
                if (copy_len[c] && copy_len[c] == h->tp_len)
                    cb(ctx, p->rbuf + (size_t)c * IO_SUPER_MAX, copy_len[c], ts, &p->rvh[c]);
                else
                    p->lost++;
                c++;
            } else if (h->tp_snaplen == h->tp_len && gso) {
                gso_vnet vh;  /* tpacket_rcv wrote it right before the frame (not aligned) */
                memcpy(&vh, frame - sizeof vh, sizeof vh);
                cb(ctx, frame, h->tp_snaplen, ts, &vh);
            } else if (h->tp_snaplen == h->tp_len) {
                cb(ctx, frame, h->tp_snaplen, ts, NULL);
            } else {
                p->lost++;  /* a truncated (oversized) frame with no copy is dropped here */
            }
            if (status & TP_STATUS_LOSING) {  /* the ring was full meanwhile: the kernel counted drops */
                struct tpacket_stats st;
                socklen_t len = sizeof st;
                if (getsockopt(p->rx, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) p->lost += st.tp_drops;
            }
            __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
            p->next = (p->next + 1) % p->frames;
        }
        n += k;
        if (!full) break;
    }
    return n;
}

int io_receive(io_port *p, io_receive_fn *cb, void *ctx, int budget) {
    return p->ring ? receive_ring(p, cb, ctx, budget) : receive_gso(p, cb, ctx, budget);
}

uint64_t io_take_lost(io_port *p, int exact) {
    /* with a ring, the kernel's count is read when a ring frame says TP_STATUS_LOSING (io_receive);
     * GSO mode without one (the socket's drops: receive buffer full) when a frame's SO_RXQ_OVFL
     * count grew */
    if (exact || (!p->ring && (p->drops_due || !p->rxq_ovfl))) {
        struct tpacket_stats st;  /* reading the statistics resets them */
        socklen_t len = sizeof st;
        if (getsockopt(p->rx, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) p->lost += st.tp_drops;
        p->drops_due = 0;
    }
    uint64_t n = p->lost;
    p->lost = 0;
    return n;
}

void io_reset(io_port *p) {
    uint8_t junk[64];
    if (!p->ring) {
        while (recv(p->rx, junk, sizeof junk, MSG_DONTWAIT | MSG_TRUNC) >= 0) {}
    }
    for (unsigned i = 0; p->ring && i < p->frames; i++) {  /* at most one lap: frames are handed back in order */
        struct tpacket2_hdr *h = ring_frame(p, p->next);
        uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
        if (!(status & TP_STATUS_USER)) break;
        /* its copy, and no other: a copy still queued for a frame not yet handed over stays paired */
        if (status & TP_STATUS_COPY) recv(p->rx, junk, sizeof junk, MSG_DONTWAIT | MSG_TRUNC);
        __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        p->next = (p->next + 1) % p->frames;
    }
    struct tpacket_stats st;  /* reading the statistics resets them */
    socklen_t len = sizeof st;
    getsockopt(p->rx, SOL_PACKET, PACKET_STATISTICS, &st, &len);
    p->lost = 0;
    p->drops_due = 0;  /* drops_seen stays: the socket's count does not restart */
}

int io_send_to(io_port *via, uint8_t *const *frames, const uint32_t *lens, const gso_vnet *vh,
               const int *ifindex, int n, uint8_t *ok, uint64_t *calls) {
    struct mmsghdr msgs[64];
    struct iovec iov[64][2];
    struct sockaddr_ll to[64];
    int at = 0, took = 0, gso = via->mode == IO_GSO;  /* every port of one call has via's mode */
    while (at < n) {
        int k = n - at < 64 ? n - at : 64;
        for (int i = 0; i < k; i++) {
            int j = 0;
            if (gso) iov[i][j++] = (struct iovec){.iov_base = (void *)&vh[at + i], .iov_len = sizeof(gso_vnet)};
            iov[i][j++] = (struct iovec){.iov_base = frames[at + i], .iov_len = lens[at + i]};
            memset(&to[i], 0, sizeof to[i]);
            to[i].sll_family = AF_PACKET;
            to[i].sll_ifindex = ifindex[at + i];
            memset(&msgs[i], 0, sizeof msgs[i]);
            msgs[i].msg_hdr.msg_name = &to[i];
            msgs[i].msg_hdr.msg_namelen = sizeof to[i];
            msgs[i].msg_hdr.msg_iov = iov[i];
            msgs[i].msg_hdr.msg_iovlen = (size_t)j;
        }
        int r = sendmmsg(via->tx, msgs, (unsigned)k, 0);
        (*calls)++;
        if (r <= 0) {  /* the first frame was refused: skip it, so one port's error costs no other frame */
            if (ok) ok[at] = 0;
            at++;
            continue;
        }
        if (ok) memset(ok + at, 1, (size_t)r);
        at += r;
        took += r;
    }
    return took;
}

int io_ifindex(const io_port *p) { return p->ifindex; }
uint64_t io_netns(const io_port *p) { return p->netns; }

int io_pending(const io_port *p) {
    if (!p->ring) {  /* no ring to look at: one non-blocking peek */
        char c;
        return recv(p->rx, &c, 1, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC) >= 0;
    }
    const struct tpacket2_hdr *h = ring_frame(p, p->next);
    return (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) != 0;
}

static int write_sysctl(const char *path, const char *value) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t w = write(fd, value, strlen(value));
    close(fd);
    return w < 0 ? -1 : 0;
}

int io_tune(const char *netns_path, const char *ifname, int no_ipv6) {
    int saved, rc = 0;
    if (enter(netns_path, &saved) < 0) return -errno;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) rc = -errno;
    if (s >= 0 && ifname) {
        struct ethtool_value ev = {.cmd = ETHTOOL_STXCSUM, .data = 0};
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
        ifr.ifr_data = (void *)&ev;
        if (ioctl(s, SIOCETHTOOL, &ifr) < 0) rc = -errno;
        struct ethtool_value tso = {.cmd = ETHTOOL_STSO, .data = 0};
        ifr.ifr_data = (void *)&tso;
        ioctl(s, SIOCETHTOOL, &ifr);  /* already off with checksumming; some kernels want it said */
    }
    if (s >= 0) close(s);
    if (rc == 0 && no_ipv6) {
        write_sysctl("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
        write_sysctl("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    }
    leave(saved);
    return rc;
}
