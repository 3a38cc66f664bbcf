/* A forwarder between two interfaces of the caller's namespace with rattan's own packet I/O:
 * rattan/engine/csrc/io.c is compiled in as it is (TPACKET_V2 receive ring, sendmmsg). Each frame
 * the ring hands over is copied into a batch, as the engine copies it into its pool, and the batch
 * leaves on the other port with one sendmmsg (io_send_to, the engine's own send). No emulation: the
 * ceiling of rattan's data path.
 *
 * usage: ring_fwd IF_A IF_B    prints "ready" once both ports are open, runs until SIGTERM or
 *                              SIGINT, then prints its counts as one line of key=value. */
#include "io.c"

#include <poll.h>
#include <signal.h>

#define BATCH 64  /* frames per io_receive and per sendmmsg, as in the engine's real loop */

struct batch {
    uint8_t buf[BATCH][IO_FRAME_MAX];
    uint8_t *frames[BATCH];
    uint32_t lens[BATCH];
    int n;
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig) { (void)sig; stopping = 1; }

static void take(void *ctx, const uint8_t *frame, uint32_t len, uint64_t rx_ns, const gso_vnet *vh) {
    (void)vh;  /* plain mode: none */
    (void)rx_ns;
    struct batch *b = ctx;
    memcpy(b->buf[b->n], frame, len);
    b->lens[b->n++] = len;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s IF_A IF_B\n", argv[0]);
        return 2;
    }
    io_port *port[2];
    for (int i = 0; i < 2; i++) {
        port[i] = io_open(NULL, argv[1 + i], IO_PLAIN);
        if (!port[i]) {
            fprintf(stderr, "ring_fwd: %s: %s\n", argv[1 + i], strerror(errno));
            return 1;
        }
    }
    struct sigaction sa = {.sa_handler = on_signal};  /* no SA_RESTART: poll returns on a signal */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    static struct batch b;
    for (int i = 0; i < BATCH; i++) b.frames[i] = b.buf[i];
    uint64_t forwarded[2] = {0, 0}, short_sends = 0, lost = 0, polls = 0, calls = 0;
    int ifx[2][BATCH];  /* every frame of a batch leaves on the other port */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < BATCH; j++) ifx[i][j] = io_ifindex(port[1 - i]);
    printf("ready\n");
    fflush(stdout);
    struct pollfd pfd[2] = {{.fd = io_fd(port[0]), .events = POLLIN}, {.fd = io_fd(port[1]), .events = POLLIN}};
    while (!stopping) {
        int moved = 0;
        for (int i = 0; i < 2; i++) {
            b.n = 0;
            int n = io_receive(port[i], take, &b, BATCH);
            if (n == 0) continue;
            int sent = io_send_to(port[1 - i], b.frames, b.lens, NULL, ifx[i], n, NULL, &calls);
            forwarded[i] += (uint64_t)sent;
            short_sends += sent < n;
            moved += n;
        }
        if (!moved) {
            polls++;
            poll(pfd, 2, 1000);
        }
    }
    for (int i = 0; i < 2; i++) lost += io_take_lost(port[i], 1);
    printf("forwarded_ab=%llu forwarded_ba=%llu short_sends=%llu lost=%llu polls=%llu send_calls=%llu\n",
           (unsigned long long)forwarded[0], (unsigned long long)forwarded[1], (unsigned long long)short_sends,
           (unsigned long long)lost, (unsigned long long)polls, (unsigned long long)calls);
    for (int i = 0; i < 2; i++) io_close(port[i]);
    return 0;
}
