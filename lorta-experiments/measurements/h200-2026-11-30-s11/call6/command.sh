# call 6 (binary eac772e: profile rows carry host CPU per step), fresh machine
B=.gpu/lorta-experiments; export LORTA_KERNEL_CACHE=/tmp/lorta-kernels
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --methods lora,lorta --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
timeout 150 $B $P7 > ours-cold.jsonl 2> ours-cold.log
for s in 20 60; do /usr/bin/time -f "peft steps=$s wall=%e user=%U sys=%S" python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps $s --warmup 3 --dtype bf16 > peft-$s.jsonl 2> peft-$s.time; done
timeout 80 $B $P7 > ours-warm.jsonl 2> ours-warm.log
