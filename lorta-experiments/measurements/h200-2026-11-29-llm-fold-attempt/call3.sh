set -u
OUT=${OUT:?}
mkdir -p $OUT/r
P=$(dirname "$(find / -xdev -name ours-s2p.err -newer .gpu/call1.sh 2>/dev/null | head -1)")
echo "prev fold dir: $P" > $OUT/r/where.txt
[ -n "$P" ] && tar czf $OUT/prev.tgz -C "$P/.." --exclude='kc.part.*' . 2>>$OUT/r/where.txt
mkdir -p /tmp/kc; export CUDA_CACHE_PATH=/tmp/kc/nv CUDA_CACHE_MAXSIZE=4294967296
T=$SECONDS
timeout 150 .gpu/lorta-experiments fold --profile --preset gpu --backend cuda --dtype bf16 --length 256 --blocks 12 --dims 1024,128,32 \
  --profile-steps 8 --warmup 1 --kernel-cache /tmp/kc/cubecl --pair-update s2p --methods lora:8,lorta:8 --out $OUT/r/fold > $OUT/r/fold.jsonl 2> $OUT/r/fold.err
echo "fold rc=$? $((SECONDS-T)) s" >> $OUT/r/where.txt
python3 -m pip install --no-deps -q .gpu/wheels/gguf-*.whl > $OUT/r/pip.log 2>&1
python3 -c "import gguf; print('gguf ok')" >> $OUT/r/where.txt 2>&1
PYTHONUNBUFFERED=1 timeout 90 python3 scripts/table3_copa_reference.py --model .gpu/SmolLM2-135M-Instruct.Q4_1.gguf --copa-dir .gpu/data/superglue/COPA \
    --method lora --rank 8 --alpha 16 --targets q_proj,v_proj --steps 40 --warmup 5 --device cuda --eval > $OUT/r/peft.jsonl 2> $OUT/r/peft.err
echo "peft rc=$?" >> $OUT/r/where.txt
tar czf $OUT/r.tgz -C $OUT r
cat $OUT/r/where.txt; tail -3 $OUT/r/fold.err; cat $OUT/r/fold.jsonl | cut -c1-300; tail -2 $OUT/r/peft.jsonl
