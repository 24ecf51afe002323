#!/bin/bash
cd /work/runs/i28l && . ./env.sh
[ -f backprop-random80-fine-s1/summary.json ] || minisense search --init random --sparsity 80 --dataset carracing --data-dir ../i28i/data-v3cap60-fine --budget-minutes 60 --seed 1 --backprop --out backprop-random80-fine-s1 > backprop-s1.log 2>&1
B=backprop-random80-fine-s1
E=/work/main/reference_outputs/car/expert-v3
[ -f val3000-s1.json ] || minisense car drive $B/best --episodes 50 --seed 3000 --workers 1 --json val3000-s1.json > val3000-s1.log 2>&1
minisense car compare val3000-s1.json $E/expert-cap60-s3000.json --json cmp-val3000-s1.json > cmp-val3000-s1.log 2>&1
[ -f drive-s1.json ] || minisense car drive $B/best --episodes 100 --seed 1000 --workers 2 --json drive-s1.json > drive-s1.log 2>&1
minisense car compare drive-s1.json $E/expert-cap60-s1000.json --json cmp-s1-pursuit-v3-cap60.json --plot scatter-s1-pursuit-v3-cap60.png > cmp-s1.log 2>&1
echo s1 done
