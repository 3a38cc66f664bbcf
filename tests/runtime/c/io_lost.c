/* io_take_lost against the kernel's own drops, on a veth pair of the caller's namespace: rattan's
 * io.c compiled in as it is, its getsockopt calls counted. A GSO port on IF_RX with the smallest
 * receive buffer; a plain port on IF_TX sends bursts into it (test_gso.py builds and runs this).
 *
 * usage: io_lost IF_RX IF_TX BURST   prints one line of key=value:
 *   quiet_calls     getsockopt calls of 100 io_take_lost(p, 0), a frame received before each
 *   burst_got       frames of the first burst received ...
 *   burst_cheap     ... and lost as io_take_lost(p, 0) says right after
 *   burst_exact     ... and as io_take_lost(p, 1) says then (the drops after the last frame handed over)
 *   next_got        frames of a second burst and one frame after it received ...
 *   next_cheap      ... and lost as io_take_lost(p, 0) says (the frame after says drops happened) */
#define _GNU_SOURCE  /* before any header, as io.c has it */
#include <sys/socket.h>

static int getsockopt_calls;

static int counted_getsockopt(int fd, int level, int name, void *val, socklen_t *len) {
    getsockopt_calls++;
    return getsockopt(fd, level, name, val, len);
}

#define getsockopt counted_getsockopt
#undef _GNU_SOURCE
#include "io.c"
#undef getsockopt

#define ETHERTYPE 0x88b5  /* IEEE local experimental: no stack takes it */

static uint8_t frame[60];

static void take(void *ctx, const uint8_t *f, uint32_t len, uint64_t rx_ns, const gso_vnet *vh) {
    (void)rx_ns, (void)vh;
    if (len >= 14 && f[12] == ETHERTYPE >> 8 && f[13] == (ETHERTYPE & 0xff)) (*(int *)ctx)++;
}

static void send_frames(io_port *tx, int ifindex, int n) {
    uint8_t *frames[64];
    uint32_t lens[64];
    int ifx[64];
    uint64_t calls = 0;
    for (int i = 0; i < 64; i++) frames[i] = frame, lens[i] = sizeof frame, ifx[i] = ifindex;
    for (int left = n; left > 0;) {
        int k = left < 64 ? left : 64;
        int took = io_send_to(tx, frames, lens, NULL, ifx, k, NULL, &calls);
        if (took != k) { fprintf(stderr, "io_lost: sent %d of %d\n", took, k); exit(1); }
        left -= k;
    }
}

static int receive_all(io_port *rx) {
    int got = 0;
    struct timespec pause = {0, 20 * 1000 * 1000};  /* the burst's last frames through the softirq */
    nanosleep(&pause, NULL);
    while (io_receive(rx, take, &got, 256) > 0) {}
    return got;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s IF_RX IF_TX BURST\n", argv[0]);
        return 2;
    }
    int burst = atoi(argv[3]);
    io_port *rx = io_open(NULL, argv[1], IO_GSO), *tx = io_open(NULL, argv[2], IO_PLAIN);
    if (!rx || !tx) { fprintf(stderr, "io_lost: io_open: %s\n", strerror(errno)); return 1; }
    int small = 1;  /* the kernel's least: a few frames, then drops */
    if (setsockopt(io_fd(rx), SOL_SOCKET, SO_RCVBUF, &small, sizeof small) < 0) { perror("SO_RCVBUF"); return 1; }
    memset(frame, 0xff, 6);
    frame[12] = ETHERTYPE >> 8, frame[13] = ETHERTYPE & 0xff;
    int to = io_ifindex(tx);  /* io_send_to: through its own transmit socket, out of IF_TX */

    int quiet_got = 0, base = getsockopt_calls;
    uint64_t quiet_lost = 0;
    for (int i = 0; i < 100; i++) {
        send_frames(tx, to, 1);
        quiet_got += receive_all(rx);
        quiet_lost += io_take_lost(rx, 0);
    }
    int quiet_calls = getsockopt_calls - base;

    send_frames(tx, to, burst);
    int burst_got = receive_all(rx);
    uint64_t burst_cheap = io_take_lost(rx, 0), burst_exact = io_take_lost(rx, 1);

    send_frames(tx, to, burst);
    int next_got = receive_all(rx);
    send_frames(tx, to, 1);
    next_got += receive_all(rx);
    uint64_t next_cheap = io_take_lost(rx, 0), next_exact = io_take_lost(rx, 1);

    printf("quiet_got=%d quiet_lost=%llu quiet_calls=%d burst_got=%d burst_cheap=%llu burst_exact=%llu "
           "next_got=%d next_cheap=%llu next_exact=%llu\n", quiet_got, (unsigned long long)quiet_lost, quiet_calls,
           burst_got, (unsigned long long)burst_cheap, (unsigned long long)burst_exact, next_got,
           (unsigned long long)next_cheap, (unsigned long long)next_exact);
    io_close(rx);
    io_close(tx);
    return 0;
}
