"""What every case is, for the peers: the data files, batch sizes and hyper-parameters of each workload.
The nnc side of the same facts is bench/workloads/*.nn and the CASES table in bench/driver.py."""

# case name -> (workload, kind, batch): kind is one of
#   train        one optimizer step on `batch` rows of the workload's data (the next of `batches()` each call)
#   fit          one epoch over the workload's training data in shuffled batches of `batch`
#   predict      one forward pass on the first `batch` rows (inference mode)
#   predict_all  inference over every row of the workload's test data (in chunks; see each peer)
CASES = {
    "W1.sgd.train": ("w1_sgd", "train", 100_000),
    "W1.adam.train": ("w1_adam", "train", 100_000),
    "W2.full.train": ("w2", "train", 1000),
    "W2.b32.train": ("w2", "train", 32),
    "W2.predict1": ("w2", "predict", 1),
    "W3.train": ("w3", "train", 1000),
    "W3b.train": ("w3b", "train", 1000),
    "W4.train": ("w4", "train", 32),
    "W4.fit": ("w4", "fit", 32),
    "W4.predict": ("w4", "predict_all", 32),
    "W5.train": ("w5", "train", 32),
    "W5.epoch": ("w5", "fit", 32),
    "W5.predict": ("w5", "predict_all", 32),
    "W5.predict1": ("w5", "predict", 1),
}

# A train-step case smaller than the data set cycles through this many consecutive, distinct batches (the first
# CYCLE × batch rows), one per call, as training does: a step on the same batch again and again runs at a
# different speed in some frameworks (PyTorch eager's CNN step ran 5.5 or 13 ms from one process to the next).
CYCLE = 50


def batches(n_rows, batch):
    """the (start, stop) row ranges a train case cycles through"""
    k = max(1, min(n_rows // batch, CYCLE))
    return [(i * batch, (i + 1) * batch) for i in range(k)]


# workload -> (train x, train y, test x) data names in bench/.data
DATA = {
    "w1_sgd": ("w1_x", "w1_y", "w1_x"),
    "w1_adam": ("w1_x", "w1_y", "w1_x"),
    "w2": ("w2_x", "w2_y", "w2_x"),
    "w3": ("w3_x", "w3_y", "w3_x"),
    "w3b": ("w3_x", "w3_y", "w3_x"),
    "w4": ("w4_x", "w4_y", "w4_x"),
    "w5": ("fmnist_train_x", "fmnist_train_y", "fmnist_test_x"),
}

# optimizer of each workload: (name, lr); Adam uses beta1 0.9, beta2 0.999, epsilon 1e-7 (nnc's and Keras's)
OPT = {
    "w1_sgd": ("sgd", 0.1),
    "w1_adam": ("adam", 0.01),
    "w2": ("sgd", 0.01),
    "w3": ("adam", 0.001),
    "w3b": ("adam", 0.001),
    "w4": ("adam", 0.001),
    "w5": ("adam", 0.001),
}
EPS = 1e-7

# loss of each workload: mse, or sparse categorical cross-entropy on probabilities (sce) / on logits (sce_logits)
LOSS = {"w1_sgd": "mse", "w1_adam": "mse", "w2": "mse", "w3": "sce", "w3b": "sce_logits", "w4": "mse", "w5": "sce"}

# the chunks the peers predict a whole data set in, where the user chooses: W4's 1000 rows in one call (a small
# MLP: users pass the whole array), the 10k Fashion-MNIST test images in batches of 32 (the training batch; a
# test DataLoader of 32; larger chunks were slower for PyTorch here, their activations leaving the cache).
# Keras's model.predict keeps its own default (32); nnc predicts at its compiled batch (32).
PREDICT_CHUNK = {"w4": 1000, "w5": 32}

def arch(w):
    """Layer list: ("dense", units, act) | ("bn",) | ("dropout", rate) | ("conv", filters, k, act) | ("pool", 2)
    | ("flatten",); act in none/relu/softmax. W3b's blocks are dense -> batchnorm -> relu -> dropout."""
    if w.startswith("w1"):
        return 1, [("dense", 1, "none")]
    if w == "w2":
        return 10, [("dense", 50, "relu"), ("dense", 1, "none")]
    if w == "w3":
        return 100, [("dense", 128, "relu"), ("dense", 10, "softmax")]
    if w == "w3b":
        return 100, [("dense", 256, "none"), ("bn",), ("relu",), ("dropout", 0.3),
                     ("dense", 128, "none"), ("bn",), ("relu",), ("dropout", 0.3), ("dense", 10, "none")]
    if w == "w4":
        return 10, [("dense", 64, "relu"), ("dense", 1, "none")]
    if w == "w5":
        return (28, 28, 1), [("conv", 32, 3, "relu"), ("pool", 2), ("flatten",), ("dense", 10, "softmax")]
    raise KeyError(w)
