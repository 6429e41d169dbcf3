# session 10, call 4 (machine warm from call 3, kernel cache /tmp/lorta-kernels filled by call 3's routed 7B run)
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --methods lora,lorta --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
export LORTA_KERNEL_CACHE=/tmp/lorta-kernels; B=.gpu/lorta-experiments
timeout 80 $B $P7 --matmul-kernel default > $OUT/7b-default.jsonl 2>$OUT/7b-default.log
timeout 60 $B $P7 > $OUT/7b-auto.jsonl 2>$OUT/7b-auto.log
timeout 50 python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16 > $OUT/7b-peft.jsonl 2>$OUT/7b-peft.log
