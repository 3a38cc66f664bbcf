/* Stress harness for the engine under AddressSanitizer and UndefinedBehaviorSanitizer.
 *
 * Builds many random acyclic chains of every cell kind through the public header,
 * drives traffic through them in virtual time with runtime changes, and checks
 * conservation on every node. Exit status 0 means clean; sanitizer reports abort it.
 */
#include "rattan_engine.h"

#include <stdio.h>
#include <stdlib.h>

static uint64_t state = 88172645463325252ULL;
static uint64_t rnd(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state; }
static uint64_t pick(uint64_t n) { return rnd() % n; }

#define CHECK(x) do { if ((x) < 0) { fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #x); return 1; } } while (0)

static int add_random_cell(rt_engine *e) {
    switch (pick(9)) {
    case 0: return rt_add_pass(e);
    case 1: {
        rt_bw_config c = {0};
        c.rate_bps = 1000000 + pick(100000000);
        c.queue_kind = (int)pick(3);
        c.limit_packets = c.queue_kind ? 1 + pick(200) : 0;
        c.limit_bytes = c.queue_kind && pick(2) ? 1500 + pick(300000) : 0;
        c.aqm = (int)pick(4);
        c.target_ns = 1000000 + pick(20000000);
        c.interval_ns = 10000000 + pick(100000000);
        c.red_min_bytes = 3000;
        c.red_max_bytes = 30000;
        c.red_max_p = 0.1;
        c.overhead_bytes = (uint32_t)pick(40);
        if (pick(4) == 0) {
            static uint64_t trace[64];
            for (int i = 0; i < 64; i++) trace[i] = (uint64_t)(i / 2) * 1000000;
            c.trace_ns = trace;
            c.trace_len = 64;
            c.trace_period_ns = 32000000;
            c.trace_mtu = 1500;
            c.trace_loop = (int)pick(2);
        }
        return rt_add_bw(e, &c);
    }
    case 2: {
        rt_delay_config c = {pick(20000000), pick(5000000), (int)pick(4), (double)pick(100) / 100, (int)pick(2)};
        return rt_add_delay(e, &c);
    }
    case 3: {
        static const double pattern[3] = {0.05, 0.5, 0.9};
        rt_loss_config c = {0};
        c.model = (int)pick(3);
        c.rate = 0.01;
        c.p = 0.01; c.r = 0.3; c.h = 0.8; c.k = 0.001;
        c.pattern = pattern; c.pattern_len = 3;
        return rt_add_loss(e, &c);
    }
    case 4: {
        rt_token_bucket_config c = {1000000 + pick(50000000), 1500 + pick(100000), pick(2) ? 0 : 3000 + pick(100000),
                                    pick(2) ? 0 : 60000000, 1500};
        return rt_add_token_bucket(e, &c);
    }
    case 5: return rt_add_duplicate(e, 0.05);
    case 6: return rt_add_corrupt(e, 0.05);
    case 7: return rt_add_outage(e, pick(2) ? 50000000 : 0, pick(2) ? 20000000 : 0, (int)pick(2));
    default: return rt_add_pass(e);
    }
}

int main(void) {
    for (int round = 0; round < 40; round++) {
        rt_engine *e = rt_engine_new(rnd());
        if (!e) return 1;
        int nodes[64], n = 0;
        for (int ch = 0; ch < 6; ch++) {
            int left = rt_add_endpoint(e), right = rt_add_endpoint(e);
            CHECK(left); CHECK(right);
            rt_endpoint_set_addr(e, left, 0x0a000102u + (uint32_t)ch);
            rt_endpoint_set_addr(e, right, 0x0a000202u + (uint32_t)ch);
            int prev = left, len = 1 + (int)pick(6);
            for (int i = 0; i < len; i++) {
                int c = add_random_cell(e);
                if (c < 0) continue;  /* a rejected random configuration is fine: try the next */
                CHECK(rt_link(e, prev, 0, c));
                nodes[n++ % 64] = c;
                prev = c;
            }
            /* sometimes a router in front of the right endpoint */
            if (pick(2)) {
                rt_route r[2] = {{0x0a000200u, 0xffffff00u, 0}, {0x0a000000u, 0xff000000u, 1}};
                int router = rt_add_router(e, r, 2, 2, -1);
                CHECK(router);
                CHECK(rt_link(e, prev, 0, router));
                CHECK(rt_link(e, router, 0, right));
                prev = -1;
            }
            if (prev >= 0) CHECK(rt_link(e, prev, 0, right));
            CHECK(rt_add_flow(e, left, right, (int)pick(2), 1000000 + pick(200000000), 40 + (uint32_t)pick(1460)));
        }
        for (uint64_t t = 1; t <= 40; t++) {
            CHECK(rt_run_until(e, t * 50000000ULL));
            for (int k = 0; k < (n < 64 ? n : 64); k++) {
                if (pick(5) == 0) rt_bw_set_rate(e, nodes[k], pick(3) ? pick(200000000) : 0);
                if (pick(9) == 0) rt_outage_set_down(e, nodes[k], (int)pick(2));
            }
        }
        for (int id = 0;; id++) {
            rt_counters c;
            if (rt_node_counters(e, id, &c) < 0) break;
            if (c.in_packets + c.created_packets != c.out_packets + c.dropped_packets + c.queued_packets) {
                /* flow generators have no input: they only send */
                if (c.in_packets == 0 && c.queued_packets == 0) continue;
                fprintf(stderr, "round %d node %d: conservation broken\n", round, id);
                return 1;
            }
        }
        rt_engine_free(e);
    }
    puts("engine stress: clean");
    return 0;
}
