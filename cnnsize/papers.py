"""Each bundled architecture's complexity as its paper states it, against cnnsize's figure.

PAPERS quotes every figure with its paper and table, and says which variant (spec variables, input) and
which counting convention reproduce it; ``table()`` renders the README's table from it (a test keeps the
README in step and checks every verdict). Papers' "FLOPs" for these networks are multiply-adds: cnnsize's
MACs. A figure is reproduced when cnnsize's, rounded as the paper rounds it, is the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class Paper:
    spec: str
    quantity: str  # "macs" or "params"
    figure: float  # as the paper states it, in ``scale`` units
    scale: float
    decimals: int  # the precision the paper states
    source: str
    quote: str
    variables: dict = field(default_factory=dict)
    variant: str = "as bundled"
    expect: bool = True  # whether cnnsize reproduces it (checked by the tests)
    why: str = ""  # where it does not: by how much and why
    seen: str = ""  # a page where the figure's text was read (the paper itself or a table quoting it); "" if none


_MOBILENET_V2_BOOK = ("https://packtpub.com/en-hu/product/hands-on-deep-learning-architectures-with-python-"
                      "9781788998086/chapter/mobile-neural-networks-and-cnns-7/section/comparing-the-two-mobilenets-"
                      "ch07lvl1sec38 (a book's table: \"MobileNet V2 | 3.4M | 300M\")")
RESNET = "He et al. 2016, Deep Residual Learning for Image Recognition, Table 1"
PAPERS = [
    Paper("resnet18", "macs", 1.8, 1e9, 1, RESNET, "FLOPs 1.8×10⁹"),
    Paper("resnet34", "macs", 3.6, 1e9, 1, RESNET, "FLOPs 3.6×10⁹", expect=False,
          why="the paper's figure looks truncated (3.66 → 3.6), not rounded"),
    Paper("resnet50", "macs", 3.8, 1e9, 1, RESNET, "FLOPs 3.8×10⁹", {"v1": True},
          "v1: the stride on the first 1×1 (`v1: true`)", expect=False,
          why="torchvision's v1.5 is 4.09 G; the paper's figure looks truncated (3.86 → 3.8), while "
              "ResNet-101 and -152 round"),
    Paper("resnet101", "macs", 7.6, 1e9, 1, RESNET, "FLOPs 7.6×10⁹", {"v1": True},
          "v1: the stride on the first 1×1 (`v1: true`)"),
    Paper("resnet152", "macs", 11.3, 1e9, 1, RESNET, "FLOPs 11.3×10⁹", {"v1": True},
          "v1: the stride on the first 1×1 (`v1: true`)"),
    Paper("resnet50", "macs", 4.1, 1e9, 1, "Xie et al. 2017, Aggregated Residual Transformations (ResNeXt), "
          "Table 1 (ResNet-50 baseline)", "FLOPs 4.1×10⁹", variant="v1.5, as torchvision (stride on the 3×3)"),
    Paper("resnext50_32x4d", "macs", 4.2, 1e9, 1, "Xie et al. 2017, Aggregated Residual Transformations (ResNeXt), "
          "Table 1", "ResNeXt-50 (32×4d): FLOPs 4.2×10⁹"),
    Paper("resnext50_32x4d", "params", 25.0, 1e6, 1, "Xie et al. 2017, ResNeXt, Table 1", "params 25.0×10⁶"),
    Paper("googlenet", "macs", 1.5, 1e9, 1, "Szegedy et al. 2015, Going Deeper with Convolutions, section 1",
          "a computational budget of 1.5 billion multiply-adds at inference time"),
    Paper("mobilenet_v1", "macs", 569, 1e6, 0, "Howard et al. 2017, MobileNets, Table 8 (1.0 MobileNet-224)",
          "569 million mult-adds"),
    Paper("mobilenet_v1", "params", 4.2, 1e6, 1, "Howard et al. 2017, MobileNets, Table 8", "4.2 million parameters",
          seen="https://paperswithcode.com/paper/mobilenets-efficient-convolutional-neural (\"MobileNet-224 ×1.0 "
               "Number of params 4.2M\")"),
    Paper("mobilenet_v2", "macs", 300, 1e6, 0, "Sandler et al. 2018, MobileNetV2, Table 4", "MAdds 300M",
          expect=False, why="the paper gives a round figure",
          seen=_MOBILENET_V2_BOOK),
    Paper("mobilenet_v2", "params", 3.4, 1e6, 1, "Sandler et al. 2018, MobileNetV2, Table 4", "Params 3.4M",
          expect=False, why="conventions change no parameter count; the cause is not established",
          seen=_MOBILENET_V2_BOOK),
    Paper("mobilenet_v3_large", "macs", 219, 1e6, 0, "Howard et al. 2019, Searching for MobileNetV3, Table 3 "
          "(Large 1.0)", "MAdds 219M", expect=False,
          why="torchvision's network; bias adds fall short and norms or activations overshoot"),
    Paper("mobilenet_v3_large", "params", 5.4, 1e6, 1, "Howard et al. 2019, MobileNetV3, Table 3", "Params 5.4M",
          expect=False, why="the cause is not established"),
    Paper("shufflenet_v2_x1_0", "macs", 146, 1e6, 0, "Ma et al. 2018, ShuffleNet V2, Table 5 (1×)", "FLOPs 146M",
          expect=False, why="torchvision's network; bias adds fall short and norms overshoot"),
    Paper("efficientnet_b0", "macs", 0.39, 1e9, 2, "Tan and Le 2019, EfficientNet, Table 2", "FLOPs 0.39B"),
    Paper("efficientnet_b0", "params", 5.3, 1e6, 1, "Tan and Le 2019, EfficientNet, Table 2", "#Params 5.3M"),
    Paper("squeezenet1_0", "params", 1248424, 1, 0, "Iandola et al. 2016, SqueezeNet, Table 1",
          "# parameter before pruning: 1,248,424"),
    Paper("vgg11", "params", 133, 1e6, 0, "Simonyan and Zisserman 2015, Very Deep Convolutional Networks, Table 2",
          "A: 133 (millions of parameters)"),
    Paper("vgg13", "params", 133, 1e6, 0, "Simonyan and Zisserman 2015, Table 2", "B: 133"),
    Paper("vgg16", "params", 138, 1e6, 0, "Simonyan and Zisserman 2015, Table 2", "D: 138"),
    Paper("vgg19", "params", 144, 1e6, 0, "Simonyan and Zisserman 2015, Table 2", "E: 144"),
    Paper("alexnet_2012", "params", 60, 1e6, 0, "Krizhevsky et al. 2012, ImageNet Classification with Deep CNNs, "
          "section 1", "60 million parameters", expect=False,
          why="the paper gives a round figure"),
    Paper("convnext_tiny", "macs", 4.5, 1e9, 1, "Liu et al. 2022, A ConvNet for the 2020s, Table 1 (ConvNeXt-T, "
          "224²)", "FLOPs 4.5G", seen="https://dev.to/tildalice/vit-vs-swin-vs-convnext-imagenet-accuracy-at-45g-flops"
          "-1m9i (\"ConvNeXt-T hits 82.1% ImageNet top-1 accuracy at 4.5G FLOPs\", from the paper)"),
    Paper("vit_b_16", "macs", 17.6, 1e9, 1, "Touvron et al. 2021, DeiT (DeiT-B: ViT-B/16 at 224²), as tabulated "
          "by later comparisons", "FLOPs 17.6G",
          seen="https://pmc.ncbi.nlm.nih.gov/articles/PMC9278509/table/tbl5 (\"DeiT-B/16 81.8 86 17.6\")"),
    Paper("vit_b_16", "params", 86, 1e6, 0, "Touvron et al. 2021, DeiT, abstract", "Our reference vision "
          "transformer (86M parameters)", expect=False, why="86.57 M: the paper's figure looks truncated, not rounded",
          seen="https://ar5iv.labs.arxiv.org/html/2012.12877"),
]


@lru_cache(maxsize=64)
def _analysis(spec: str, variables: tuple):
    from . import analyze

    return analyze(spec, variables=dict(variables) or None)


def value(paper: Paper, count: str | None = None):
    """cnnsize's figure for a paper entry (under a counting convention), in the paper's units (before rounding)."""
    from .conventions import counted

    a = _analysis(paper.spec, tuple(sorted(paper.variables.items())))
    return (sum(counted(a, count), 0) if count else a.totals[paper.quantity]) / paper.scale


def reproduces(paper: Paper, figure: float | None = None) -> bool:
    figure = value(paper) if figure is None else figure
    return round(figure, paper.decimals) == paper.figure


def nearest_convention(paper: Paper) -> tuple[str, float]:
    """The multiply-add convention whose total comes nearest the paper's figure (for MAC figures)."""
    from .conventions import CONVENTIONS

    found = [(name, value(paper, name)) for name, c in CONVENTIONS.items() if c.unit in ("MACs", "mult-adds", "flops")]
    return min(found, key=lambda t: abs(t[1] - paper.figure))


def reproducing_conventions(paper: Paper) -> list[str]:
    """The multiply-add conventions (other than cnnsize's own) under which the paper's figure is reproduced."""
    from .conventions import CONVENTIONS, DEFAULT

    if paper.quantity != "macs":
        return []
    return [name for name, c in CONVENTIONS.items() if name != DEFAULT and c.unit in ("MACs", "mult-adds", "flops")
            and reproduces(paper, value(paper, name))]


def verdict(paper: Paper, figure: float | None = None) -> str:
    figure = value(paper) if figure is None else figure
    others = reproducing_conventions(paper)
    also = f" (so do {', '.join(others)})" if others else ""
    if reproduces(paper, figure):
        return f"yes{also}"
    text = f"no: {(figure / paper.figure - 1) * 100:+.1f}%"
    if others:
        text += f"; reproduced under {', '.join(others)}"
    elif paper.quantity == "macs":
        name, v = nearest_convention(paper)
        text += f"; nearest convention {name}, {v:,.{paper.decimals + 2}f} ({(v / paper.figure - 1) * 100:+.1f}%)"
    return f"{text}; {paper.why}"


def table() -> str:
    """The README's papers table (markdown)."""
    lines = ["| Architecture | The paper says | Source | cnnsize | Variant | Reproduced? | Text read at |",
             "|---|---|---|---:|---|---|---|"]
    for p in PAPERS:
        v = value(p)
        unit = {1e9: " G", 1e6: " M", 1: ""}[p.scale]
        digits = max(p.decimals, 2) if p.scale != 1 else 0
        shown = f"{v:,.{digits}f}{unit} {'MACs' if p.quantity == 'macs' else 'params'}"
        lines.append(f"| {p.spec} | {p.quote} | {p.source} | {shown} | {p.variant} | {verdict(p, v)} | "
                     f"{p.seen or '–'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(), end="")
