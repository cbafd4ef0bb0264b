"""The page's own words, in English, as the catalog knows them (``i18n.messages`` translates
them for the page; a test checks that the page uses no other)."""

from glassnet.i18n import N_

PAGE_WORDS = [
    N_("Inside a neural network"),
    N_("Model"),
    N_("Language"),
    N_("Draw a digit"),
    N_("Draw with the mouse or a finger, or drop a photo of a digit on the square."),
    N_("Clear"),
    N_("Photo…"),
    N_("What the network sees (28×28)"),
    N_("Every layer"),
    N_("Each layer computes z = W·a + b and a = σ(z). Click a neuron to see its numbers."),
    N_("One neuron"),
    N_("Click a neuron in a layer."),
    N_("One training step"),
    N_(
        "Backpropagation: ∂C/∂z at the output layer (case 1), then layer by layer back "
        "(case 2); W ← W − η·∂C/∂W. The model itself is not changed."
    ),
    N_("True label"),
    N_("Learning rate η"),
    N_("The deck's worked example"),
    N_(
        "Three sigmoid layers of two neurons, x = (1, −1): every z and a, and ∂C/∂z after one step."
    ),
    N_("Gradient Descent"),
    N_(
        "w ← w − η × slope. Too small a learning rate crawls, a good one converges, too large "
        "a one diverges."
    ),
    N_("Curve"),
    N_("{p} sure"),
    N_("the first {n} feature maps"),
    N_("filter"),
    N_("neuron"),
    N_("layer"),
    N_("at row {r}, column {c}, where it answers most"),
    N_("{n} terms; the largest:"),
    N_("Draw a digit first."),
    N_("finite differences"),
    N_("its backward pass"),
    N_(
        "✓: backpropagation in float64 agrees with finite differences to a relative error of "
        "at most {tolerance}."
    ),
    N_(
        "C ≈ 0: the network already gives {label} almost all of its probability, so every "
        "gradient and the update are tiny ({dtype} may not even change W). The checks still "
        "hold. "
    ),
    N_("Try label {label}, its second choice"),
    N_("training step"),
    N_(
        "This model reads {side}×{side} images: a drawn digit loses most of its shape at that "
        "size, so expect mistakes. A model trained on MNIST (glassnet train) reads 28×28."
    ),
    N_("After the step: {digit} ({p} sure); the true label {label} now has {q}."),
    N_("a = σ(z) in each circle; W on the edges; y = ({y})"),
    N_("C = {C} before the step, {C_new} after it (η = {eta})."),
    N_("Converges in {n} steps."),
    N_("Diverges: each step overshoots further."),
    N_("Still crawling after {n} steps."),
    N_("No model here yet: train one below, or with `glassnet train`."),
    N_(
        "The photo is {size} MB; the page takes images up to {limit} MB. Crop it, or save it "
        "smaller."
    ),
    N_("the weight that moves most"),
    N_("output layer"),
    N_("A short training run"),
    N_(
        "The chosen model's layers from fresh weights, trained with Adam on MNIST images; the "
        "loss and the accuracy as it learns. The trained model then appears among the models."
    ),
    N_("Images"),
    N_("Epochs"),
    N_("Train"),
    N_("loss"),
    N_("accuracy"),
    N_("Epoch {epoch}: loss {loss}, accuracy {accuracy}"),
    N_("Done: {accuracy} right on 2,000 test images. Draw on it: it is now the model “{model}”."),
]
