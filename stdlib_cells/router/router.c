/* `router`: longest-prefix match on the IPv4 destination chooses the output port, as upstream's
 * RouterCell with its SimpleRoutingTable does (rattan-core/src/cells/router/{mod,routing}.rs): a route
 * without a port drops what it matches, two routes with the same prefix (after masking) are refused.
 * Upstream drops every frame without an IPv4 header; with `only_ipv4` so does this cell, otherwise ARP
 * goes by its target protocol address and other frames to `default`. */
#define RT_CELL_API
#include "rattan_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DROP_PORT -1  /* a route without a port, or `default = drop` */

typedef struct { uint32_t addr, mask; int32_t port; } rt_route;  /* IPv4, host order */

typedef struct {
    rt_route *routes;        /* sorted by prefix length, longest first */
    uint32_t n;
    int default_port;
    int only_ipv4;
} router_t;

static int prefix_len(uint32_t mask) { int n = 0; while (mask & 0x80000000u) { n++; mask <<= 1; } return n; }

/* "10.0.1.0/24", "10.0.1.2" (a /32): the loader writes an endpoint's name as its address. */
static int parse_prefix(const char *s, rt_route *r) {
    unsigned a, b, c, d, len = 32;
    char tail;
    int n = sscanf(s, "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &len, &tail);
    if (n != 4 && n != 5) return -1;
    if (a > 255 || b > 255 || c > 255 || d > 255 || len > 32) return -1;
    r->mask = len ? 0xFFFFFFFFu << (32 - len) : 0;
    r->addr = (a << 24 | b << 16 | c << 8 | d) & r->mask;  /* upstream truncates the prefix the same way */
    return 0;
}

static int router_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    router_t *r = state;
    (void)now;
    rt_config routes = rt_cfg_get(c, "routes");
    uint32_t n = rt_cfg_len(&routes);
    r->only_ipv4 = rt_cfg_bool(c, "only_ipv4");
    if (rt_cfg_status(c)) return RT_EINVAL;
    r->routes = malloc((n ? n : 1) * sizeof *r->routes);
    if (!r->routes) return RT_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        rt_config route = rt_cfg_item(&routes, i);
        const char *prefix = rt_cfg_str(&route, "prefix");
        int64_t port = rt_cfg_has(&route, "port") ? rt_cfg_int(&route, "port") : DROP_PORT;
        if (rt_cfg_status(c)) return RT_EINVAL;
        if (strchr(prefix, ':')) return rt_cfg_fail(&route, "prefix", "IPv6 routes are not implemented in the engine yet");
        if (parse_prefix(prefix, &r->routes[i]) < 0) return rt_cfg_fail(&route, "prefix", "expected an IPv4 prefix such as 10.0.1.0/24");
        if (port != DROP_PORT && (port < 0 || port >= n_outputs)) return rt_cfg_fail(&route, "port", "no such output port");
        r->routes[i].port = (int32_t)port;
        for (uint32_t j = 0; j < i; j++)
            if (r->routes[j].addr == r->routes[i].addr && r->routes[j].mask == r->routes[i].mask) {
                char why[96];
                snprintf(why, sizeof why, "the same prefix as routes[%u]: each prefix may have one route", j);
                return rt_cfg_fail(&route, "prefix", why);
            }
    }
    /* longest prefix first (stable insertion sort: few routes) */
    for (uint32_t i = 1; i < n; i++) {
        rt_route x = r->routes[i];
        uint32_t j = i;
        while (j > 0 && prefix_len(r->routes[j - 1].mask) < prefix_len(x.mask)) { r->routes[j] = r->routes[j - 1]; j--; }
        r->routes[j] = x;
    }
    r->n = n;
    r->default_port = DROP_PORT;
    if (rt_cfg_kind(c, "default") == RT_VAL_INT) {
        int64_t p = rt_cfg_int(c, "default");
        if (p < 0 || p >= n_outputs) return rt_cfg_fail(c, "default", "no such output port");
        r->default_port = (int)p;
    } else if (rt_cfg_has(c, "default") && strcmp(rt_cfg_str(c, "default"), "drop") != 0) {
        return rt_cfg_fail(c, "default", "expected `drop` or an output port");
    }
    return rt_cfg_status(c);
}

static void router_destroy(void *state) { free(((router_t *)state)->routes); }

/* What a packet is routed by: an IPv4 packet by its destination (synthetic packets, which have no
 * frame, are IPv4), an ARP request or reply for IPv4 by its target protocol address; any other frame
 * (IPv6, other ARP, other EtherTypes) has no address a route could match. */
enum { ADDR_IPV4, ADDR_ARP, ADDR_NONE };

static int route_addr(const rt_pkt *k, uint32_t *addr) {
    if (!k->buf) { *addr = k->dst_addr; return ADDR_IPV4; }
    const uint8_t *f = k->buf;
    if (k->len < 14) return ADDR_NONE;
    uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
    if (type == 0x0800 && k->len >= 34) { *addr = k->dst_addr; return ADDR_IPV4; }
    /* ARP for IPv4 over Ethernet: htype 1, ptype 0x0800, hlen 6, plen 4; the target address at 38 */
    if (type == 0x0806 && k->len >= 42 && f[14] == 0 && f[15] == 1 && f[16] == 0x08 && f[17] == 0 && f[18] == 6 && f[19] == 4) {
        *addr = (uint32_t)f[38] << 24 | (uint32_t)f[39] << 16 | (uint32_t)f[40] << 8 | f[41];
        return ADDR_ARP;
    }
    return ADDR_NONE;
}

static void router_enqueue(rt_node *n, void *state, rt_pkt *k) {
    const router_t *r = state;
    uint32_t addr = 0;
    int kind = route_addr(k, &addr);
    if (kind != ADDR_IPV4 && r->only_ipv4) { rt_drop(n, k, RT_DROP_NOT_IPV4); return; }
    if (kind == ADDR_NONE) {  /* no IPv4 destination: no route can match it */
        if (r->default_port < 0) rt_drop(n, k, RT_DROP_NO_ROUTE);
        else rt_emit(n, r->default_port, k, k->t);
        return;
    }
    for (uint32_t i = 0; i < r->n; i++)
        if ((addr & r->routes[i].mask) == r->routes[i].addr) {
            if (r->routes[i].port < 0) rt_drop(n, k, RT_DROP_ROUTE);
            else rt_emit(n, r->routes[i].port, k, k->t);
            return;
        }
    if (r->default_port < 0) rt_drop(n, k, RT_DROP_NO_ROUTE);
    else rt_emit(n, r->default_port, k, k->t);
}

const rt_cell_ops rt_cell_router = {.type = "router", .state_size = sizeof(router_t), .init = router_init,
                                    .destroy = router_destroy, .enqueue = router_enqueue};
