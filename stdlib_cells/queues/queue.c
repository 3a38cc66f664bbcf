/* Queue limits and active queue management for bw-like cells (see queue.h). */
#include "queues/queue.h"

#include <string.h>

#define MTU 1500

int rt_queue_init(rt_queue *q, const rt_config *c) {
    const char *kind = rt_cfg_str(c, "kind");
    if (rt_cfg_status(c)) return RT_EINVAL;
    if (strcmp(kind, "infinite") == 0) { q->kind = RT_QUEUE_INFINITE; return RT_OK; }
    q->kind = strcmp(kind, "drophead") == 0 ? RT_QUEUE_DROPHEAD : RT_QUEUE_DROPTAIL;
    q->limit_packets = rt_cfg_has(c, "packets") ? rt_cfg_u64(c, "packets") : 0;
    q->limit_bytes = rt_cfg_has(c, "bytes") ? rt_cfg_u64(c, "bytes") : 0;
    if (strcmp(kind, "droptail") == 0 || strcmp(kind, "drophead") == 0) {
        q->aqm = RT_AQM_NONE;
    } else if (strcmp(kind, "codel") == 0 || strcmp(kind, "pie") == 0) {
        int codel = kind[0] == 'c';
        q->aqm = codel ? RT_AQM_CODEL : RT_AQM_PIE;
        q->target = rt_cfg_u64(c, "target");
        q->interval = rt_cfg_u64(c, codel ? "interval" : "tupdate");
        if (!rt_cfg_status(c) && !q->target) return rt_cfg_fail(c, "target", "must be longer than 0");
        if (!rt_cfg_status(c) && !q->interval) return rt_cfg_fail(c, codel ? "interval" : "tupdate", "must be longer than 0");
    } else if (strcmp(kind, "red") == 0) {
        q->aqm = RT_AQM_RED;
        q->red_min = (double)rt_cfg_u64(c, "min");
        q->red_max = (double)rt_cfg_u64(c, "max");
        q->red_max_p = rt_cfg_float(c, "probability");
        if (!rt_cfg_status(c) && q->red_min >= q->red_max) return rt_cfg_fail(c, "max", "must be above `min`");
        if (!rt_cfg_status(c) && !(q->red_max_p >= 0 && q->red_max_p <= 1))
            return rt_cfg_fail(c, "probability", "must be between 0 and 1");
    } else {
        return rt_cfg_fail(c, "kind", "not a queue kind the engine has (infinite, droptail, drophead, codel, pie, red)");
    }
    if (!rt_cfg_status(c) && !q->limit_packets && !q->limit_bytes)
        return rt_cfg_fail(c, NULL, "a bounded queue needs `packets` or `bytes`");
    return rt_cfg_status(c);
}

static int over_limit(const rt_queue *q, uint32_t extra) {
    return (q->limit_packets && q->q.packets + 1 > q->limit_packets) ||
           (q->limit_bytes && q->q.bytes + extra > q->limit_bytes);
}

/* PIE's drop probability, brought up to date at t (RFC 8033, updated every t_update). The queue
 * delay is the backlog over the rate, or, without a known rate, the head packet's waiting time. */
static void pie_update(rt_queue *q, uint64_t t, uint64_t rate_bps) {
    uint64_t tu = q->interval;
    if (q->pie_last_update == 0) q->pie_last_update = t;
    uint32_t rounds = 0;
    while (t >= q->pie_last_update + tu && rounds++ < 10000) {
        uint64_t at = q->pie_last_update + tu, qdelay;
        if (rate_bps) qdelay = (uint64_t)((double)q->q.bytes * 8e9 / (double)rate_bps);
        else qdelay = q->q.head && at > q->q.head->t ? at - q->q.head->t : 0;
        double delta = 0.125 * ((double)qdelay - (double)q->target) / 1e9 +
                       1.25 * ((double)qdelay - (double)q->pie_qdelay_old) / 1e9;
        double p = q->pie_p;
        if (p < 0.000001) delta /= 2048; else if (p < 0.00001) delta /= 512;
        else if (p < 0.0001) delta /= 128; else if (p < 0.001) delta /= 32;
        else if (p < 0.01) delta /= 8; else if (p < 0.1) delta /= 2;
        p += delta;
        if (qdelay == 0 && q->pie_qdelay_old == 0) p *= 0.98;
        q->pie_p = p < 0 ? 0 : p > 1 ? 1 : p;
        q->pie_qdelay_old = qdelay;
        q->pie_last_update = at;
    }
    if (rounds >= 10000) q->pie_last_update = t;
}

/* Enqueue-side AQM (PIE, RED): true if the arriving packet is dropped. */
static int aqm_drops(rt_queue *q, rt_rng *rng, uint64_t t, uint64_t rate_bps) {
    if (q->aqm == RT_AQM_PIE) {
        pie_update(q, t, rate_bps);
        if ((q->pie_qdelay_old < q->target / 2 && q->pie_p < 0.2) || q->q.bytes <= 2 * MTU) return 0;
        return rt_rng_unit(rng) < q->pie_p;
    }
    if (q->aqm == RT_AQM_RED) {
        const double w = 0.002;
        if (!q->q.head && rate_bps && t > q->idle_since) {  /* idle: the average decays as if small packets left */
            double m = (double)(t - q->idle_since) * (double)rate_bps / 8e9 / MTU;
            q->red_avg *= pow(1 - w, m);
        }
        q->red_avg = (1 - w) * q->red_avg + w * (double)q->q.bytes;
        if (q->red_avg < q->red_min) { q->red_count = -1; return 0; }
        if (q->red_avg >= q->red_max) { q->red_count = 0; return 1; }
        q->red_count++;
        double pb = q->red_max_p * (q->red_avg - q->red_min) / (q->red_max - q->red_min);
        double pa = (double)q->red_count * pb >= 1 ? 1.0 : pb / (1 - (double)q->red_count * pb);
        if (rt_rng_unit(rng) < pa) { q->red_count = 0; return 1; }
    }
    return 0;
}

int rt_queue_admit(rt_queue *q, rt_node *n, rt_pkt *k, uint64_t rate_bps) {
    if (over_limit(q, k->size)) {
        if (q->kind == RT_QUEUE_DROPHEAD && q->q.packets > 1) {
            /* drop the oldest packet that has not started transmitting (the head is on the wire) */
            rt_pkt *head = q->q.head, *victim = head->next;
            head->next = victim->next;
            if (q->q.tail == victim) q->q.tail = head;
            q->q.packets--;
            q->q.bytes -= victim->size;
            rt_hold(n, victim, -1);
            rt_drop(n, victim, RT_DROP_QUEUE_FULL);
            if (over_limit(q, k->size)) { rt_drop(n, k, RT_DROP_QUEUE_FULL); return 0; }
        } else {
            rt_drop(n, k, RT_DROP_QUEUE_FULL);
            return 0;
        }
    }
    if (aqm_drops(q, rt_node_rng(n), k->t, rate_bps)) { rt_drop(n, k, RT_DROP_AQM); return 0; }
    rt_fifo_push(&q->q, k);
    rt_hold(n, k, +1);
    return 1;
}

static inline uint64_t control_law(uint64_t t, uint64_t interval, uint32_t count) {
    return t + (uint64_t)((double)interval / sqrt((double)count));
}

/* CoDel's decision for the packet about to start transmitting at `now` (RFC 8289, dequeue side).
 * With an unresponsive sender the delay saws between the target and a peak set by the count
 * re-use rule; this follows the RFC (and Linux) rather than tuning that away. */
static int codel_drop(rt_queue *q, rt_pkt *k, uint64_t now) {
    int ok = 0;
    if (now - k->t < q->target || q->q.bytes - k->size <= MTU) {
        q->first_above = 0;
    } else if (q->first_above == 0) {
        q->first_above = now + q->interval;
    } else if (now >= q->first_above) {
        ok = 1;
    }
    if (q->dropping) {
        if (!ok) { q->dropping = 0; return 0; }
        if (now >= q->drop_next) {
            q->count++;
            q->drop_next = control_law(q->drop_next, q->interval, q->count);
            return 1;
        }
        return 0;
    }
    if (ok) {
        uint32_t delta = q->count - q->lastcount;
        /* signed: drop_next may still lie ahead of now when dropping resumes soon after it stopped */
        q->count = (delta > 1 && (int64_t)(now - q->drop_next) < (int64_t)(16 * q->interval)) ? delta : 1;
        q->drop_next = control_law(now, q->interval, q->count);
        q->lastcount = q->count;
        q->dropping = 1;
        return 1;
    }
    return 0;
}

rt_pkt *rt_queue_head(rt_queue *q, rt_node *n, uint64_t at) {
    for (;;) {
        rt_pkt *h = q->q.head;
        if (!h) { q->idle_since = at; return NULL; }
        uint64_t start = at < h->t ? h->t : at;
        if (q->aqm != RT_AQM_CODEL || !codel_drop(q, h, start)) return h;
        rt_fifo_pop(&q->q);
        rt_hold(n, h, -1);
        rt_drop(n, h, RT_DROP_AQM);
    }
}
