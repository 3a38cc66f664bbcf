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
    case 0: return rt_add_cell(e, "pass", NULL, 1);
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
        return rt_add_cell(e, c.trace_ns ? "bw_trace" : "bw", &c, 1);
    }
    case 2: {
        rt_delay_config c = {pick(20000000), pick(5000000), (int)pick(4), (double)pick(100) / 100, (int)pick(2)};
        return rt_add_cell(e, "delay", &c, 1);
    }
    case 3: {
        static const double pattern[3] = {0.05, 0.5, 0.9};
        rt_loss_config c = {0};
        c.model = (int)pick(3);
        c.rate = 0.01;
        c.p = 0.01; c.r = 0.3; c.h = 0.8; c.k = 0.001;
        c.pattern = pattern; c.pattern_len = 3;
        return rt_add_cell(e, "loss", &c, 1);
    }
    case 4: {
        rt_token_bucket_config c = {1000000 + pick(50000000), 1500 + pick(100000), pick(2) ? 0 : 3000 + pick(100000),
                                    pick(2) ? 0 : 60000000, 1500};
        return rt_add_cell(e, "token_bucket", &c, 1);
    }
    case 5: { rt_rate_config c = {0.05}; return rt_add_cell(e, "duplicate", &c, 1); }
    case 6: { rt_rate_config c = {0.05}; return rt_add_cell(e, "corrupt", &c, 1); }
    case 7: {
        uint64_t up = pick(2) ? 50000000 : 0;
        rt_outage_config c = {up, up ? 20000000 : 0, (int)pick(2)};
        return rt_add_cell(e, "outage", &c, 1);
    }
    case 8: {
        static const uint64_t at[3] = {0, 30000000, 90000000};
        static const double delay[3] = {5e6, 40e6, 1e6}, loss[3] = {0.0, 0.3, 0.05};
        rt_steps_config c = {at, pick(2) ? delay : loss, 3, 120000000, (int)pick(2)};
        return rt_add_cell(e, c.value == delay ? "delay_trace" : "loss_trace", &c, 1);
    }
    default: return rt_add_cell(e, "pass", NULL, 1);
    }
}

/* A random change of a random runtime parameter, now or a little later. */
static void control(rt_engine *e, int node, uint64_t now) {
    static const char *const names[] = {"rate", "overhead", "delay", "jitter", "correlation", "burst",
                                        "peak_rate", "up", "down", "state"};
    int p = rt_cell_param(e, node, names[pick(10)]);
    if (p < 0 || pick(4)) return;
    double v = pick(4) == 0 ? 0 : (double)pick(pick(2) ? 2 : 200000000);
    rt_cell_control(e, node, p, v, pick(2) ? 0 : now + pick(30000000));
}

static int conserved(rt_engine *e, int round) {
    for (int id = 0;; id++) {
        rt_counters c;
        if (rt_node_counters(e, id, &c) < 0) return 0;
        if (c.in_packets + c.created_packets != c.out_packets + c.dropped_packets + c.queued_packets) {
            /* flow generators have no input: they only send */
            if (c.in_packets == 0 && c.queued_packets == 0) continue;
            fprintf(stderr, "round %d node %d: conservation broken\n", round, id);
            return 1;
        }
    }
}

/* A flow's delay histogram and stats come in one snapshot: the histogram counts every received packet. */
static int delays_consistent(rt_engine *e, int round) {
    static uint64_t hist[RT_HIST_BUCKETS];
    for (int f = 0; f < 6; f++) {
        rt_flow_stats st;
        if (rt_flow_delay_hist(e, f, &st, hist) != RT_OK) return 1;
        uint64_t sum = 0;
        for (int i = 0; i < RT_HIST_BUCKETS; i++) sum += hist[i];
        if (sum != st.received_packets || st.misdelivered_packets ||  /* (duplicates may outnumber the sent) */
            (st.received_packets && (st.delay_min_ns > st.delay_max_ns ||
                                     st.delay_sum_ns < st.delay_min_ns * st.received_packets))) {
            fprintf(stderr, "round %d flow %d: histogram %llu, received %llu\n", round, f,
                    (unsigned long long)sum, (unsigned long long)st.received_packets);
            return 1;
        }
    }
    return 0;
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
                rt_router_config rc = {r, 2, -1};
                int router = rt_add_cell(e, "router", &rc, 2);
                CHECK(router);
                CHECK(rt_link(e, prev, 0, router));
                CHECK(rt_link(e, router, 0, right));
                prev = -1;
            }
            if (prev >= 0) CHECK(rt_link(e, prev, 0, right));
            int flow = rt_add_flow(e, left, right, (int)pick(2), 1000000 + pick(200000000), 40 + (uint32_t)pick(1460));
            CHECK(flow);
            if (pick(2)) CHECK(rt_flow_keep_samples(e, flow, 1));  /* raw samples on some flows */
        }
        if (round % 4 == 0) {  /* the packet log on some rounds: records from both threads' phases */
            CHECK(rt_packet_log_open(e, "/dev/null", 0));
            for (int i = 0; i < n && i < 64; i += 2) CHECK(rt_packet_log_node(e, nodes[i], 1));
        }
        for (uint64_t t = 1; t <= 40; t++) {
            CHECK(rt_run_until(e, t * 50000000ULL));
            for (int k = 0; k < (n < 64 ? n : 64); k++) {
                control(e, nodes[k], t * 50000000ULL);
            }
        }
        if (conserved(e, round) || delays_consistent(e, round)) return 1;
        /* the same engine in its own thread: counters stay consistent while it runs */
        if (round % 4 == 0) {
            CHECK(rt_engine_start(e, 4000000000ULL, RT_CLOCK_VIRTUAL));
            while (rt_engine_running(e)) {
                if (conserved(e, round)) return 1;
                if (delays_consistent(e, round)) return 1;
                control(e, nodes[pick(n < 64 ? (uint64_t)n : 64)], rt_now(e));
            }
            CHECK(rt_engine_wait(e, -1));
            if (conserved(e, round)) return 1;
        }
        rt_engine_free(e);
    }
    puts("engine stress: clean");
    return 0;
}
