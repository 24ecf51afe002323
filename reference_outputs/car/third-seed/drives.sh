#!/bin/bash
cd /work/runs/i28o && . ./env.sh
E=/work/main/reference_outputs/car
drive() { # name checkpoint seed episodes expert workers
  local n=$1 c=$2 s=$3 k=$4 x=$5 w=$6
  [ -f drive-$n-$s.json ] || minisense car drive $c --episodes $k --seed $s --workers $w --json drive-$n-$s.json > drive-$n-$s.log 2>&1
  [ -f cmp-$n-$s.json ] || minisense car compare drive-$n-$s.json $x --json cmp-$n-$s.json --plot scatter-$n-$s.png > cmp-$n-$s.log 2>&1
  echo "$n $s done $(date)"
}
S=sense-random80-fine-s2/best B=backprop-random80-fine-s2/best
until [ -f sense-random80-fine-s2/summary.json ]; do sleep 20; done
echo sense line done $(date)
drive sense $S 3000 50 $E/expert-v3/expert-cap60-s3000.json 1
drive sense $S 1000 100 $E/expert-v3/expert-cap60-s1000.json 1
until [ -f backprop-random80-fine-s2/summary.json ]; do sleep 20; done
echo backprop line done $(date)
drive sense $S 7000 100 $E/fresh-tracks-7000/expert-s7000.json 2
drive backprop $B 3000 50 $E/expert-v3/expert-cap60-s3000.json 2
drive backprop $B 1000 100 $E/expert-v3/expert-cap60-s1000.json 2
drive backprop $B 7000 100 $E/fresh-tracks-7000/expert-s7000.json 2
for s in 1000 7000; do
  [ -f cmp-sense-backprop-$s.json ] || minisense car compare drive-sense-$s.json drive-backprop-$s.json --json cmp-sense-backprop-$s.json > cmp-sense-backprop-$s.log 2>&1
done
echo all done $(date)
