#!/bin/bash
cd /work/runs/i28l && . ./env.sh
[ -f backprop-random80-fine/summary.json ] || minisense search --init random --sparsity 80 --dataset carracing --data-dir ../i28i/data-v3cap60-fine --budget-minutes 60 --seed 0 --backprop --out backprop-random80-fine > backprop.log 2>&1
echo search done
