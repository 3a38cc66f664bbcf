"""A bounded stand-in for `rattan batch` on the case study: a reduced sweep
through the library (rattan.compile, rattan.run), two runs at a time, results
to JSON and the two figures. Usage: python driver.py OUT.json SIZE..."""

import itertools
import json
import multiprocessing
import sys
from pathlib import Path

import rattan

HERE = Path(__file__).resolve().parent
SETTINGS = [("0B", "0ms"), ("0B", "20ms"), ("100KB", "0ms"), ("100KB", "20ms")]
CCS = ["cubic", "bbr", "reno"]


def one(args):
    queue, jitter, cc, size, seed = args
    c = rattan.compile(HERE / "mobile.rtn", lets={"queue": queue, "jitter": jitter})
    row = {"queue": queue, "jitter": jitter, "cc": cc, "size": size, "seed": seed}
    try:
        with rattan.run(c, seed=seed) as run:
            srv = run.spawn("server", "iperf3 -s -1")
            run.wait_listening(srv)
            res = run.exec("phone", f"iperf3 -c $RATTAN_SERVER_IP -R -n {size} -C {cc} -J", timeout=120)
        end = json.loads(res.stdout)["end"]
        sent = end["sum_sent"]
        row.update(goodput_bps=end["sum_received"]["bits_per_second"],
                   retransmit_rate=sent["retransmits"] * 1448 / sent["bytes"])
    except Exception as e:  # noqa: BLE001 - a failed run is recorded, not fatal
        row["error"] = repr(e)[:300]
    return row


def plot(rows, metric, ylabel, scale, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sizes = list(dict.fromkeys(r["size"] for r in rows))
    fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True, sharey=True)
    for (i, jitter), (k, queue) in itertools.product(enumerate(["0ms", "20ms"]), enumerate(["0B", "100KB"])):
        ax = axes[i][k]
        for cc in CCS:
            means, errs = [], []
            for s in sizes:
                v = [r[metric] * scale for r in rows if metric in r and (r["queue"], r["jitter"], r["cc"], r["size"]) == (queue, jitter, cc, s)]
                m = sum(v) / len(v) if v else float("nan")
                sd = (sum((x - m) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0
                means.append(m); errs.append(1.96 * sd / len(v) ** 0.5 if v else 0)
            ax.errorbar(range(len(sizes)), means, yerr=errs, marker="o", capsize=3, label=cc)
        ax.set_title(f"{'policer' if queue == '0B' else 'shaper (100 KB queue)'}, jitter {jitter}")
        ax.set_xticks(range(len(sizes)), sizes)
        ax.grid(alpha=0.3)
    for a in axes[1]:
        a.set_xlabel("transfer size")
    for a in axes[:, 0]:
        a.set_ylabel(ylabel)
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(out)
    fig.savefig(Path(out).with_suffix(".svg"))


if __name__ == "__main__":
    out, sizes = sys.argv[1], sys.argv[2:]
    jobs = [(q, j, cc, s, seed) for (q, j) in SETTINGS for cc in CCS for s in sizes for seed in range(1, 6)]
    with multiprocessing.Pool(2) as pool:
        rows = list(pool.imap_unordered(one, jobs))
    Path(out).write_text(json.dumps(rows, indent=1))
    docs = HERE.parent.parent / "docs"
    plot(rows, "goodput_bps", "goodput (Mbit/s)", 1e-6, docs / "case-study-goodput.png")
    plot(rows, "retransmit_rate", "retransmitted / sent bytes", 1, docs / "case-study-loss.png")
    print(sum("error" in r for r in rows), "failed of", len(rows))
