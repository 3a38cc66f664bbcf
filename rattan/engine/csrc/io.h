/* Packet I/O on veth interfaces for real-time runs (engine-internal; see io.c). */
#ifndef RATTAN_IO_H
#define RATTAN_IO_H

#include <stdint.h>

typedef struct io_port io_port;

#define IO_FRAME_MAX 2048      /* an Ethernet frame of MTU 1500 and then some; larger frames are dropped */

/* Open a port on `ifname` inside the network namespace at `netns_path` (NULL: the caller's):
 * a TPACKET_V2 receive ring that ignores our own transmissions, and a transmit socket that
 * bypasses the qdisc. NULL on failure, with errno set. */
io_port *io_open(const char *netns_path, const char *ifname);
void io_close(io_port *p);
int io_fd(const io_port *p);   /* readable when frames wait in the ring */

/* Hand each waiting frame to `cb` with the kernel's receive time (CLOCK_REALTIME, ns); at most
 * `budget` frames. Returns how many. */
int io_receive(io_port *p, void (*cb)(void *ctx, const uint8_t *frame, uint32_t len, uint64_t rx_ns),
               void *ctx, int budget);

/* Frames that arrived on the interface but were not handed over since the last call: dropped by
 * the kernel because the ring was full, or too large. */
uint64_t io_take_lost(io_port *p);

/* Discard every frame waiting in the ring, the loss count and the kernel's statistics: the port as
 * just opened, for another engine. */
void io_reset(io_port *p);

/* Send `n` frames with one system call (sendmmsg); returns how many the kernel took. */
int io_send(io_port *p, uint8_t *const *frames, const uint32_t *lens, int n);

/* Send `n` frames with one system call per 64 through `via`'s transmit socket, frame i to the
 * interface `ifindex[i]` of via's network namespace (io_netns): one sendmmsg for every port there.
 * A refused frame is skipped (ok[i] = 0; ok may be NULL) and the rest still sent. Returns how many
 * the kernel took; `calls` counts the system calls made. */
int io_send_to(io_port *via, uint8_t *const *frames, const uint32_t *lens, const int *ifindex, int n,
               uint8_t *ok, uint64_t *calls);
int io_ifindex(const io_port *p);
uint64_t io_netns(const io_port *p);   /* the port's network namespace (its inode number) */
int io_pending(const io_port *p);      /* a frame waits in the ring (a memory read, no system call) */

/* Switch off transmit checksum offload (and with it TSO) on `ifname` in `netns_path`, so frames
 * stay MTU-sized with full checksums; and, if `no_ipv6`, IPv6 in that namespace. 0 or -errno. */
int io_tune(const char *netns_path, const char *ifname, int no_ipv6);

#endif
