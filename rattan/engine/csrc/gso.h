/* GSO super-frames (engine-internal; see gso.c): what a frame with a virtio-net header stands for
 * on the wire, and cutting it into the segments the kernel would have sent. */
#ifndef RATTAN_GSO_H
#define RATTAN_GSO_H

#include <stdint.h>

/* The virtio-net header's values (struct virtio_net_hdr, as AF_PACKET with PACKET_VNET_HDR gives
 * and takes it, in host byte order). */
#define GSO_NONE 0
#define GSO_TCPV4 1
#define GSO_UDP 3        /* UFO (IP fragmentation): never segmented here, counted as one packet */
#define GSO_TCPV6 4
#define GSO_UDP_L4 5     /* UDP GSO (UDP_SEGMENT) */
#define GSO_ECN 0x80
#define GSO_F_NEEDS_CSUM 1
#define GSO_F_DATA_VALID 2

typedef struct {
    uint8_t flags, gso_type;
    uint16_t hdr_len, gso_size, csum_start, csum_offset;
} gso_vnet;

/* What a frame stands for. `hdr_len` is parsed from the frame (the kernel's hdr_len is only its
 * linear part): Ethernet, IP and TCP/UDP headers, as every segment carries them. */
typedef struct {
    uint32_t segs;       /* segments it stands for: 1 for an ordinary frame */
    uint32_t ip_bytes;   /* IP bytes of all of them: payload + per-segment IP and L4 headers */
    uint16_t hdr_len;    /* Ethernet + IP + L4 header bytes (0: not parsed) */
    uint16_t l3, l4;     /* offsets of the IP and TCP/UDP headers */
    uint8_t ipv6, tcp;
} gso_info;

/* Read a frame of `len` bytes and its header: 0 and `out` filled; -1 if it is a GSO frame this
 * file cannot cut (not Ethernet IPv4/IPv6 with TCP or UDP right after the IP header, or
 * inconsistent): it then counts as one packet of len - 14 IP bytes. */
int gso_inspect(const uint8_t *frame, uint32_t len, const gso_vnet *vh, gso_info *out);

/* Write segment `i` (0 <= i < info->segs) of the super-frame into `out` (room for hdr_len +
 * gso_size bytes): the headers copied, IP total length / payload length, IPv4 id (+i) and header
 * checksum, TCP sequence number (+i * gso_size) and flags (FIN and PSH on the last segment only,
 * CWR on the first only), UDP length, and a complete TCP/UDP checksum. Returns its length. */
uint32_t gso_segment(const uint8_t *frame, uint32_t len, const gso_vnet *vh, const gso_info *info, uint32_t i,
                     uint8_t *out);

/* Complete a partial checksum (NEEDS_CSUM) in place: the 16 bits at csum_start + csum_offset hold
 * the pseudo-header's sum; they get the one's complement of the sum from csum_start to the end.
 * 0, or -1 if the offsets lie outside the frame. */
int gso_complete_csum(uint8_t *frame, uint32_t len, uint16_t csum_start, uint16_t csum_offset);

/* Merging at egress: consecutive TCP segments of one stream, leaving by one port at one wake-up,
 * become one super-frame again (what GRO would make of them), so that the receiver's stack, which
 * runs inside the engine's sendmmsg on a veth, handles one packet instead of each segment. A run
 * merges only segments the wire could have carried as one TSO frame: IPv4 without options, the
 * same addresses, ports, TOS, TTL, acknowledgement, window and TCP options, flags ACK only (PSH
 * allowed on the last), sequence numbers that follow on, every payload but the last of the first's
 * size, and a right checksum (or a partial one): a segment `corrupt` spoiled is sent alone, so the
 * receiver's check still catches it. */
typedef struct {
    uint8_t *frame;      /* the first segment's frame, which grows into the super-frame */
    uint32_t len;
    gso_info g;
    uint16_t mss;        /* the first segment's payload */
    uint32_t next_seq;   /* the sequence number the next segment must have */
    uint32_t segs;
    int closed;          /* a short or PSH segment was added: nothing may follow */
    uint8_t psh;
} gso_merge;

/* Start a run at `frame` (`partial`: its L4 checksum is partial, NEEDS_CSUM): 0, or -1 if it cannot
 * begin a super-frame. */
int gso_merge_start(gso_merge *m, uint8_t *frame, uint32_t len, int partial);
/* Whether `frame` continues the run (1) or not (0); the caller then makes room for its payload
 * (m->len + len - m->g.hdr_len bytes at m->frame) and adds it. */
int gso_merge_fits(const gso_merge *m, const uint8_t *frame, uint32_t len, int partial);
void gso_merge_add(gso_merge *m, const uint8_t *frame, uint32_t len);
/* Finish a run of more than one segment: IP total length and header checksum, PSH, the TCP
 * checksum made partial (the pseudo-header's sum, as the kernel's TSO leaves it), and the
 * virtio-net header it leaves with. Returns the super-frame's length. */
uint32_t gso_merge_finish(gso_merge *m, gso_vnet *vh);

/* Whether the TCP or UDP checksum of an IPv4/IPv6 frame is right (tests; 1 right, 0 wrong, -1 not
 * TCP/UDP over IP). */
int gso_l4_csum_ok(const uint8_t *frame, uint32_t len);

#endif
