#!/bin/bash
cd /work/runs/i28n && . ./env.sh
R=/work/main/reference_outputs/car
[ -f expert-s7000.json ] || minisense car expert --expert pursuit-v3-cap60 --episodes 100 --seed 7000 --workers 2 --json expert-s7000.json > expert-s7000.log 2>&1
drive() { # name, checkpoint, extra args
  local n=$1 c=$2; shift 2
  [ -f drive-$n.json ] || minisense car drive $c --episodes 100 --seed 7000 --workers 2 --json drive-$n.json "$@" > drive-$n.log 2>&1
  [ -f cmp-$n.json ] || minisense car compare drive-$n.json expert-s7000.json --json cmp-$n.json --plot scatter-$n.png > cmp-$n.log 2>&1
  echo "$n done $(date)"
}
drive sense-s0 $R/dagger-sense-fine/start
drive sense-s1 $R/sense-random80-fine-s1/best
drive psiren-s952354559 $R/psiren90-fine-seeds/s952354559
drive psiren-s1 $R/psiren90-fine-seeds/s1
drive psiren-s2 $R/psiren90-fine-seeds/s2
drive backprop-s0 $R/backprop-random80-fine/best
drive backprop-s1 $R/backprop-random80-fine-s1/best
drive psiren-s952354559-o1.5 $R/psiren90-fine-seeds/s952354559 --logit-offset 0,1.5,0
drive psiren-s1-o1.0 $R/psiren90-fine-seeds/s1 --logit-offset 0,1.0,0
drive psiren-s2-o2.0 $R/psiren90-fine-seeds/s2 --logit-offset 0,2.0,0
echo all done $(date)
