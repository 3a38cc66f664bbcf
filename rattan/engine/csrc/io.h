/* Packet I/O on veth interfaces for real-time runs (engine-internal; see io.c). */
#ifndef RATTAN_IO_H
#define RATTAN_IO_H

#include <stdint.h>

#include "gso.h"

typedef struct io_port io_port;

#define IO_FRAME_MAX 2048      /* an Ethernet frame of MTU 1500 and then some; larger frames are dropped */
#define IO_SUPER_MAX (65536 + 2048)  /* GSO mode: a 64 KiB super-frame (IP length is 16 bits) and its headers */

/* How a port moves frames. Plain: frames of at most the MTU with complete checksums (io_tune turns
 * transmit checksumming, and so TSO, off on the endpoint). GSO: PACKET_VNET_HDR on both sockets, a
 * virtio-net header before each frame, so TSO/GSO super-frames of up to 64 KiB and partial checksums
 * pass intact (the endpoint's offloads stay on). */
#define IO_PLAIN 0
#define IO_GSO 1

/* Open a port on `ifname` inside the network namespace at `netns_path` (NULL: the caller's), in
 * `mode`: a TPACKET_V2 receive ring of 2 KiB frames; in GSO mode each with its virtio-net header,
 * and a frame too large for one (a super-frame) copied whole to the socket's queue, read with
 * recvmmsg into 64 KiB buffers of the port's own when the ring reaches it (a ring of 64 KiB slots
 * would spend one on every ACK). GSO mode reads everything with recvmmsg if the kernel refuses the
 * ring with the header, or with RATTAN_GSO_RX=socket in the environment. Either ignores our own
 * transmissions; the transmit socket bypasses the qdisc. NULL on failure, with errno set. */
io_port *io_open(const char *netns_path, const char *ifname, int mode);
int io_mode(const io_port *p);
void io_close(io_port *p);
int io_fd(const io_port *p);   /* readable when frames wait in the ring */

/* Hand each waiting frame to `cb` with the kernel's receive time (CLOCK_REALTIME, ns) and, in GSO
 * mode, its virtio-net header (NULL in plain mode); at most `budget` frames. Returns how many. */
typedef void io_receive_fn(void *ctx, const uint8_t *frame, uint32_t len, uint64_t rx_ns, const gso_vnet *vh);
int io_receive(io_port *p, io_receive_fn *cb, void *ctx, int budget);

/* Frames that arrived on the interface but were not handed over since the last call: dropped by
 * the kernel because the ring (GSO without a ring: the receive buffer) was full, or too large (GSO
 * with a ring: a super-frame whose copy the full receive buffer refused). Without `exact` no system
 * call unless a frame handed over said the kernel dropped some (a ring: TP_STATUS_LOSING; GSO
 * without one: its SO_RXQ_OVFL count grew), so drops after the last frame wait for the next one;
 * `exact` reads the kernel's count (a getsockopt): at the end of a run. */
uint64_t io_take_lost(io_port *p, int exact);

/* Discard every frame waiting in the ring, the loss count and the kernel's statistics: the port as
 * just opened, for another engine. */
void io_reset(io_port *p);

/* Send `n` frames with one system call per 64 through `via`'s transmit socket, frame i to the
 * interface `ifindex[i]` of via's network namespace (io_netns): one sendmmsg for every port there
 * of via's mode; in GSO mode each frame with its virtio-net header vh[i] (vh unused in plain mode).
 * A refused frame is skipped (ok[i] = 0; ok may be NULL) and the rest still sent. Returns how many
 * the kernel took; `calls` counts the system calls made. */
int io_send_to(io_port *via, uint8_t *const *frames, const uint32_t *lens, const gso_vnet *vh,
               const int *ifindex, int n, uint8_t *ok, uint64_t *calls);
int io_ifindex(const io_port *p);
uint64_t io_netns(const io_port *p);   /* the port's network namespace (its inode number) */
int io_pending(const io_port *p);      /* a frame waits (a memory read of the ring; GSO without one: a peek) */

/* Switch off transmit checksum offload (and with it TSO) on `ifname` in `netns_path`, so frames
 * stay MTU-sized with full checksums; and, if `no_ipv6`, IPv6 in that namespace. 0 or -errno. */
int io_tune(const char *netns_path, const char *ifname, int no_ipv6);

#endif
