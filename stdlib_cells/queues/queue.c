/* Queue limits and active queue management for bw-like cells (see queue.h). The algorithms follow
 * upstream Rattan's queues (stack-rs/rattan, rattan-core/src/cells/bandwidth/queue/{droptail,
 * drophead,codel,pie,red}.rs) and its Bw cell's zero-buffer rule (cells/bandwidth/mod.rs). */
#include "queues/queue.h"

#include <string.h>

#define PIE_DQ_THRESHOLD 16384  /* bytes: PIE's departure-rate measurement cycle (RFC 8033) */
#define PIE_MEAN_PKTSIZE 1500
#define ARED_INTERVAL 500000000ull  /* ns: ARED adjusts max_p every 500 ms */

/* `packets` or `bytes`: absent or `unlimited` is no limit; 0 holds nothing. */
static uint64_t read_limit(const rt_config *c, const char *name, int *zero) {
    if (!rt_cfg_has(c, name)) return RT_QUEUE_UNLIMITED;
    if (rt_cfg_kind(c, name) == RT_VAL_STR) {
        if (strcmp(rt_cfg_str(c, name), "unlimited") != 0) rt_cfg_fail(c, name, "must be a number or `unlimited`");
        return RT_QUEUE_UNLIMITED;
    }
    uint64_t v = rt_cfg_u64(c, name);
    if (v == 0 && !rt_cfg_status(c)) *zero = 1;
    return v;
}

static double read_float(const rt_config *c, const char *name, double dflt) {
    return rt_cfg_has(c, name) ? rt_cfg_float(c, name) : dflt;
}

int rt_queue_init(rt_queue *q, const rt_config *c) {
    const char *kind = rt_cfg_str(c, "kind");
    if (rt_cfg_status(c)) return RT_EINVAL;
    q->limit_packets = q->limit_bytes = RT_QUEUE_UNLIMITED;
    if (strcmp(kind, "infinite") == 0) { q->kind = RT_QUEUE_INFINITE; return RT_OK; }
    q->kind = strcmp(kind, "drophead") == 0 ? RT_QUEUE_DROPHEAD : RT_QUEUE_DROPTAIL;
    q->limit_packets = read_limit(c, "packets", &q->zero);
    q->limit_bytes = read_limit(c, "bytes", &q->zero);
    if (rt_cfg_has(c, "overhead")) {
        uint64_t o = rt_cfg_u64(c, "overhead");
        if (o > 65535) return rt_cfg_fail(c, "overhead", "must be at most 65535 bytes");
        q->overhead = (uint32_t)o;
    }
    if (rt_cfg_has(c, "seed")) {
        rt_rng_seed(&q->rng, rt_cfg_u64(c, "seed"));
        q->own_rng = 1;
    }
    if (strcmp(kind, "droptail") == 0 || strcmp(kind, "drophead") == 0) {
        q->aqm = RT_AQM_NONE;
    } else if (strcmp(kind, "codel") == 0) {
        q->aqm = RT_AQM_CODEL;
        q->target = rt_cfg_u64(c, "target");
        q->interval = rt_cfg_u64(c, "interval");
        q->mtu = rt_cfg_has(c, "mtu") ? rt_cfg_u64(c, "mtu") : 1500;
        if (!rt_cfg_status(c) && !q->target) return rt_cfg_fail(c, "target", "must be longer than 0");
        if (!rt_cfg_status(c) && !q->interval) return rt_cfg_fail(c, "interval", "must be longer than 0");
    } else if (strcmp(kind, "pie") == 0) {
        q->aqm = RT_AQM_PIE;
        uint64_t target = rt_cfg_u64(c, "target");
        q->t_update = rt_cfg_u64(c, "tupdate");
        uint64_t burst = rt_cfg_has(c, "max_burst") ? rt_cfg_u64(c, "max_burst") : 150000000;
        q->ref_del = (double)target / 1e9;
        q->max_burst_ms = (double)burst / 1e6;
        q->alpha = read_float(c, "alpha", 0.125);
        q->beta = read_float(c, "beta", 1.25);
        q->burst_allowance = q->max_burst_ms;
        if (!rt_cfg_status(c) && !target) return rt_cfg_fail(c, "target", "must be longer than 0");
        if (!rt_cfg_status(c) && !q->t_update) return rt_cfg_fail(c, "tupdate", "must be longer than 0");
        if (!rt_cfg_status(c) && !(q->alpha >= 0 && q->alpha < 1e9)) return rt_cfg_fail(c, "alpha", "must be a finite number >= 0");
        if (!rt_cfg_status(c) && !(q->beta >= 0 && q->beta < 1e9)) return rt_cfg_fail(c, "beta", "must be a finite number >= 0");
    } else if (strcmp(kind, "red") == 0) {
        q->aqm = RT_AQM_RED;
        q->min_th = (double)rt_cfg_u64(c, "min");
        q->max_th = (double)rt_cfg_u64(c, "max");
        q->max_p = rt_cfg_float(c, "probability");
        q->w_q = read_float(c, "weight", 0.002);
        q->adaptive = rt_cfg_has(c, "adaptive") ? rt_cfg_bool(c, "adaptive") : 0;
        q->pkt_tx_ns = rt_cfg_has(c, "packet_time") ? (double)rt_cfg_u64(c, "packet_time") : 0;  /* 0: from the rate */
        q->red_count = -1;
        if (!rt_cfg_status(c) && q->min_th >= q->max_th) return rt_cfg_fail(c, "max", "must be above `min`");
        if (!rt_cfg_status(c) && !(q->max_p >= 0 && q->max_p <= 1))
            return rt_cfg_fail(c, "probability", "must be between 0 and 1");
        if (!rt_cfg_status(c) && !(q->w_q > 0 && q->w_q <= 1)) return rt_cfg_fail(c, "weight", "must be above 0 and at most 1");
        if (!rt_cfg_status(c) && rt_cfg_has(c, "packet_time") && q->pkt_tx_ns <= 0)
            return rt_cfg_fail(c, "packet_time", "must be longer than 0");
    } else {
        return rt_cfg_fail(c, "kind", "not a queue kind the engine has (infinite, droptail, drophead, codel, pie, red)");
    }
    return rt_cfg_status(c);
}

static inline uint64_t counted(const rt_queue *q, const rt_pkt *k) { return (uint64_t)k->size + q->overhead; }

/* The first packet behind the one on the wire. */
static inline rt_pkt *first_waiting(const rt_queue *q) {
    return q->q.head && q->q.head == q->wire ? q->q.head->next : q->q.head;
}

static int below_limits(const rt_queue *q, uint64_t size) {
    return (q->limit_packets == RT_QUEUE_UNLIMITED || q->waiting < q->limit_packets) &&
           (q->limit_bytes == RT_QUEUE_UNLIMITED || q->waiting_bytes + size <= q->limit_bytes);
}

static inline rt_rng *queue_rng(rt_queue *q, rt_node *n) { return q->own_rng ? &q->rng : rt_node_rng(n); }

/* ---- PIE (pie.rs: RFC 8033 Appendix B, updated on arrivals on a fixed t_update grid) */
static void pie_update(rt_queue *q) {
    double cur = q->avg_drate > 0 ? (double)q->waiting_bytes / q->avg_drate : 0;
    double inc = q->alpha * (cur - q->ref_del) + q->beta * (cur - q->old_del), p = q->pie_p;
    if (p < 0.000001) inc /= 2048; else if (p < 0.00001) inc /= 512;
    else if (p < 0.0001) inc /= 128; else if (p < 0.001) inc /= 32;
    else if (p < 0.01) inc /= 8; else if (p < 0.1) inc /= 2;
    if (p >= 0.1 && inc > 0.02) inc = 0.02;  /* RFC 8033 5.5: cap the adjustment */
    p += inc;
    int calm = cur < q->ref_del / 2 && q->old_del < q->ref_del / 2;
    if (calm) p *= 0.98;  /* RFC 8033 4.2: decay while uncongested */
    q->pie_p = p < 0 ? 0 : p > 1 ? 1 : p;
    if (q->pie_p < 2.220446049250313e-16 && calm) q->burst_allowance = q->max_burst_ms;  /* 4.4 */
    else {
        q->burst_allowance -= (double)q->t_update / 1e6;
        if (q->burst_allowance < 0) q->burst_allowance = 0;
    }
    q->old_del = cur;
    q->start_update += q->t_update;
}

static void pie_catch_up(rt_queue *q, uint64_t t) {
    if (!q->has_update) { q->has_update = 1; q->start_update = t; }
    while (t >= q->start_update && t - q->start_update >= q->t_update) {
        double p = q->pie_p, old = q->old_del, burst = q->burst_allowance;
        pie_update(q);
        if (q->pie_p == p && q->old_del == old && q->burst_allowance == burst)  /* a fixed point: skip */
            q->start_update += (t - q->start_update) / q->t_update * q->t_update;
    }
}

static int pie_drops(rt_queue *q, rt_rng *rng) {
    if (q->burst_allowance > 2.220446049250313e-16) return 0;
    if ((q->old_del < q->ref_del / 2 && q->pie_p < 0.2) ||
        q->waiting_bytes <= 2 * (uint64_t)(PIE_MEAN_PKTSIZE + q->overhead)) return 0;
    return rt_rng_unit(rng) < q->pie_p;
}

/* The departure rate, measured over cycles of 16 KiB while the backlog is above 16 KiB. */
static void pie_departed(rt_queue *q, uint64_t size, uint64_t now) {
    if (q->waiting_bytes > PIE_DQ_THRESHOLD && !q->measuring) {
        q->measuring = 1;
        q->start_measurement = now;
        q->dq_count = 0;
    }
    if (!q->measuring) return;
    q->dq_count += size;
    if (q->dq_count >= PIE_DQ_THRESHOLD) {
        double dq_int = now > q->start_measurement ? (double)(now - q->start_measurement) / 1e9 : 0;
        if (dq_int > 2.220446049250313e-16) {
            double rate = (double)q->dq_count / dq_int;
            q->avg_drate = q->avg_drate > 0 ? 0.875 * q->avg_drate + 0.125 * rate : rate;
            q->measuring = 0;
            q->dq_count = 0;
        }
    }
    if (q->waiting_bytes < PIE_DQ_THRESHOLD) { q->measuring = 0; q->dq_count = 0; }
}

/* ---- RED (red.rs: RED of Floyd and Jacobson, with ARED's max_p adaptation when `adaptive`) */
static void red_update_avg(rt_queue *q, uint64_t t, uint64_t rate_bps) {
    if (q->waiting) {
        q->red_avg = (1 - q->w_q) * q->red_avg + q->w_q * (double)q->waiting_bytes;
        return;
    }
    if (q->idle) {  /* the average decays as if m packets had left during the idle time */
        double tx = q->pkt_tx_ns > 0 ? q->pkt_tx_ns : rate_bps ? 1500 * 8e9 / (double)rate_bps : 0;
        if (tx > 0 && t > q->idle_start) q->red_avg *= pow(1 - q->w_q, (double)(t - q->idle_start) / tx);
        q->idle_start = t;
    }
}

static void red_adapt(rt_queue *q, uint64_t t) {
    if (!q->has_max_p_update) { q->has_max_p_update = 1; q->last_max_p_update = t; }
    if (t < q->last_max_p_update || t - q->last_max_p_update < ARED_INTERVAL) return;
    double span = q->max_th - q->min_th;
    if (q->red_avg > q->min_th + 0.6 * span) q->max_p += q->max_p / 4 < 0.01 ? q->max_p / 4 : 0.01;
    else if (q->red_avg < q->min_th + 0.4 * span) q->max_p *= 0.9;
    q->max_p = q->max_p < 0.01 ? 0.01 : q->max_p > 0.5 ? 0.5 : q->max_p;
    q->last_max_p_update += ARED_INTERVAL;  /* a fixed 500 ms grid, as upstream */
}

static int red_drops(rt_queue *q, rt_rng *rng) {
    double avg = q->red_avg;
    if (avg >= q->min_th && avg < q->max_th) {
        q->red_count++;
        double pb = q->max_p * (avg - q->min_th) / (q->max_th - q->min_th);
        double pa = (double)q->red_count * pb >= 1 ? 1.0 : pb / (1 - (double)q->red_count * pb);
        if (rt_rng_unit(rng) < pa) { q->red_count = -1; return 1; }
        return 0;
    }
    q->red_count = -1;
    return avg >= q->max_th;
}

static void hold(rt_queue *q, rt_node *n, rt_pkt *k) {
    rt_fifo_push(&q->q, k);
    q->waiting++;
    q->waiting_bytes += counted(q, k);
    rt_hold(n, k, +1);
}

int rt_queue_admit(rt_queue *q, rt_node *n, rt_pkt *k, uint64_t rate_bps) {
    if (!q->q.head) q->wire = NULL;
    if (q->zero) {  /* mod.rs: a zero-buffer queue passes a packet only to an idle link */
        if (q->q.head) { rt_drop(n, k, RT_DROP_QUEUE_FULL); return 0; }
        hold(q, n, k);
        return 1;
    }
    uint64_t size = counted(q, k);
    if (q->kind == RT_QUEUE_DROPHEAD) {  /* drophead.rs: the oldest waiting packets make room */
        while (!below_limits(q, size) && q->waiting) {
            rt_pkt *victim = first_waiting(q);
            if (victim == q->q.head) {
                rt_fifo_pop(&q->q);
            } else {  /* behind the packet on the wire */
                q->q.head->next = victim->next;
                if (q->q.tail == victim) q->q.tail = q->q.head;
                q->q.packets--;
                q->q.bytes -= victim->size;
                victim->next = NULL;
            }
            q->waiting--;
            q->waiting_bytes -= counted(q, victim);
            rt_hold(n, victim, -1);
            rt_drop(n, victim, RT_DROP_QUEUE_FULL);
        }
        if (!below_limits(q, size)) { rt_drop(n, k, RT_DROP_QUEUE_FULL); return 0; }
        hold(q, n, k);
        return 1;
    }
    rt_rng *rng = queue_rng(q, n);
    if (q->aqm == RT_AQM_PIE) pie_catch_up(q, k->t);
    if (q->aqm == RT_AQM_RED) {
        red_update_avg(q, k->t, rate_bps);
        if (q->adaptive) red_adapt(q, k->t);
    }
    if (!below_limits(q, size)) {
        if (q->aqm == RT_AQM_RED) q->red_count = -1;
        rt_drop(n, k, RT_DROP_QUEUE_FULL);
        return 0;
    }
    if ((q->aqm == RT_AQM_PIE && pie_drops(q, rng)) || (q->aqm == RT_AQM_RED && red_drops(q, rng))) {
        rt_drop(n, k, RT_DROP_AQM);
        return 0;
    }
    hold(q, n, k);
    if (q->aqm == RT_AQM_RED) q->idle = 0;
    return 1;
}

/* ---- CoDel (codel.rs dequeue_at, after Linux include/net/codel.h) */
static inline uint64_t control_law(uint64_t t, uint64_t interval, uint32_t count) {
    return t + (uint64_t)((double)interval / sqrt((double)count));
}

/* Whether the packet just taken from the queue, starting at `now`, may be dropped (codel.rs
 * should_drop); `waiting_bytes` no longer counts it. */
static int codel_ok_to_drop(rt_queue *q, const rt_pkt *k, uint64_t now) {
    if ((now > k->t ? now - k->t : 0) < q->target || q->waiting_bytes <= q->mtu) {
        q->above = 0;
        return 0;
    }
    if (!q->above) {
        q->above = 1;
        q->first_above = now + q->interval;
        return 0;
    }
    return now >= q->first_above;
}

/* Take the first waiting packet (it becomes the head or is dropped). */
static void take(rt_queue *q) {
    q->waiting--;
    q->waiting_bytes -= counted(q, q->q.head);
}

static void drop_head(rt_queue *q, rt_node *n) {
    rt_pkt *k = rt_fifo_pop(&q->q);
    rt_hold(n, k, -1);
    rt_drop(n, k, RT_DROP_AQM);
}

/* CoDel's choice of the next packet at `now`: drops at the head, as codel.rs dequeue_at. */
static rt_pkt *codel_head(rt_queue *q, rt_node *n, uint64_t at) {
    rt_pkt *h = q->q.head;
    uint64_t now = at < h->t ? h->t : at;
    take(q);
    int drop = codel_ok_to_drop(q, h, now);
    if (q->dropping) {
        if (!drop) { q->dropping = 0; return h; }
        while (q->dropping && now >= q->drop_next) {
            q->count++;
            drop_head(q, n);
            h = q->q.head;
            if (!h) { q->dropping = 0; return NULL; }
            take(q);
            if (codel_ok_to_drop(q, h, now)) q->drop_next = control_law(q->drop_next, q->interval, q->count);
            else q->dropping = 0;
        }
        return h;
    }
    if (drop) {
        drop_head(q, n);
        h = q->q.head;
        if (!h) { q->dropping = 0; return NULL; }
        take(q);
        q->dropping = 1;
        uint32_t delta = q->count - q->lastcount;
        /* signed: drop_next may still lie ahead of now when dropping resumes soon after it stopped */
        q->count = (delta > 1 && (int64_t)(now - q->drop_next) < (int64_t)(16 * q->interval)) ? delta : 1;
        q->lastcount = q->count;
        q->drop_next = control_law(now, q->interval, q->count);
    }
    return h;
}

rt_pkt *rt_queue_head(rt_queue *q, rt_node *n, uint64_t at) {
    rt_pkt *h = q->q.head;
    if (h && h == q->wire) return h;  /* already chosen (the cell is timing it again) */
    q->wire = NULL;                   /* the packet that was on the wire has left */
    if (!h) {
        if (q->aqm == RT_AQM_CODEL) q->dropping = 0;
        return NULL;
    }
    uint64_t start = at < h->t ? h->t : at;
    if (q->aqm == RT_AQM_CODEL) {
        h = codel_head(q, n, at);
        if (!h) return NULL;
    } else {
        take(q);
        if (q->aqm == RT_AQM_PIE) pie_departed(q, counted(q, h), start);
    }
    if (q->aqm == RT_AQM_RED && !q->waiting) { q->idle = 1; q->idle_start = start; }
    q->wire = h;
    return h;
}
