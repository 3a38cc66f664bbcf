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

/* Whether the TCP or UDP checksum of an IPv4/IPv6 frame is right (tests; 1 right, 0 wrong, -1 not
 * TCP/UDP over IP). */
int gso_l4_csum_ok(const uint8_t *frame, uint32_t len);

#endif
