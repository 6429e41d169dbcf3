# Samples the threads of a running process: per thread, the share of samples in user code
# ("running"), and per syscall number otherwise (24 = sched_yield, 202 = futex, 230 = nanosleep).
import collections, os, sys, time
pid = int(sys.argv[1]); n = int(sys.argv[2]) if len(sys.argv) > 2 else 400
stats = collections.defaultdict(collections.Counter)
names = {}
for _ in range(n):
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            comm = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            sc = open(f"/proc/{pid}/task/{tid}/syscall").read().split()
            state = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        names[tid] = comm
        stats[tid][(state, sc[0])] += 1
    time.sleep(0.005)
t1 = {tid: open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split() for tid in stats if os.path.exists(f"/proc/{pid}/task/{tid}/stat")}
for tid, c in sorted(stats.items(), key=lambda kv: -sum(v for (s, _), v in kv[1].items() if s == "R")):
    tot = sum(c.values())
    top = ", ".join(f"{s}/{k}:{100*v/tot:.0f}%" for (s, k), v in c.most_common(4))
    print(f"{tid} {names[tid]:16s} {top}")
