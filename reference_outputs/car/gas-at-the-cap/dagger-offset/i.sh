#!/bin/bash
cd /work/runs/i28k && . ./env.sh
D=dagger-offset1.5-s952354559
minisense car dagger --data-dir ../i28i/data-v3cap60-fine --out $D --checkpoint ../i28i/psiren-fine-s952354559 --trainer psiren-step4 --epochs-binary 11 --rounds 2 --episodes 8 --seed 0 --logit-offset 0,1.5,0 --workers 1 > dagger-i.log 2>&1 || exit 1
M=$D/round-001
[ -f val3000-i-o1.5.json ] || minisense car drive $M --episodes 50 --seed 3000 --workers 2 --logit-offset 0,1.5,0 --json val3000-i-o1.5.json > val3000-i-o1.5.log 2>&1
[ -f val3050-i-o1.5.json ] || minisense car drive $M --episodes 50 --seed 3050 --workers 2 --logit-offset 0,1.5,0 --json val3050-i-o1.5.json > val3050-i-o1.5.log 2>&1
echo i validation done
