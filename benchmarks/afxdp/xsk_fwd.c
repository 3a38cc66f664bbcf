/* A forwarder between two interfaces of the caller's namespace over AF_XDP sockets, with no library:
 * the XDP program (6 instructions: redirect to the XSKMAP entry of the receive queue) is assembled
 * here and loaded with the bpf() system call, attached through a BPF link (detached by the kernel
 * when this process exits, however it exits), and the rings are the kernel's UAPI ones. With
 * `--timestamp` the program first writes the time it ran into 8 bytes of XDP metadata before the
 * frame, which copy mode carries into the UMEM: the kernel-side arrival time rattan takes from the
 * TPACKET_V2 header today (the forwarder counts the stamped frames and their age when it reads them).
 *
 * The two sockets share one UMEM (XDP_SHARED_UMEM, each with its own fill and completion ring), so a
 * frame received on one port is sent on the other by passing its descriptor: no copy in user space.
 * That is the best AF_XDP can do; `--copy` instead copies each frame into a staging buffer and then
 * into a fresh UMEM frame, as a rattan port built behind io.c's interface would (io_receive hands
 * the frame to the engine's pool, io_send_to takes it back from there).
 *
 * usage: xsk_fwd [--mode skb|drv] [--zerocopy] [--copy] [--timestamp] IF_A IF_B
 *   skb: generic XDP (in the kernel's receive path, on an skb); drv: the driver's own XDP (veth
 *   has it). --zerocopy asks for XDP_ZEROCOPY instead of XDP_COPY (exit status 3 if refused).
 * Prints "ready" once both sockets are bound and the programs attached, runs until SIGTERM or
 * SIGINT, then prints its counts and the kernel's XDP_STATISTICS as one line of key=value. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9   /* kernels >= 6.17: descriptors one sendto() sends in copy mode (default 32) */
#endif
#ifndef XDP_GENERIC_XMIT_BATCH
#define XDP_GENERIC_XMIT_BATCH 10 /* later kernels: copy mode allocates and sends skbs in batches */
#endif

#define FRAME 2048        /* UMEM chunk: an MTU-1500 frame after the kernel's 256-byte headroom */
#define NFRAMES 16384     /* 32 MiB of UMEM for both ports (io.c: 4096 ring frames per port); in copy mode
                             a sent frame returns only when its skb is freed, which over veth can be
                             when the receiving socket is done with it: 8192 ran the fill ring dry */
#define RING 2048         /* entries in each of a socket's four rings */
#define BATCH 64          /* descriptors moved per pass, as ring_fwd moves frames per sendmmsg */

struct ring {
    uint32_t *producer, *consumer, *flags;
    void *desc;
    uint32_t mask;
    void *map;
    size_t map_len;
};

struct port {
    const char *ifname;
    int ifindex, fd, map_fd, prog_fd, link_fd;
    struct ring fill, comp, rx, tx;
    uint64_t forwarded, tx_ring_full, kicks, kick_errors;
    int tx_budget, xmit_batch;  /* what the kernel took of XDP_MAX_TX_SKB_BUDGET, XDP_GENERIC_XMIT_BATCH (0: no) */
};

static uint8_t *umem;
static uint64_t free_frames[NFRAMES];
static unsigned n_free;
static volatile sig_atomic_t stopping;
static int copy_mode, timestamps;
static uint64_t stamped, stamp_lag_ns, stamp_lag_max_ns;  /* --timestamp: frames with a stamp, its age when read */

static void on_signal(int sig) { (void)sig; stopping = 1; }

static int fail(const char *what, const char *ifname) {
    int err = errno;
    fprintf(stderr, "xsk_fwd: %s%s%s: %s\n", ifname ? ifname : "", ifname ? ": " : "", what, strerror(err));
    errno = err;
    return -1;
}

static long bpf(int cmd, union bpf_attr *attr) { return syscall(__NR_bpf, cmd, attr, sizeof *attr); }

/* The XSKMAP of one port (one entry: its queue 0) and the program redirecting into it. */
static int load_program(struct port *p) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_XSKMAP;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    snprintf(attr.map_name, sizeof attr.map_name, "hxdp_xsks");
    p->map_fd = (int)bpf(BPF_MAP_CREATE, &attr);
    if (p->map_fd < 0) return fail("BPF_MAP_CREATE (XSKMAP)", p->ifname);
#define LDX_W(dst, src, field) {.code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = dst, .src_reg = src, \
                                .off = offsetof(struct xdp_md, field)}
#define MOV_X(dst, src) {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = dst, .src_reg = src}
#define MOV_K(dst, k) {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = dst, .imm = k}
#define CALL(fn) {.code = BPF_JMP | BPF_CALL, .imm = fn}
    /* The receive time, taken when the program runs (CLOCK_MONOTONIC), in the 8 bytes of metadata
     * before the frame: copy mode copies the metadata into the UMEM with the frame. */
    struct bpf_insn stamp[] = {
        MOV_X(BPF_REG_6, BPF_REG_1),                     /* r6 = ctx */
        CALL(BPF_FUNC_ktime_get_ns),
        MOV_X(BPF_REG_7, BPF_REG_0),                     /* r7 = now */
        MOV_X(BPF_REG_1, BPF_REG_6),
        MOV_K(BPF_REG_2, -8),
        CALL(BPF_FUNC_xdp_adjust_meta),                  /* 8 bytes of metadata before data */
        {.code = BPF_JMP | BPF_JNE | BPF_K, .dst_reg = BPF_REG_0, .off = 6},  /* refused: no stamp */
        LDX_W(BPF_REG_2, BPF_REG_6, data_meta),
        LDX_W(BPF_REG_3, BPF_REG_6, data),
        MOV_X(BPF_REG_4, BPF_REG_2),
        {.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_4, .imm = 8},
        {.code = BPF_JMP | BPF_JGT | BPF_X, .dst_reg = BPF_REG_4, .src_reg = BPF_REG_3, .off = 1},  /* the verifier's bound */
        {.code = BPF_STX | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_7},  /* *meta = now */
        MOV_X(BPF_REG_1, BPF_REG_6),
    };
    struct bpf_insn redirect[] = {
        LDX_W(BPF_REG_2, BPF_REG_1, rx_queue_index),     /* r2 = ctx->rx_queue_index */
        /* r1 = the map (a 64-bit immediate over two instructions, resolved from the fd at load) */
        {.code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = p->map_fd},
        {0},
        MOV_K(BPF_REG_3, XDP_PASS),  /* the action when the queue has no socket (kernels >= 5.3) */
        CALL(BPF_FUNC_redirect_map),
        {.code = BPF_JMP | BPF_EXIT},
    };
    struct bpf_insn prog[sizeof stamp / sizeof stamp[0] + sizeof redirect / sizeof redirect[0]];
    size_t n = 0;
    if (timestamps) {
        memcpy(prog, stamp, sizeof stamp);
        n = sizeof stamp / sizeof stamp[0];
    }
    memcpy(prog + n, redirect, sizeof redirect);
    n += sizeof redirect / sizeof redirect[0];
    static char log[4096];
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_XDP;
    attr.expected_attach_type = BPF_XDP;
    attr.insns = (uint64_t)(uintptr_t)prog;
    attr.insn_cnt = (uint32_t)n;
    attr.license = (uint64_t)(uintptr_t)"Dual MIT/GPL";
    attr.log_buf = (uint64_t)(uintptr_t)log;
    attr.log_size = sizeof log;
    attr.log_level = 1;
    snprintf(attr.prog_name, sizeof attr.prog_name, "hxdp_redirect");
    p->prog_fd = (int)bpf(BPF_PROG_LOAD, &attr);
    if (p->prog_fd < 0) {
        fail("BPF_PROG_LOAD", p->ifname);
        fprintf(stderr, "%s\n", log);
        return -1;
    }
    return 0;
}

static int attach_program(struct port *p, uint32_t mode) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.link_create.prog_fd = (uint32_t)p->prog_fd;
    attr.link_create.target_ifindex = (uint32_t)p->ifindex;
    attr.link_create.attach_type = BPF_XDP;
    attr.link_create.flags = mode;
    p->link_fd = (int)bpf(BPF_LINK_CREATE, &attr);
    if (p->link_fd < 0) return fail(mode == XDP_FLAGS_DRV_MODE ? "attach XDP, driver mode" : "attach XDP, skb mode",
                                    p->ifname);
    uint32_t key = 0, value = (uint32_t)p->fd;
    memset(&attr, 0, sizeof attr);
    attr.map_fd = (uint32_t)p->map_fd;
    attr.key = (uint64_t)(uintptr_t)&key;
    attr.value = (uint64_t)(uintptr_t)&value;
    if (bpf(BPF_MAP_UPDATE_ELEM, &attr) < 0) return fail("XSKMAP update", p->ifname);
    return 0;
}

static int map_ring(struct port *p, struct ring *r, const struct xdp_ring_offset *off, size_t elem, off_t pgoff) {
    r->map_len = off->desc + RING * elem;
    r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, p->fd, pgoff);
    if (r->map == MAP_FAILED) { r->map = NULL; return fail("mmap ring", p->ifname); }
    r->producer = (uint32_t *)((uint8_t *)r->map + off->producer);
    r->consumer = (uint32_t *)((uint8_t *)r->map + off->consumer);
    r->flags = (uint32_t *)((uint8_t *)r->map + off->flags);
    r->desc = (uint8_t *)r->map + off->desc;
    r->mask = RING - 1;
    return 0;
}

/* One AF_XDP socket on queue 0 of the port's interface; `owner` < 0 registers the UMEM, otherwise
 * the socket shares the UMEM of `owner` (with its own fill and completion rings). */
static int open_socket(struct port *p, int owner, uint16_t bind_flags) {
    p->ifindex = (int)if_nametoindex(p->ifname);
    if (!p->ifindex) return fail("no such interface", p->ifname);
    p->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (p->fd < 0) return fail("socket(AF_XDP)", p->ifname);
    /* Copy mode sends skbs charged to this socket until freed (over veth, by the receiver): io.c's
     * transmit socket has 4 MiB, the default 208 KiB would stall sends at about 100 frames. */
    int sndbuf = 4 << 20;
    setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (owner < 0) {
        struct xdp_umem_reg reg = {.addr = (uint64_t)(uintptr_t)umem, .len = (uint64_t)NFRAMES * FRAME,
                                   .chunk_size = FRAME, .headroom = 0};
        if (setsockopt(p->fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg) < 0) return fail("XDP_UMEM_REG", p->ifname);
    }
    int size = RING;
    if (setsockopt(p->fd, SOL_XDP, XDP_UMEM_FILL_RING, &size, sizeof size) < 0 ||
        setsockopt(p->fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &size, sizeof size) < 0 ||
        setsockopt(p->fd, SOL_XDP, XDP_RX_RING, &size, sizeof size) < 0 ||
        setsockopt(p->fd, SOL_XDP, XDP_TX_RING, &size, sizeof size) < 0)
        return fail("ring sizes", p->ifname);
    struct xdp_mmap_offsets off;
    socklen_t len = sizeof off;
    if (getsockopt(p->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &len) < 0) return fail("XDP_MMAP_OFFSETS", p->ifname);
    if (map_ring(p, &p->fill, &off.fr, sizeof(uint64_t), (off_t)XDP_UMEM_PGOFF_FILL_RING) < 0 ||
        map_ring(p, &p->comp, &off.cr, sizeof(uint64_t), (off_t)XDP_UMEM_PGOFF_COMPLETION_RING) < 0 ||
        map_ring(p, &p->rx, &off.rx, sizeof(struct xdp_desc), XDP_PGOFF_RX_RING) < 0 ||
        map_ring(p, &p->tx, &off.tx, sizeof(struct xdp_desc), XDP_PGOFF_TX_RING) < 0)
        return -1;
    struct sockaddr_xdp sxdp = {.sxdp_family = AF_XDP, .sxdp_ifindex = (uint32_t)p->ifindex, .sxdp_queue_id = 0};
    if (owner < 0) {
        sxdp.sxdp_flags = bind_flags;
    } else {
        sxdp.sxdp_flags = XDP_SHARED_UMEM;  /* copy/zero-copy and need-wakeup come from the owner */
        sxdp.sxdp_shared_umem_fd = (uint32_t)owner;
    }
    if (bind(p->fd, (struct sockaddr *)&sxdp, sizeof sxdp) < 0)
        return fail(bind_flags & XDP_ZEROCOPY ? "bind, zero-copy" : "bind", p->ifname);
    /* Fewer system calls per frame where the kernel has the options; the figures hold either way. */
    int budget = RING, batch = BATCH;
    if (setsockopt(p->fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof budget) == 0) p->tx_budget = budget;
    if (setsockopt(p->fd, SOL_XDP, XDP_GENERIC_XMIT_BATCH, &batch, sizeof batch) == 0) p->xmit_batch = batch;
    return 0;
}

static uint32_t load(const uint32_t *x) { return __atomic_load_n(x, __ATOMIC_ACQUIRE); }
static void store(uint32_t *x, uint32_t v) { __atomic_store_n(x, v, __ATOMIC_RELEASE); }

/* Give the kernel free frames to receive into, as many as the fill ring takes. */
static void refill(struct port *p) {
    uint32_t prod = *p->fill.producer, room = RING - (prod - load(p->fill.consumer));
    uint32_t n = room < n_free ? room : n_free;
    uint64_t *addr = p->fill.desc;
    for (uint32_t i = 0; i < n; i++) addr[(prod + i) & p->fill.mask] = free_frames[--n_free];
    if (n) store(p->fill.producer, prod + n);
}

/* Frames the kernel has sent go back to the free list. */
static int reap(struct port *p) {
    uint32_t cons = *p->comp.consumer, n = load(p->comp.producer) - cons;
    uint64_t *addr = p->comp.desc;
    for (uint32_t i = 0; i < n; i++) free_frames[n_free++] = addr[(cons + i) & p->comp.mask] & ~(uint64_t)(FRAME - 1);
    if (n) store(p->comp.consumer, cons + n);
    return (int)n;
}

/* Move up to BATCH received descriptors of `src` to the transmit ring of `dst`. */
static int forward(struct port *src, struct port *dst) {
    uint32_t cons = *src->rx.consumer, avail = load(src->rx.producer) - cons;
    uint32_t prod = *dst->tx.producer, room = RING - (prod - load(dst->tx.consumer));
    uint32_t n = avail < room ? avail : room;
    if (n > BATCH) n = BATCH;
    if (avail > n && n < BATCH) dst->tx_ring_full++;
    struct xdp_desc *rx = src->rx.desc, *tx = dst->tx.desc;
    uint64_t now = 0;
    if (timestamps && n) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    uint32_t done = 0;
    for (; done < n; done++) {
        struct xdp_desc d = rx[(cons + done) & src->rx.mask];
        if (timestamps) {  /* the metadata ends where the frame starts; cleared, so a reused frame shows none */
            uint64_t t;
            memcpy(&t, umem + d.addr - 8, 8);
            memset(umem + d.addr - 8, 0, 8);
            if (t && t <= now) {
                stamped++;
                stamp_lag_ns += now - t;
                if (now - t > stamp_lag_max_ns) stamp_lag_max_ns = now - t;
            }
        }
        if (copy_mode) {  /* io.c's shape: out of the receive frame into the pool, then into a send frame */
            static uint8_t staging[FRAME];
            if (!n_free) break;
            uint64_t frame = free_frames[--n_free];
            memcpy(staging, umem + d.addr, d.len);
            memcpy(umem + frame, staging, d.len);
            free_frames[n_free++] = d.addr & ~(uint64_t)(FRAME - 1);
            d.addr = frame;
        }
        tx[(prod + done) & dst->tx.mask] = (struct xdp_desc){.addr = d.addr, .len = d.len};
    }
    if (!done) return 0;
    store(dst->tx.producer, prod + done);
    store(src->rx.consumer, cons + done);
    dst->forwarded += done;
    return (int)done;
}

/* In copy mode the kernel sends only inside sendto(), at most a fixed budget per call (-EAGAIN: more
 * is waiting, or the completion ring is full): call again, reaping completions in between. */
static void kick(struct port *p) {
    for (int tries = 0; tries < 64 && *p->tx.producer != load(p->tx.consumer); tries++) {
        if (!(load(p->tx.flags) & XDP_RING_NEED_WAKEUP)) return;
        p->kicks++;
        if (sendto(p->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0) continue;
        if (errno != EAGAIN && errno != EBUSY && errno != ENOBUFS) { p->kick_errors++; return; }
        reap(p);
    }
}

int main(int argc, char **argv) {
    uint32_t mode = XDP_FLAGS_SKB_MODE;
    uint16_t bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
            i++;
            if (!strcmp(argv[i], "drv")) mode = XDP_FLAGS_DRV_MODE;
            else if (strcmp(argv[i], "skb")) break;
        } else if (!strcmp(argv[i], "--zerocopy")) {
            bind_flags = XDP_ZEROCOPY | XDP_USE_NEED_WAKEUP;
        } else if (!strcmp(argv[i], "--copy")) {
            copy_mode = 1;
        } else if (!strcmp(argv[i], "--timestamp")) {
            timestamps = 1;
        } else {
            break;
        }
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: %s [--mode skb|drv] [--zerocopy] [--copy] [--timestamp] IF_A IF_B\n", argv[0]);
        return 2;
    }
    umem = mmap(NULL, (size_t)NFRAMES * FRAME, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                -1, 0);
    if (umem == MAP_FAILED) return fail("mmap UMEM", NULL), 1;
    for (unsigned f = 0; f < NFRAMES; f++) free_frames[n_free++] = (uint64_t)(NFRAMES - 1 - f) * FRAME;
    struct port port[2] = {{.ifname = argv[i], .link_fd = -1}, {.ifname = argv[i + 1], .link_fd = -1}};
    if (open_socket(&port[0], -1, bind_flags) < 0) return (bind_flags & XDP_ZEROCOPY) && errno == EOPNOTSUPP ? 3 : 1;
    if (open_socket(&port[1], port[0].fd, bind_flags) < 0) return 1;
    for (int k = 0; k < 2; k++) refill(&port[k]);  /* receive frames before the program sends any here */
    for (int k = 0; k < 2; k++)
        if (load_program(&port[k]) < 0 || attach_program(&port[k], mode) < 0) return 1;
    struct sigaction sa = {.sa_handler = on_signal};  /* no SA_RESTART: poll returns on a signal */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    printf("ready\n");
    fflush(stdout);
    struct pollfd pfd[2] = {{.fd = port[0].fd, .events = POLLIN}, {.fd = port[1].fd, .events = POLLIN}};
    uint64_t polls = 0;
    while (!stopping) {
        int moved = 0;
        for (int k = 0; k < 2; k++) {
            int n = forward(&port[k], &port[1 - k]);
            if (n) kick(&port[1 - k]);
            moved += n;
        }
        for (int k = 0; k < 2; k++) moved += reap(&port[k]);
        for (int k = 0; k < 2; k++) refill(&port[k]);
        if (!moved) {
            int pending = 0;
            for (int k = 0; k < 2; k++) {
                if (*port[k].tx.producer != load(port[k].tx.consumer)) { kick(&port[k]); pending = 1; }
            }
            polls++;
            poll(pfd, 2, pending ? 1 : 1000);
        }
    }
    printf("forwarded_ab=%llu forwarded_ba=%llu polls=%llu tx_budget=%d xmit_batch=%d",
           (unsigned long long)port[1].forwarded, (unsigned long long)port[0].forwarded, (unsigned long long)polls,
           port[0].tx_budget, port[0].xmit_batch);
    if (timestamps)
        printf(" stamped=%llu stamp_age_avg_us=%.1f stamp_age_max_us=%.1f", (unsigned long long)stamped,
               stamped ? stamp_lag_ns / 1e3 / (double)stamped : 0.0, stamp_lag_max_ns / 1e3);
    for (int k = 0; k < 2; k++) {
        struct xdp_statistics st;
        socklen_t len = sizeof st;
        memset(&st, 0, sizeof st);
        getsockopt(port[k].fd, SOL_XDP, XDP_STATISTICS, &st, &len);
        printf(" %s.rx_dropped=%llu %s.rx_ring_full=%llu %s.fill_empty=%llu %s.tx_ring_full=%llu %s.kicks=%llu"
               " %s.kick_errors=%llu",
               port[k].ifname, (unsigned long long)st.rx_dropped, port[k].ifname, (unsigned long long)st.rx_ring_full,
               port[k].ifname, (unsigned long long)st.rx_fill_ring_empty_descs, port[k].ifname,
               (unsigned long long)port[k].tx_ring_full, port[k].ifname, (unsigned long long)port[k].kicks,
               port[k].ifname, (unsigned long long)port[k].kick_errors);
    }
    printf("\n");
    return 0;
}
