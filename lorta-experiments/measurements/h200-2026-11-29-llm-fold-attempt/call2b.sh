set -u
OUT=${OUT:?}
T=$SECONDS
REF_LIMIT=1 OURS_LIMIT=${OURS_LIMIT:-200} PAPER_LIMIT=${PAPER_LIMIT:-1} OUT=$OUT/fold bash scripts/gpu_fold_call.sh > $OUT/fold.md 2>&1
echo "fold $((SECONDS-T)) s" >> $OUT/stages.txt
OUT=$OUT bash .gpu/call2.sh
tail -12 $OUT/fold.md; tail -4 $OUT/fold/ours-s2p.err
