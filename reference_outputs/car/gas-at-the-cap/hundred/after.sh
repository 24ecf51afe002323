#!/bin/bash
# after h.sh: copy the validation drives beside hundred.py, then drive each chosen (network, o)
# whose test drive does not exist yet; after s1.sh: the second SENSE seed's drives.
# (as run; its copy loop also caught plan I's val30*-i-o1.5.json under garbled names, deleted by
# hand: plan I's drives are in ../dagger-offset/ as val30*-round1-o1.5.json)
cd /work/runs/i28k && . ./env.sh
H=/work/main/reference_outputs/car/gas-at-the-cap/hundred
P=../i28i
while pgrep -f "i28k/h.sh|./h.sh" > /dev/null; do sleep 30; done
for f in val30*-*.json; do
  t=$(echo $f | sed -E 's/-(none|[0-9.]+)\.json$//'); o=$(echo $f | sed -E 's/.*-(none|[0-9.]+)\.json$/\1/')
  [ "$o" = none ] && tag=none || tag=o$o
  cp $f $H/$t-$tag.json
done
(cd $H && python3 hundred.py) > choice.txt
cat choice.txt
declare -A NET=([s952354559]=$P/psiren-fine-s952354559 [s1]=$P/psiren-fine-s1 [s2]=$P/psiren-fine-s2 [sense]=$P/dagger-sense-fine/start)
sed -n '/^test tracks/,$p' choice.txt | grep "not driven" | while read net o rest; do
  o=${o%:}; off=""; tag=none
  [ "$o" != none ] && off="--logit-offset 0,$o,0" && tag=o$o
  echo "test drive $net $tag"
  minisense car drive ${NET[$net]} --episodes 100 --seed 1000 --workers 2 $off --json drive-$net-$tag.json > drive-$net-$tag.log 2>&1
  cp drive-$net-$tag.json $H/
done
(cd $H && python3 hundred.py) > choice-final.txt
echo tests done
while pgrep -f "s1.sh" > /dev/null; do sleep 30; done
S=sense-random80-fine-s1/best
minisense car drive $S --episodes 50 --seed 3000 --workers 2 --json val3000-sense-s1.json > val3000-sense-s1.log 2>&1
minisense car drive $S --episodes 100 --seed 1000 --workers 2 --json drive-sense-s1.json > drive-sense-s1.log 2>&1
echo all done
