# Reference builders for the EfficientNet / MobileNet parity tests: torchvision's models with
# options its builder functions do not expose as keyword arguments.
import torchvision


def build(arch, dropout=None, **kwargs):
    """torchvision.models.<arch>(**kwargs), with the classifier dropout set to `dropout`
    (efficientnet_b* pass their dropout positionally, so it cannot be a keyword there)."""
    model = getattr(torchvision.models, arch)(**kwargs)
    if dropout is not None:
        model.classifier[0].p = dropout
    return model
