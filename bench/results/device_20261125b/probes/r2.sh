#!/usr/bin/env bash
# r2: is the bench's d64 causal slow mode the power-capped (hot) regime? kernel-only A/B, hot and boost, with SM clock/power logged
cd "$(dirname "$0")/.."
export RUN=r2 PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv,noheader -lms 100 > $OUT/r2_smi.csv &
SMI=$!
for mode in "--hot" ""; do
  (cd bench && timeout 200 python3 ab_auto.py --old ../ab_main --dims 64 --seqlens 512,1024,2048 $mode) 2>&1 | grep "^d=" | tee $OUT/r2_ab${mode}.txt
  date +%T.%N | cut -c1-12
done
kill $SMI
python3 - <<'P'
import csv, os, statistics
rows=[r for r in csv.reader(open(os.environ["OUT"]+"/r2_smi.csv"))]
clk=[int(r[1].split()[0]) for r in rows if "MHz" in r[1]]; pw=[float(r[2].split()[0]) for r in rows if "W" in r[2]]
busy=[(c,p) for c,p in zip(clk,pw) if p>300]
print("samples", len(rows), "busy", len(busy), "SM MHz median busy", statistics.median([c for c,_ in busy]) if busy else None, "W", statistics.median([p for _,p in busy]) if busy else None)
P
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv,noheader -lms 50 > $OUT/r2_smi2.csv &
SMI=$!
timeout 100 python3 ab_main/power_probe.py 1024 | tee $OUT/r2_power.txt
kill $SMI
python3 - <<'P'
import os, statistics, datetime
out=os.environ["OUT"]
smi=[]
for line in open(out+"/r2_smi2.csv"):
    p=[x.strip() for x in line.split(",")]
    try: smi.append((datetime.datetime.strptime(p[0],"%Y/%m/%d %H:%M:%S.%f").time(), int(p[1].split()[0]), float(p[2].split()[0])))
    except (ValueError, IndexError): pass
for line in open(out+"/r2_power.txt"):
    w=line.split(); a,b=w[2].split("-")
    ta=datetime.datetime.strptime(a,"%H:%M:%S.%f").time(); tb=datetime.datetime.strptime(b,"%H:%M:%S.%f").time()
    sel=[(c,p) for t,c,p in smi if ta<=t<=tb][5:]  # skip the first ~0.25 s
    if sel: print(line.strip(), f"| SM {statistics.median([c for c,_ in sel])} MHz, {statistics.median([p for _,p in sel]):.0f} W, n={len(sel)}")
P
