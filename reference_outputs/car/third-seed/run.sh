#!/bin/bash
cd /work/runs/i28o && . ./env.sh
[ -f sense-random80-fine-s2/summary.json ] || minisense search --init random --sparsity 80 --dataset carracing --data-dir data-v3cap60-fine --budget-minutes 240 --max-steps 72027 --seed 2 --subsample 0.5 --redraw-steps 1000 --out sense-random80-fine-s2 > search-sense-s2.log 2>&1 &
[ -f backprop-random80-fine-s2/summary.json ] || minisense search --init random --sparsity 80 --dataset carracing --data-dir data-v3cap60-fine --budget-minutes 60 --seed 2 --backprop --out backprop-random80-fine-s2 > search-backprop-s2.log 2>&1 &
wait
echo lines done $(date)
E=/work/main/reference_outputs/car
drive() { # name checkpoint seed episodes expert
  local n=$1 c=$2 s=$3 k=$4 x=$5
  [ -f drive-$n-$s.json ] || minisense car drive $c --episodes $k --seed $s --workers 2 --json drive-$n-$s.json > drive-$n-$s.log 2>&1
  [ -f cmp-$n-$s.json ] || minisense car compare drive-$n-$s.json $x --json cmp-$n-$s.json --plot scatter-$n-$s.png > cmp-$n-$s.log 2>&1
  echo "$n $s done $(date)"
}
for n in sense backprop; do
  c=$( [ $n = sense ] && echo sense-random80-fine-s2/best || echo backprop-random80-fine-s2/best )
  drive $n $c 3000 50 $E/expert-v3/expert-cap60-s3000.json
done
for n in sense backprop; do
  c=$( [ $n = sense ] && echo sense-random80-fine-s2/best || echo backprop-random80-fine-s2/best )
  drive $n $c 1000 100 $E/expert-v3/expert-cap60-s1000.json
  drive $n $c 7000 100 $E/fresh-tracks-7000/expert-s7000.json
done
for s in 1000 7000; do
  [ -f cmp-sense-backprop-$s.json ] || minisense car compare drive-sense-$s.json drive-backprop-$s.json --json cmp-sense-backprop-$s.json > cmp-sense-backprop-$s.log 2>&1
done
echo all done $(date)
