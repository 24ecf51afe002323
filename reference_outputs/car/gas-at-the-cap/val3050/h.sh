#!/bin/bash
# follow-up (after plan G, not part of it): seed 952354559 on 50 more validation tracks 3050-3099
cd /work/runs/i28j && . ./env.sh
[ -f expert-cap60-s3050.json ] || minisense car expert --episodes 50 --seed 3050 --expert pursuit-v3-cap60 --workers 2 --json expert-cap60-s3050.json > expert-cap60-s3050.log 2>&1
minisense car drive ../i28i/psiren-fine-s952354559 --episodes 50 --seed 3050 --workers 1 --logit-offset 0,2.0,0 --json val3050-s952354559-o2.0.json > val3050-s952354559-o2.0.log 2>&1 &
minisense car drive ../i28i/psiren-fine-s952354559 --episodes 50 --seed 3050 --workers 1 --logit-offset 0,1.5,0 --json val3050-s952354559-o1.5.json > val3050-s952354559-o1.5.log 2>&1
wait
minisense car drive ../i28i/psiren-fine-s952354559 --episodes 50 --seed 3050 --workers 2 --json val3050-s952354559-none.json > val3050-s952354559-none.log 2>&1
echo done
