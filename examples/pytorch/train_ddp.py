# Trains a character LSTM language model with PyTorch DistributedDataParallel (CPU, gloo; the same
# code runs on many machines, one process each with its RANK) and saves what `rnnkit import` reads: the
# plain state_dict (safetensors.torch.save_file) and the tokenizer JSON. docs/DEPLOY.md runs it:
#     for r in 0 1; do MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 WORLD_SIZE=2 RANK=$r \
#       python3 examples/pytorch/train_ddp.py data/pride-and-prejudice.txt out 20 & done; wait
#     rnnkit import out/state.safetensors --config "$(cat out/config.json)" --tokenizer out/tokenizer.json --out out/model.safetensors
import json
import os
import sys

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel


class CharLM(nn.Module):
    def __init__(self, v, e, h, layers):
        super().__init__()
        self.encoder = nn.Embedding(v, e)
        self.lstm = nn.LSTM(e, h, layers, batch_first=True)
        self.decoder = nn.Linear(h, v)

    def forward(self, x):
        y, _ = self.lstm(self.encoder(x))
        return self.decoder(y)


def main():
    corpus, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    text = open(corpus, encoding="utf-8").read()
    vocab = sorted(set(text))
    stoi = {c: i for i, c in enumerate(vocab)}
    data = torch.tensor([stoi[c] for c in text])
    torch.manual_seed(0)  # the same initial weights on every process
    config = {"task": "language_model", "cell": "lstm", "vocab_size": len(vocab), "embed_dim": 32, "hidden_size": 128,
              "num_layers": 2}
    model = DistributedDataParallel(CharLM(len(vocab), 32, 128, 2))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1 + rank)  # each process reads its own windows
    B, T = 32, 96
    for step in range(steps):
        ix = torch.randint(0, len(data) - T - 1, (B,), generator=g)
        x = torch.stack([data[i:i + T] for i in ix])
        y = torch.stack([data[i + 1:i + T + 1] for i in ix])
        loss = nn.functional.cross_entropy(model(x).reshape(-1, len(vocab)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()  # gradients averaged across processes here
        opt.step()
        if rank == 0 and step % 50 == 0:
            print(f"step {step} loss {loss.item():.3f}", flush=True)
    if rank == 0:
        os.makedirs(out, exist_ok=True)
        # model.module: the plain module inside the DDP wrapper (names without "module.").
        save_file(model.module.state_dict(), os.path.join(out, "state.safetensors"))
        json.dump({"type": "char", "vocab": vocab}, open(os.path.join(out, "tokenizer.json"), "w"))
        json.dump(config, open(os.path.join(out, "config.json"), "w"))
        print(f"saved {out}/state.safetensors, tokenizer.json, config.json; final loss {loss.item():.3f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
