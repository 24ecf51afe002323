#!/bin/bash
cd /work/runs/i28l && . ./env.sh
B=backprop-random80-fine
while [ ! -f $B/summary.json ]; do sleep 30; done
E=/work/main/reference_outputs/car/expert-v3
[ -f val3000.json ] || minisense car drive $B/best --episodes 50 --seed 3000 --workers 1 --json val3000.json > val3000.log 2>&1
minisense car compare val3000.json $E/expert-cap60-s3000.json --json cmp-val3000.json > cmp-val3000.log 2>&1
[ -f drive.json ] || minisense car drive $B/best --episodes 100 --seed 1000 --workers 1 --json drive.json > drive.log 2>&1
minisense car compare drive.json $E/expert-cap60-s1000.json --json cmp-pursuit-v3-cap60.json --plot scatter-pursuit-v3-cap60.png > cmp.log 2>&1
echo after done
