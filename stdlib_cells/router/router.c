/* `router`: longest-prefix match on the IPv4 destination chooses the output port. */
#define RT_CELL_API
#include "rattan_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { uint32_t addr, mask; int32_t port; } rt_route;  /* IPv4, host order */

typedef struct {
    rt_route *routes;        /* sorted by prefix length, longest first */
    uint32_t n;
    int default_port;
} router_t;

static int prefix_len(uint32_t mask) { int n = 0; while (mask & 0x80000000u) { n++; mask <<= 1; } return n; }

/* "10.0.1.0/24", "10.0.1.2" (a /32): the loader writes an endpoint's name as its address. */
static int parse_prefix(const char *s, rt_route *r) {
    unsigned a, b, c, d, len = 32;
    char tail;
    int n = sscanf(s, "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &len, &tail);
    if (n != 4 && n != 5) return -1;
    if (a > 255 || b > 255 || c > 255 || d > 255 || len > 32) return -1;
    r->addr = a << 24 | b << 16 | c << 8 | d;
    r->mask = len ? 0xFFFFFFFFu << (32 - len) : 0;
    return 0;
}

static int router_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    router_t *r = state;
    (void)now;
    if (n_outputs < 1) return rt_cfg_fail(c, NULL, "a router needs at least one output");
    rt_config routes = rt_cfg_get(c, "routes");
    uint32_t n = rt_cfg_len(&routes);
    if (rt_cfg_status(c)) return RT_EINVAL;
    r->routes = malloc((n ? n : 1) * sizeof *r->routes);
    if (!r->routes) return RT_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        rt_config route = rt_cfg_item(&routes, i);
        const char *prefix = rt_cfg_str(&route, "prefix");
        int64_t port = rt_cfg_int(&route, "port");
        if (rt_cfg_status(c)) return RT_EINVAL;
        if (strchr(prefix, ':')) return rt_cfg_fail(&route, "prefix", "IPv6 routes are not implemented in the engine yet");
        if (parse_prefix(prefix, &r->routes[i]) < 0) return rt_cfg_fail(&route, "prefix", "expected an IPv4 prefix such as 10.0.1.0/24");
        if (port < 0 || port >= n_outputs) return rt_cfg_fail(&route, "port", "no such output port");
        r->routes[i].port = (int32_t)port;
    }
    /* longest prefix first (stable insertion sort: few routes) */
    for (uint32_t i = 1; i < n; i++) {
        rt_route x = r->routes[i];
        uint32_t j = i;
        while (j > 0 && prefix_len(r->routes[j - 1].mask) < prefix_len(x.mask)) { r->routes[j] = r->routes[j - 1]; j--; }
        r->routes[j] = x;
    }
    for (uint32_t i = 0; i < n; i++) r->routes[i].addr &= r->routes[i].mask;
    r->n = n;
    r->default_port = -1;  /* "drop" */
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

static void router_enqueue(rt_node *n, void *state, rt_pkt *k) {
    const router_t *r = state;
    int port = r->default_port;
    for (uint32_t i = 0; i < r->n; i++)
        if ((k->dst_addr & r->routes[i].mask) == r->routes[i].addr) { port = r->routes[i].port; break; }
    if (port < 0) rt_drop(n, k, RT_DROP_NO_ROUTE);
    else rt_emit(n, port, k, k->t);
}

const rt_cell_ops rt_cell_router = {.type = "router", .state_size = sizeof(router_t), .init = router_init,
                                    .destroy = router_destroy, .enqueue = router_enqueue};
