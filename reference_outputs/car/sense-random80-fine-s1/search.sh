#!/bin/bash
cd /work/runs/i28k && . ./env.sh
[ -f sense-random80-fine-s1/summary.json ] || minisense search --init random --sparsity 80 --dataset carracing --data-dir ../i28i/data-v3cap60-fine --budget-minutes 240 --max-steps 72027 --seed 1 --subsample 0.5 --redraw-steps 1000 --out sense-random80-fine-s1 > search-s1.log 2>&1
echo search done
