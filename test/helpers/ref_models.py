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
