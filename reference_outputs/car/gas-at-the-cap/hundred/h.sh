#!/bin/bash
cd /work/runs/i28k && . ./env.sh
P=../i28i
d() { # name net seed offset
  local off=""; [ "$4" != none ] && off="--logit-offset 0,$4,0"
  [ -f val$3-$1-$4.json ] || minisense car drive $2 --episodes 50 --seed $3 --workers 1 $off --json val$3-$1-$4.json > val$3-$1-$4.log 2>&1
}
(
d sense $P/dagger-sense-fine/start 3000 0.15
d sense $P/dagger-sense-fine/start 3050 none
d sense $P/dagger-sense-fine/start 3050 0.15
d sense $P/dagger-sense-fine/start 3050 0.25
d s1 $P/psiren-fine-s1 3000 1.0
d s1 $P/psiren-fine-s1 3050 none
d s952354559 $P/psiren-fine-s952354559 3050 1.0
) &
(
d s2 $P/psiren-fine-s2 3000 1.0
d s2 $P/psiren-fine-s2 3050 none
d s2 $P/psiren-fine-s2 3050 2.0
d s2 $P/psiren-fine-s2 3050 1.5
d s2 $P/psiren-fine-s2 3050 1.0
d s1 $P/psiren-fine-s1 3050 1.0
d s1 $P/psiren-fine-s1 3050 1.5
) &
wait
echo done
