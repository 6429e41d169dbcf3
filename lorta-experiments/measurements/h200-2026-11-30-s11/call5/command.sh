# call 5b (machine warm, binary and kernel cache from call 5a): PEFT and ours alternated three times
B=.gpu/lorta-experiments; export LORTA_KERNEL_CACHE=/tmp/lorta-kernels
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --methods lora,lorta --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
for i in 1 2 3; do
  timeout 80 python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16 > peft-$i.jsonl
  timeout 80 $B $P7 > ours-$i.jsonl
done
