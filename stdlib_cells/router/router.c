/* `router`: longest-prefix match on the IPv4 destination chooses the output port. */
#define RT_CELL_API
#include "rattan_engine.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    rt_route *routes;        /* sorted by prefix length, longest first */
    uint32_t n;
    int default_port;
} router_t;

static int prefix_len(uint32_t mask) { int n = 0; while (mask & 0x80000000u) { n++; mask <<= 1; } return n; }

static int router_init(void *state, const void *config, int n_outputs, uint64_t now) {
    const rt_router_config *c = config;
    router_t *r = state;
    (void)now;
    if (!c || n_outputs < 1 || c->default_port >= n_outputs || (c->n_routes && !c->routes)) return RT_EINVAL;
    for (uint32_t i = 0; i < c->n_routes; i++)
        if (c->routes[i].port < 0 || c->routes[i].port >= n_outputs) return RT_EINVAL;
    r->routes = malloc((c->n_routes ? c->n_routes : 1) * sizeof *r->routes);
    if (!r->routes) return RT_ENOMEM;
    if (c->n_routes) memcpy(r->routes, c->routes, c->n_routes * sizeof *r->routes);
    /* longest prefix first (stable insertion sort: few routes) */
    for (uint32_t i = 1; i < c->n_routes; i++) {
        rt_route x = r->routes[i];
        uint32_t j = i;
        while (j > 0 && prefix_len(r->routes[j - 1].mask) < prefix_len(x.mask)) { r->routes[j] = r->routes[j - 1]; j--; }
        r->routes[j] = x;
    }
    for (uint32_t i = 0; i < c->n_routes; i++) r->routes[i].addr &= r->routes[i].mask;
    r->n = c->n_routes;
    r->default_port = c->default_port;
    return RT_OK;
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
