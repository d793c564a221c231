# Reference PyTorch models that torchvision does not ship, for the parity oracle (tv_oracle.py,
# "builder": "ref_models.<function>", with PYTHONPATH=test/helpers). Each function takes the
# oracle case's kwargs and returns an nn.Module whose state-dict names match convkit's model.
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock, conv3x3


# ---- CIFAR ResNets (He et al. 2015, sec. 4.2), convkit's src/models/cifar_resnet.ts ---------------

class PadShortcut(nn.Module):
    """Option A: subsample by the stride and zero-pad the new channels, half on each side."""

    def __init__(self, in_planes, out_planes, stride):
        super().__init__()
        self.in_planes, self.out_planes, self.stride = in_planes, out_planes, stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        extra = self.out_planes - self.in_planes
        front = extra // 2
        return F.pad(x, (0, 0, 0, 0, front, extra - front))


class CifarResNet(nn.Module):
    """3x3 conv stem of 16, three stages of n BasicBlocks at 16/32/64 channels, pool, fc: 6n+2 layers."""

    def __init__(self, depth, num_classes=10, in_channels=3, zero_init_residual=False):
        super().__init__()
        assert (depth - 2) % 6 == 0, depth
        n = (depth - 2) // 6
        self.inplanes = 16
        self.conv1 = conv3x3(in_channels, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, n, 1)
        self.layer2 = self._make_layer(32, n, 2)
        self.layer3 = self._make_layer(64, n, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        # torchvision's ResNet initialisation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = PadShortcut(self.inplanes, planes, stride)
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def cifar_resnet(depth, num_classes=10, in_channels=3, zero_init_residual=False):
    return CifarResNet(depth, num_classes, in_channels, zero_init_residual)


def cifar_resnet20(**kw): return CifarResNet(20, **kw)
def cifar_resnet32(**kw): return CifarResNet(32, **kw)
def cifar_resnet44(**kw): return CifarResNet(44, **kw)
def cifar_resnet56(**kw): return CifarResNet(56, **kw)
def cifar_resnet110(**kw): return CifarResNet(110, **kw)


# ---- torchvision models with a different number of input channels ------------------------------

def tv_in_channels(arch, in_channels=1, **kwargs):
    """A torchvision model whose stem conv takes in_channels (a grayscale stem for in_channels=1)."""
    m = getattr(torchvision.models, arch)(**kwargs)
    old = m.conv1
    # assigning to an existing attribute keeps its place in the state dict
    m.conv1 = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=old.bias is not None)
    return m


# ---- Airbench (Jordan 2024, arXiv:2404.00498, airbench94.py), convkit's src/models/airbench.ts ----

class ConvGroup(nn.Module):
    """conv3x3 - maxpool2 - BN - GELU - conv3x3 - BN - GELU, as airbench's ConvGroup; with residual,
    airbench96's: a third conv3x3 - BN whose output is added to the first GELU's before the last."""

    def __init__(self, cin, cout, momentum, residual=False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = nn.BatchNorm2d(cout, momentum=momentum)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(cout, momentum=momentum)
        if residual:
            self.conv3 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.norm3 = nn.BatchNorm2d(cout, momentum=momentum)
        self.residual = residual
        self.activ = nn.GELU()

    def forward(self, x):
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        y = self.activ(self.norm2(self.conv2(x)))
        return self.activ(self.norm3(self.conv3(y)) + x) if self.residual else y


class Airbench(nn.Module):
    """A frozen 2x2 whitening conv (2*C*4 filters), GELU, three ConvGroups, maxpool 3, bias-free fc, x 1/9."""

    def __init__(self, widths=(64, 256, 256), num_classes=10, in_channels=3, bn_momentum=0.4, residual=False):
        super().__init__()
        d = in_channels * 4
        self.whiten = nn.Conv2d(in_channels, 2 * d, 2, padding=0, bias=False)
        self.whiten.weight.requires_grad = False
        self.act = nn.GELU()
        self.block1 = ConvGroup(2 * d, widths[0], bn_momentum, residual)
        self.block2 = ConvGroup(widths[0], widths[1], bn_momentum, residual)
        self.block3 = ConvGroup(widths[1], widths[2], bn_momentum, residual)
        self.pool = nn.MaxPool2d(3)
        self.head = nn.Linear(widths[2], num_classes, bias=False)

    def init_whitening(self, images, eps=5e-4):
        """airbench's init_whitening_conv: eigenvectors of the patches' second moment over sqrt(eigenvalue),
        then their negatives; each eigenvector's sign is fixed (largest component positive) so both sides agree."""
        c = images.shape[1]
        patches = images.unfold(2, 2, 1).unfold(3, 2, 1).transpose(1, 3).reshape(-1, c, 2, 2).double()
        flat = patches.reshape(len(patches), -1)
        values, vectors = torch.linalg.eigh(flat.T @ flat / len(flat))
        values, vectors = values.flip(0), vectors.T.flip(0)
        vectors = vectors * torch.sign(vectors.gather(1, vectors.abs().argmax(1, keepdim=True)))
        filters = (vectors / torch.sqrt(values + eps)[:, None]).reshape(-1, c, 2, 2).float()
        with torch.no_grad():
            self.whiten.weight.copy_(torch.cat([filters, -filters]))

    def forward(self, x):
        x = self.block3(self.block2(self.block1(self.act(self.whiten(x)))))
        return self.head(self.pool(x).flatten(1)) / 9


def airbench94(**kw):
    return Airbench(widths=(64, 256, 256), **kw)


def airbench96(**kw):
    return Airbench(widths=(128, 384, 512), residual=True, **kw)


def airbench_s(**kw):
    return Airbench(widths=(32, 64, 128), **kw)


def airbench_m(**kw):
    return Airbench(widths=(32, 64, 256), **kw)


def whitening_images(n=16, c=1, h=12, w=12):
    """Deterministic images both sides can make: sin(0.37 i) + cos(0.11 i) * (i mod 7) over the flat index i."""
    i = torch.arange(n * c * h * w, dtype=torch.float64)
    return (torch.sin(0.37 * i) + torch.cos(0.11 * i) * (i % 7)).reshape(n, c, h, w).float()


def airbench_whitened(in_channels=1, **kw):
    """airbench_s with its whitening filters computed from whitening_images()."""
    m = airbench_s(in_channels=in_channels, **kw)
    m.init_whitening(whitening_images(c=in_channels))
    return m
