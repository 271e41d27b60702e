"""Pools bench/http.sh runs: each variant paired with `none` of the same run and round, then
the median (min–max) over every round of every run given, as a markdown table.

    python3 bench/pool.py target/bench-http/results-A.tsv target/bench-http/results-B.tsv
"""
import sys, csv, statistics as st
rows=[]
for i,f in enumerate(sys.argv[1:]):
    for r in csv.DictReader(open(f), delimiter='\t'):
        r['run']=i; rows.append(r)
by={}
for r in rows: by[(r['run'],r['round'],r['variant'])]=r
variants=[]
for r in rows:
    if r['variant'] not in variants: variants.append(r['variant'])
keys=sorted({(r['run'],r['round']) for r in rows})
print(f"pooled {len(keys)} rounds from {len(sys.argv)-1} runs")
print("| variant | req/s ÷ none, pooled median (min–max) | extra server CPU µs/req over none, pooled median (min–max) | server CPU µs/req median | per run (÷ none) |")
print("| --- | --- | --- | --- | --- |")
for v in variants:
    q=[];e=[];c=[];per={}
    for k in keys:
        a=by.get((k[0],k[1],v)); n=by.get((k[0],k[1],'none'))
        if not a or not n: continue
        qq=float(a['req_per_s'])/float(n['req_per_s']); q.append(qq)
        e.append(float(a['cpu_us_per_req'])-float(n['cpu_us_per_req'])); c.append(float(a['cpu_us_per_req']))
        per.setdefault(k[0],[]).append(qq)
    pr=", ".join(f"{st.median(x):.3f}" for _,x in sorted(per.items()))
    print(f"| {v} | {st.median(q):.3f} ({min(q):.3f}–{max(q):.3f}) | {st.median(e):+.2f} ({min(e):+.2f}–{max(e):+.2f}) | {st.median(c):.2f} | {pr} |")
