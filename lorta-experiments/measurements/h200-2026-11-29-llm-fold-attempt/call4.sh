set -u
OUT=${OUT:?}; mkdir -p $OUT/r
export LORTA_KERNEL_CACHE=/tmp/lorta-kernels
M=.gpu/SmolLM2-135M-Instruct.Q4_1.gguf
T=$SECONDS
timeout 190 .gpu/lorta-experiments table3 --preset quick --backend cuda --tasks copa --methods lora-r8,lorta-r8 --model $M --data-dir .gpu/data/superglue --out $OUT/r/table3 --time-steps > $OUT/r/table3.out 2> $OUT/r/table3.err
echo "table3 rc=$? $((SECONDS-T)) s" >> $OUT/r/where.txt
T=$SECONDS
timeout 70 .gpu/lorta-experiments dpo --backend cuda --model $M --data .gpu/data/llm/hh_rlhf/harmless-base_test.jsonl.gz --max-train-pairs 256 --eval-pairs 16 --batch-size 4 --max-steps 25 --eval-every 25 --method lora --rank 8 --targets q,k,v,o --alpha 16 --max-len 512 --max-prompt-len 256 --warmup-steps 0 --time-steps --quiet --out $OUT/r/dpo-lora > /dev/null 2> $OUT/r/dpo.err
echo "dpo rc=$? $((SECONDS-T)) s" >> $OUT/r/where.txt
tar czf $OUT/r.tgz -C $OUT r
cat $OUT/r/where.txt; tail -5 $OUT/r/table3.out; tail -3 $OUT/r/dpo.err
