"""Does keras.optimizers.Muon take the steps of airbench94_muon's Muon on a CNN's conv filters?

    python bench/muon_check.py --reference airbench94_muon.py [--steps 5] [--venv DIR] [--pip-args "..."]

--reference is a local copy of airbench94_muon.py at the commit REFERENCE_COMMIT (its sha256 is
checked), for instance:
    curl -o airbench94_muon.py https://raw.githubusercontent.com/KellerJordan/cifar10-airbench/\
f1c599c4af24aca803e3e65a6a7e52a502e09d0e/airbench94_muon.py
Its `zeropower_via_newtonschulz5` and `Muon` run as the file has them, in the PyTorch environment
of bench/airbench_side_by_side.py, with two changes: no `@torch.compile` (one small call on a
CPU), and float32 instead of bfloat16 inside the Newton-Schulz iteration, so that what is
compared with Keras's float32 is the algorithm, not the rounding.

Both sides start from the same conv filter (128 x 64 x 3 x 3, airbench's second block) and take
--steps steps on the same random gradients, at the reference's settings for filters (lr 0.24,
momentum 0.6, Nesterov) given to Keras as `ns_steps=3, weight_decay=0, rms_rate=None`. Keras
gets the filter three ways:
  conv kernel   the 4-D (3, 3, 64, 128) kernel a Conv2D layer holds;
  flattened     the filter as a 2-D (128, 576) variable, the reference's own view of it;
  + weight norm the 2-D variable, rescaled to norm sqrt(128) before each step as the reference
                does (`p.data.mul_(len(p.data)**0.5 / p.data.norm())`).
Prints, per step and way, the distance to the reference's weights relative to how far the
reference has moved from the start (0 = the same steps, 1 = as far off as the whole update).

Found with it (2026-12-05, Keras 3.15.1, torch 2.13.0, 5 steps, on this 2-core CPU):
keras.optimizers.Muon updates a 4-D conv kernel with AdamW, not Muon (Muon is for 2-D variables
only there): 25x the reference's whole update off at every step, AdamW at lr 0.24 moving every
weight by about 0.24. Flattened to 2-D it takes the reference's first step (1e-6 off) and then
drifts, 0.07 off at step 2 and 0.23 at step 5, because it does not renormalize the weights; with
the renormalization added, within 1e-6 at every step. So a port of airbench94_muon needs more
than `keras.optimizers.Muon`: the filters as 2-D matrices and the per-step weight normalization.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]  # the bench's neighbour, then cnnlab

from airbench_side_by_side import torch_python  # noqa: E402

from cnnlab.tensorflow_startup import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

import keras  # noqa: E402

REFERENCE_COMMIT = "f1c599c4af24aca803e3e65a6a7e52a502e09d0e"
REFERENCE_SHA256 = "704e29251a5207d8aed8a35adf13f772ff386b90a712aaddc2a28854385b536e"
FILTER_SHAPE = (128, 64, 3, 3)  # PyTorch's (out, in, height, width)
# airbench94_muon: Muon(filter_params, lr=0.24, momentum=0.6, nesterov=True), 3 Newton-Schulz steps
LEARNING_RATE, MOMENTUM, NS_STEPS = 0.24, 0.6, 3

# Runs in the PyTorch environment: the reference's two definitions, taken from its file by name.
REFERENCE_STEPS = """
import ast, sys, numpy as np, torch
source = open(sys.argv[1]).read()
names = ("zeropower_via_newtonschulz5", "Muon")
wanted = [node for node in ast.parse(source).body if getattr(node, "name", None) in names]
for node in wanted:
    node.decorator_list = []  # change 1: no @torch.compile
code = ast.unparse(ast.Module(body=wanted, type_ignores=[])).replace("G.bfloat16()", "G.float()")  # change 2: float32
namespace = {"torch": torch}
exec(code, namespace)
data = np.load(sys.argv[2])
weight = torch.nn.Parameter(torch.from_numpy(data["weight"]))
optimizer = namespace["Muon"]([weight], lr=float(data["lr"]), momentum=float(data["momentum"]), nesterov=True)
steps = []
for gradient in data["gradients"]:
    weight.grad = torch.from_numpy(gradient)
    optimizer.step()
    steps.append(weight.detach().numpy().copy())
np.save(sys.argv[3], np.stack(steps))
"""


def check_reference(path):
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if digest != REFERENCE_SHA256:
        raise SystemExit(f"error: {path}: sha256 {digest}, expected airbench94_muon.py at {REFERENCE_COMMIT}")


def reference_steps(python, reference, weight, gradients, workdir):
    inputs, outputs = Path(workdir) / "inputs.npz", Path(workdir) / "steps.npy"
    np.savez(inputs, weight=weight, gradients=gradients, lr=LEARNING_RATE, momentum=MOMENTUM)
    subprocess.run([python, "-c", REFERENCE_STEPS, reference, inputs, outputs], check=True)
    return np.load(outputs)


def keras_steps(weight, gradients, to_keras, from_keras, renormalize=False):
    """The weights after each step of keras.optimizers.Muon, in the reference's layout."""
    variable = keras.Variable(to_keras(weight), name="filter")
    optimizer = keras.optimizers.Muon(
        learning_rate=LEARNING_RATE,
        momentum=MOMENTUM,
        nesterov=True,
        ns_steps=NS_STEPS,
        weight_decay=0.0,
        rms_rate=None,
    )
    steps = []
    for gradient in gradients:
        if renormalize:
            value = variable.numpy()
            variable.assign(value * np.sqrt(len(weight)) / np.linalg.norm(value))
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(to_keras(gradient)), variable)])
        steps.append(from_keras(variable.numpy()))
    return np.stack(steps), "adamw" if optimizer._should_use_adamw(variable) else "muon"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="airbench94_muon.py at the pinned commit")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--venv", default=str(Path.home() / ".cache/cnnlab/bench-torch-venv"))
    parser.add_argument("--pip-args", default="", help="extra pip arguments for the PyTorch environment")
    args = parser.parse_args()
    check_reference(args.reference)

    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.05, FILTER_SHAPE).astype(np.float32)
    weight *= np.sqrt(len(weight)) / np.linalg.norm(weight)  # where the reference's normalization puts it
    gradients = rng.normal(0, 1e-3, (args.steps, *FILTER_SHAPE)).astype(np.float32)
    with tempfile.TemporaryDirectory() as workdir:
        reference = reference_steps(torch_python(args.venv, args.pip_args), args.reference, weight, gradients, workdir)

    hwio = (2, 3, 1, 0)  # (out, in, h, w) -> Keras's (h, w, in, out)
    flat = (lambda w: w.reshape(len(w), -1), lambda v: v.reshape(FILTER_SHAPE))
    ways = {
        "conv kernel": keras_steps(weight, gradients, lambda w: w.transpose(hwio), lambda v: v.transpose(3, 2, 0, 1)),
        "flattened": keras_steps(weight, gradients, *flat),
        "+ weight norm": keras_steps(weight, gradients, *flat, renormalize=True),
    }
    moved = np.linalg.norm((reference - weight).reshape(args.steps, -1), axis=1)
    print("step  " + "  ".join(f"{way} ({rule})".rjust(22) for way, (_, rule) in ways.items()))
    for step in range(args.steps):
        offs = [np.linalg.norm(steps[step] - reference[step]) / moved[step] for steps, _ in ways.values()]
        print(f"{step + 1:>4}  " + "  ".join(f"{off:22.2e}" for off in offs))
    summary = {way: float(np.linalg.norm(steps[-1] - reference[-1]) / moved[-1]) for way, (steps, _) in ways.items()}
    print("relative distance to the reference after the last step: " + json.dumps(summary))


if __name__ == "__main__":
    main()
