#!/usr/bin/python3
"""Load a gradguard checkpoint into a PyTorch nn.Sequential.

    /usr/bin/python3 tools/ckpt_to_torch.py runs/fm/checkpoints/step-00004680.h5 [--data test.h5]

The checkpoint stores each layer as /model/layer_NN/weight (out, in) and
/model/layer_NN/bias (out) -- nn.Linear's own layout -- and the root
attributes `layers`, `activation` and `loss`. The network is Linear layers
with the hidden activation between them; the output layer has none (the
loss applies sigmoid/softmax, as BCEWithLogitsLoss / CrossEntropyLoss do).
With --data it evaluates the model on a gradguard dataset file and prints
the loss and accuracy, which match `gradguard eval`.
"""
import argparse

import h5py
import numpy as np
import torch
import torch.nn as nn

ACTIVATIONS = {
    "relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.01), "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "identity": nn.Identity,
}


def _text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def load_sequential(path: str) -> tuple:
    """Returns (model, loss name). The model is float32, in eval mode."""
    with h5py.File(path, "r") as f:
        if _text(f.attrs["format"]) != "gradguard.checkpoint":
            raise ValueError(f"{path}: not a gradguard checkpoint")
        widths = [int(w) for w in f.attrs["layers"]]
        act, loss = _text(f.attrs["activation"]), _text(f.attrs["loss"])
        mods = []
        for l in range(len(widths) - 1):
            lin = nn.Linear(widths[l], widths[l + 1])
            g = f[f"model/layer_{l:02d}"]
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(g["weight"][()]))
                lin.bias.copy_(torch.from_numpy(g["bias"][()]))
            mods.append(lin)
            if l < len(widths) - 2:
                mods.append(ACTIVATIONS[act]())
    return nn.Sequential(*mods).eval(), loss


def evaluate(model, loss: str, data: str) -> tuple:
    with h5py.File(data, "r") as f:
        X = torch.from_numpy(f["X"][()])
        y = f["y"][()]
    with torch.no_grad():
        z = model(X)
        if loss == "softmax_ce":
            t = torch.from_numpy(y.astype(np.int64))
            return nn.functional.cross_entropy(z, t).item(), (z.argmax(1) == t).float().mean().item()
        t = torch.from_numpy(y.astype(np.float32)).reshape(z.shape)
        if loss == "bce":
            acc = ((z > 0) == (t > 0.5)).float().mean().item()
            return nn.functional.binary_cross_entropy_with_logits(z, t).item(), acc
        return nn.functional.mse_loss(z, t).item(), float("nan")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", help="a gradguard dataset file to evaluate on")
    a = ap.parse_args()
    model, loss = load_sequential(a.checkpoint)
    print(model)
    if a.data:
        l, acc = evaluate(model, loss, a.data)
        print(f"loss {l:.6f} accuracy {acc:.4f}")
