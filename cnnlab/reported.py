"""What the original experiments (the seeds) reported, for setting our results beside theirs:
the report's reproduction table and scripts/grid_table.py.

Accuracies are on the CIFAR-10 test set, as their write-ups give them. Those experiments also
validated on the test set; the pipeline selects on a validation split and scores the test
split once.
"""

from collections import namedtuple

Reported = namedtuple("Reported", "accuracy condition")

DATASET = "cifar10"  # what they trained on: other datasets' results are not set beside these

SEED_RESULTS = {
    "seed000_cool3": Reported(0.80, "after 100 epochs"),
    "seed001_exp1": Reported(0.6382, ""),
    "seed001_exp2": Reported(0.6981, ""),
    "seed001_exp4": Reported(0.7026, ""),
    "seed002_conv": Reported(0.65, "train 78%"),
    "seed002_deep": Reported(0.70, ""),
    "seed003_tutorial_fixed": Reported(0.7124, "after 15 epochs"),
}

# Where ours and the reported figure differ by more than DIFFERENCE_TO_EXPLAIN: why, from the runs.
DIFFERENCE_TO_EXPLAIN = 0.03
DIFFERENCE_REASONS = {
    "seed000_cool3": (
        "Overfits from epoch 19, its lowest validation loss (0.71): training accuracy climbs from 81 % to "
        "88 % by epoch 100 while validation stays at 74-76 % and validation loss rises to 0.85. The "
        "original validated on the test set, so it trained on all 50,000 official images; ours trains on "
        "45,000 JPEG re-encodings and holds 5,000 out. All three seeds land 4.8-5.5 points below the report."
    ),
    "seed001_exp4": (
        "Still learning when it stops: its training accuracy on augmented images is only 64.2 % after 10 "
        "epochs and still rising, and validation swings between 53 and 63 % from one epoch to the next "
        "(best at its last epoch). With rotation, shifts and flips, 10 epochs are too few here. All five "
        "seeds land 7.2-9.1 points below the report."
    ),
    "seed002_conv": (
        "Overfits harder than the original: training accuracy reaches 84 % (the original reports 78 %) "
        "while validation stays at 59-60 % from epoch 4 on and validation loss rises from epoch 5 on. Nearly "
        "all of its 1.8 M weights sit in one dense layer over the unpooled 30x30x64 map. All five seeds land "
        "6.4-29 points below the report; seed 45 only reached 36.4 %."
    ),
}

# Seed 001's experiment 3 on seed001_exp1 with Adam: test accuracy (%) by (learning rate, batch, epochs).
GRID_LEARNING_RATES = (0.01, 0.001, 0.0001)
GRID_BATCHES_EPOCHS = tuple((batch, epochs) for batch in (32, 64, 128) for epochs in (5, 10, 15))
SEED001_GRID = dict(
    zip(
        [(lr, batch, epochs) for lr in GRID_LEARNING_RATES for batch, epochs in GRID_BATCHES_EPOCHS],
        [10, 10, 35.75, 36.51, 38.56, 46.85, 49.63, 54.24, 39.3]
        + [60.68, 60.76, 62.08, 59.24, 62.72, 64.01, 60.27, 64.03, 62.23]
        + [55.73, 60.44, 62.57, 54.87, 58.24, 61, 50.31, 57.53, 60.01],
    )
)

# Seed 004's study: each family trained with four optimizers on a 5-class flowers set (mixed-size
# JPEGs), compared by best validation accuracy. Not CIFAR-10: which optimizer wins per family,
# and which never learn, compare; the values do not. `accuracy` None: no figure (`condition` says why).
SEED004_FAMILIES = {  # row -> (variant, its vgg16 implementation)
    "AlexNet": ("alexnet", None),
    "VGG16, hand-built": ("vgg16", "hand"),
    "VGG16, keras.applications": ("vgg16", "keras"),
    "GoogLeNet (auxiliary heads)": ("googlenet", None),
    "ResNet": ("resnet", None),
}
SEED004_OPTIMIZERS = ("adam", "adadelta", "adagrad", "sgd")
SEED004_STUDY = {
    ("AlexNet", "adam"): Reported(0.7393, ""),
    ("AlexNet", "adadelta"): Reported(0.6501, ""),
    ("AlexNet", "adagrad"): Reported(0.7277, ""),
    ("AlexNet", "sgd"): Reported(0.7462, ""),
    ("VGG16, hand-built", "adam"): Reported(0.2711, "never learned"),
    ("VGG16, hand-built", "adadelta"): Reported(None, "did not learn"),
    ("VGG16, hand-built", "adagrad"): Reported(0.6161, ""),
    ("VGG16, hand-built", "sgd"): Reported(None, "did not learn"),
    ("VGG16, keras.applications", "adam"): Reported(None, "did not learn"),
    ("VGG16, keras.applications", "adadelta"): Reported(0.6176, ""),
    ("VGG16, keras.applications", "adagrad"): Reported(0.6593, ""),
    ("VGG16, keras.applications", "sgd"): Reported(0.6373, ""),
    ("GoogLeNet (auxiliary heads)", "adadelta"): Reported(0.70, "above"),
    ("GoogLeNet (auxiliary heads)", "sgd"): Reported(0.80, "about"),
}
SEED004_BEST = Reported(0.8225, "flowers_v7 with augmentation")
