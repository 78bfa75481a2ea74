"""Each bundled architecture's complexity as its paper states it, against cnnsize's figure.

PAPERS quotes every figure with its paper and table, and says which variant (spec variables, input) and
which counting convention reproduce it; ``table()`` renders docs/conventions.md's table from it (a test keeps the
page in step and checks every verdict). Papers' "FLOPs" for these networks are multiply-adds: cnnsize's
MACs. A figure is reproduced when cnnsize's, rounded as the paper rounds it, is the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from ..api import analyze
from ..passes.conventions import CONVENTIONS, DEFAULT, counted


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
    # where the figure's text was checked: the table or sentence read and the address, or "not read in the paper
    # itself: ..." and the page that quotes it (tests/test_papers.py requires every row to say)
    seen: str = ""


# Where each figure's text was read (checked in November 2026). "GitHub transcriptions": copies of the paper's text
# (markdown of the PDF or of its arXiv HTML) in public GitHub repositories, found by exact-text search of an index that
# gives no repository for a hit, so no address can be kept for them; where a page with an address quotes the same
# text, it is named.
_TRANSCRIBED = "read in GitHub transcriptions of the paper (exact-text search; the index gives no address)"
_RESNET_TABLE = ('Table 1 row "FLOPs 1.8×10^9 3.6×10^9 3.8×10^9 7.6×10^9 11.3×10^9", ' + _TRANSCRIBED)
_RESNET_TEXT = ('; section 4.1 "the 152-layer ResNet (11.3 billion FLOPs) still has lower complexity than '
                'VGG-16/19 nets (15.3/19.6 billion FLOPs)", quoted at '
                "https://stats.stackexchange.com/questions/291843")
_RESNEXT_TABLE = ('Table 1 rows "# params. 25.5×10^6 25.0×10^6" and "FLOPs 4.1×10^9 4.2×10^9", and section 3.1 '
                  '"FLOPs (floating-point operations, in # of multiply-adds)", ' + _TRANSCRIBED)
_MOBILENET_V1 = ('Table 8 row "1.0 MobileNet-224 | 70.6% | 569 | 4.2" (the same in Tables 6 and 7) in a transcription '
                 "of https://ar5iv.labs.arxiv.org/html/1704.04861; the authors' release lists MobileNet_v1_1.0_224 at "
                 "569 million MACs, 4.24 million parameters: "
                 "https://github.com/tensorflow/models/blob/master/research/slim/nets/mobilenet_v1.md")
_SLIM_MOBILENET = "https://github.com/tensorflow/models/blob/master/research/slim/nets/mobilenet/README.md"
_MOBILENET_V2 = ('Table 4 row "MobileNetV2 | 72.0 | 3.4M | 300M | 75ms" (caption: "we count the total number of '
                 'Multiply-Adds"), ' + _TRANSCRIBED + "; the authors' release lists mobilenet_v2_1.0_224 at 300 "
                 "million MACs, 3.47 million parameters: " + _SLIM_MOBILENET)
_MOBILENET_V3 = ('Table 3 row "V3-Large 1.0 | 75.2 | 219 | 5.4M", ' + _TRANSCRIBED)
_SHUFFLENET = ('Table 5 rows "FLOPs 41M 146M 299M 591M" and "# of Weights 1.4M 2.3M 3.5M 7.4M" (0.5×, 1×, 1.5×, 2×), '
               + _TRANSCRIBED)
_CONVNEXT_READ = "read in a Japanese translation of the paper on GitHub (exact-text search; the index gives no address)"
_CONVNEXT_README = ("; the authors' repository lists \"ConvNeXt-T | 224x224 | 82.1 | 28M | 4.5G\": "
                    "https://github.com/facebookresearch/ConvNeXt/blob/main/README.md")
_CONVNEXT_T1 = 'Table 1 row "ConvNeXt-T | 224² | 29M | 4.5G | 774.7 | 82.1", ' + _CONVNEXT_READ + _CONVNEXT_README
RESNET = "He et al. 2016, Deep Residual Learning for Image Recognition, Table 1"
PAPERS = [
    Paper("resnet18", "macs", 1.8, 1e9, 1, RESNET, "FLOPs 1.8×10⁹", seen=_RESNET_TABLE),
    Paper("resnet34", "macs", 3.6, 1e9, 1, RESNET, "FLOPs 3.6×10⁹", expect=False,
          why="the paper's figure looks truncated (3.66 → 3.6), not rounded", seen=_RESNET_TABLE),
    Paper("resnet50", "macs", 3.8, 1e9, 1, RESNET + " and section 4.1", "FLOPs 3.8×10⁹", {"v1": True},
          "v1: the stride on the first 1×1 (`v1: true`)", expect=False,
          why="torchvision's v1.5 is 4.09 G; the paper's figure looks truncated (3.86 → 3.8), while "
              "ResNet-101 and -152 round",
          seen=_RESNET_TABLE + '; section 4.1 "This model has 3.8 billion FLOPs", the same'),
    Paper("resnet101", "macs", 7.6, 1e9, 1, RESNET, "FLOPs 7.6×10⁹", {"v1": True},
          "v1: the stride on the first 1×1 (`v1: true`)", seen=_RESNET_TABLE),
    Paper("resnet152", "macs", 11.3, 1e9, 1, RESNET, "FLOPs 11.3×10⁹", {"v1": True},
          "v1: the stride on the first 1×1 (`v1: true`)", seen=_RESNET_TABLE + _RESNET_TEXT),
    Paper("vgg16", "macs", 15.3, 1e9, 1, "He et al. 2016, ResNet paper, section 4.1 (also Howard et al. 2017, "
          "MobileNets, Table 8: VGG 16, 15300 million mult-adds)", "VGG-16/19 nets (15.3/19.6 billion FLOPs)",
          expect=False, why="cnnsize's 15.47 G is 15.35 G of convolutions and 0.12 G of fully connected layers; the "
                            "papers' 15.3 G is neither rounded (15.5) nor the convolutions alone rounded for VGG-19 "
                            "(19.51 → 19.5, the paper says 19.6): the cause is not established",
          seen=_RESNET_TEXT[2:] + '; MobileNets Table 8 row "VGG 16 | 71.5% | 15300 | 138" in a transcription of '
                                  "https://ar5iv.labs.arxiv.org/html/1704.04861"),
    Paper("vgg19", "macs", 19.6, 1e9, 1, "He et al. 2016, ResNet paper, section 4.1",
          "VGG-16/19 nets (15.3/19.6 billion FLOPs)", seen=_RESNET_TEXT[2:]),
    Paper("resnet50", "macs", 4.1, 1e9, 1, "Xie et al. 2017, Aggregated Residual Transformations (ResNeXt), "
          "Table 1 (ResNet-50 baseline)", "FLOPs 4.1×10⁹", variant="v1.5, as torchvision (stride on the 3×3)",
          seen=_RESNEXT_TABLE),
    Paper("resnet50", "params", 25.5, 1e6, 1, "Xie et al. 2017, ResNeXt, Table 1 (ResNet-50 baseline)",
          "# params. 25.5×10⁶", expect=False,
          why="25.56 M: the paper's figure looks truncated, not rounded (v1 and v1.5 have the same parameters)",
          seen=_RESNEXT_TABLE),
    Paper("resnext50_32x4d", "macs", 4.2, 1e9, 1, "Xie et al. 2017, Aggregated Residual Transformations (ResNeXt), "
          "Table 1", "ResNeXt-50 (32×4d): FLOPs 4.2×10⁹", seen=_RESNEXT_TABLE),
    Paper("resnext50_32x4d", "params", 25.0, 1e6, 1, "Xie et al. 2017, ResNeXt, Table 1", "params 25.0×10⁶",
          seen=_RESNEXT_TABLE),
    Paper("googlenet", "macs", 1.5, 1e9, 1, "Szegedy et al. 2015, Going Deeper with Convolutions, section 1",
          "a computational budget of 1.5 billion multiply-adds at inference time",
          seen='section 1 "the models were designed to keep a computational budget of 1.5 billion multiply-adds at '
               'inference time", ' + _TRANSCRIBED),
    Paper("mobilenet_v1", "macs", 569, 1e6, 0, "Howard et al. 2017, MobileNets, Table 8 (1.0 MobileNet-224)",
          "569 million mult-adds", seen=_MOBILENET_V1),
    Paper("mobilenet_v1", "params", 4.2, 1e6, 1, "Howard et al. 2017, MobileNets, Table 8", "4.2 million parameters",
          seen=_MOBILENET_V1),
    Paper("mobilenet_v1", "macs", 575, 1e6, 0, "Sandler et al. 2018, MobileNetV2, Table 4 (MobileNetV1)",
          "MobileNetV1: MAdds 575M", expect=False,
          why="the MobileNets paper itself says 569 M (reproduced above); the cause of the 575 M is not established",
          seen='Table 4 row "MobileNetV1 | 70.6 | 4.2M | 575M | 113ms", ' + _TRANSCRIBED),
    Paper("mobilenet_v2", "macs", 300, 1e6, 0, "Sandler et al. 2018, MobileNetV2, Table 4", "MAdds 300M",
          expect=False, why="the paper gives a round figure (the authors' release says 300 too)",
          seen=_MOBILENET_V2),
    Paper("mobilenet_v2", "params", 3.4, 1e6, 1, "Sandler et al. 2018, MobileNetV2, Table 4", "Params 3.4M",
          expect=False, why="the authors' release gives 3.47 M for this network, so the paper's 3.4M looks "
                            "truncated; the 1% between 3.47 M and torchvision's 3.50 M is not established",
          seen=_MOBILENET_V2),
    Paper("mobilenet_v3_large", "macs", 219, 1e6, 0, "Howard et al. 2019, Searching for MobileNetV3, Table 3 "
          "(Large 1.0)", "MAdds 219M", expect=False,
          why="torchvision's network; the authors' own release gives 217 M for it (the next row)",
          seen=_MOBILENET_V3),
    Paper("mobilenet_v3_large", "macs", 217, 1e6, 0, "Howard et al., the authors' TensorFlow release of MobileNetV3 "
          "(tensorflow/models, research/slim/nets/mobilenet/README.md), Large dm=1 (float)", "MACs (M) 217",
          seen='row "Large dm=1 (float) | 217 | 5.4 | 75.2" at ' + _SLIM_MOBILENET),
    Paper("mobilenet_v3_large", "params", 5.4, 1e6, 1, "Howard et al. 2019, MobileNetV3, Table 3", "Params 5.4M",
          expect=False, why="5.48 M; the cause is not established (the authors' release says 5.4 as well)",
          seen=_MOBILENET_V3),
    Paper("shufflenet_v2_x1_0", "macs", 146, 1e6, 0, "Ma et al. 2018, ShuffleNet V2, Table 5 (1×)", "FLOPs 146M",
          expect=False, why="torchvision's network; bias adds fall short and norms overshoot", seen=_SHUFFLENET),
    Paper("shufflenet_v2_x1_0", "params", 2.3, 1e6, 1, "Ma et al. 2018, ShuffleNet V2, Table 5 (1×)",
          "# of Weights 2.3M", seen=_SHUFFLENET),
    Paper("efficientnet_b0", "macs", 0.39, 1e9, 2, "Tan and Le 2019, EfficientNet, Table 2", "FLOPs 0.39B",
          seen='Table 2 row "EfficientNet-B0 | 77.1% | 93.3% | 5.3M | 1x | 0.39B | 1x", ' + _TRANSCRIBED
               + " (an earlier arXiv version's row reads 76.3% | 93.2% | 5.3M | 1x | 0.39B)"),
    Paper("efficientnet_b0", "params", 5.3, 1e6, 1, "Tan and Le 2019, EfficientNet, Table 2", "#Params 5.3M",
          seen="as the FLOPs row"),
    Paper("squeezenet1_0", "params", 1248424, 1, 0, "Iandola et al. 2016, SqueezeNet, Table 1",
          "# parameter before pruning: 1,248,424",
          seen="the total not read in the paper itself: Table 1's \"#parameter before pruning\" column per layer "
               "(conv1 14,208, fire2 11,920, fire3 12,432, fire4 45,344, ..., conv10 513,000) in a course's "
               'transcription, and its total as a GitHub tutorial quotes it ("col: #parameter before pruning ... '
               '1,248,424 (total) parameters"; exact-text search, no address)'),
    Paper("vgg11", "params", 133, 1e6, 0, "Simonyan and Zisserman 2015, Very Deep Convolutional Networks, Table 2",
          "A: 133 (millions of parameters)",
          seen='Table 2 "Number of parameters (in millions)": "A,A-LRN 133 | B 133 | C 134 | D 138 | E 144", '
               + _TRANSCRIBED),
    Paper("vgg13", "params", 133, 1e6, 0, "Simonyan and Zisserman 2015, Table 2", "B: 133", seen="as vgg11's"),
    Paper("vgg16", "params", 138, 1e6, 0, "Simonyan and Zisserman 2015, Table 2", "D: 138", seen="as vgg11's"),
    Paper("vgg19", "params", 144, 1e6, 0, "Simonyan and Zisserman 2015, Table 2", "E: 144", seen="as vgg11's"),
    Paper("alexnet_2012", "params", 60, 1e6, 0, "Krizhevsky et al. 2012, ImageNet Classification with Deep CNNs, "
          "abstract", "60 million parameters", expect=False,
          why="the paper gives a round figure",
          seen='abstract "The neural network, which has 60 million parameters and 500,000 neurons" at '
               "https://proceedings.neurips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-"
               'networks (the CACM 2012/2017 abstract: "60 million parameters and 650,000 neurons")'),
    Paper("convnext_tiny", "macs", 4.5, 1e9, 1, "Liu et al. 2022, A ConvNet for the 2020s, Table 1 (ConvNeXt-T, "
          "224²)", "FLOPs 4.5G", seen=_CONVNEXT_T1),
    Paper("convnext_tiny", "params", 28.6, 1e6, 1, "Liu et al. 2022, A ConvNet for the 2020s, Table 8 (ConvNeXt-T, "
          "1K/224²; Table 1 rounds it to 29M)", "FLOPs / Params 4.5 / 28.6",
          seen='Table 8 row "ConvNeXt-T | 1K/224² | 4.5 / 28.6" and ' + _CONVNEXT_T1[:-len(_CONVNEXT_README)]
               + "; the authors' README says 28M (truncated)"),
    Paper("vit_b_16", "macs", 17.6, 1e9, 1, "Liu et al. 2022, A ConvNet for the 2020s, Table 1 (DeiT-B, 224²) and "
          "Table 2 (ViT-B); the DeiT paper states no FLOPs", "FLOPs 17.6G",
          seen='ConvNeXt Table 1 row "DeiT-B | 224² | 87M | 17.6G | 302.1 | 81.8" and Table 2 row "ViT-B | 87M | '
               '17.6G", ' + _CONVNEXT_READ + "; DeiT's Table 1 gives #params 86M and throughput, no FLOPs ("
               + _TRANSCRIBED[8:] + "); also https://pmc.ncbi.nlm.nih.gov/articles/PMC9278509/table/tbl5"),
    Paper("vit_b_16", "params", 87, 1e6, 0, "Liu et al. 2022, A ConvNet for the 2020s, Table 2 (ViT-B)", "Params 87M",
          seen="as the FLOPs row"),
    Paper("vit_b_16", "params", 86, 1e6, 0, "Touvron et al. 2021, DeiT, abstract and Table 1", "Our reference vision "
          "transformer (86M parameters)", expect=False, why="86.57 M: the paper's figure looks truncated, not rounded "
          "(the ConvNeXt paper's 87M rounds)",
          seen='abstract at https://ar5iv.labs.arxiv.org/html/2012.12877; Table 1 row "DeiT-B | ViT-B | 768 | 12 | 12 '
               '| 86M", ' + _TRANSCRIBED),
]


@lru_cache(maxsize=64)
def _analysis(spec: str, variables: tuple):

    return analyze(spec, variables=dict(variables) or None)


def value(paper: Paper, count: str | None = None):
    """cnnsize's figure for a paper entry (under a counting convention), in the paper's units (before rounding)."""

    a = _analysis(paper.spec, tuple(sorted(paper.variables.items())))
    return (sum(counted(a, count), 0) if count else a.totals[paper.quantity]) / paper.scale


def reproduces(paper: Paper, figure: float | None = None) -> bool:
    figure = value(paper) if figure is None else figure
    return round(figure, paper.decimals) == paper.figure


def nearest_convention(paper: Paper) -> tuple[str, float]:
    """The multiply-add convention whose total comes nearest the paper's figure (for MAC figures)."""

    found = [(name, value(paper, name)) for name, c in CONVENTIONS.items() if c.unit in ("MACs", "mult-adds", "flops")]
    return min(found, key=lambda t: abs(t[1] - paper.figure))


def reproducing_conventions(paper: Paper) -> list[str]:
    """The multiply-add conventions (other than cnnsize's own) under which the paper's figure is reproduced."""

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
    """The papers table of docs/conventions.md (markdown)."""
    lines = ["| Architecture | The paper says | Source | cnnsize | Variant | Reproduced? | Text read at |",
             "|---|---|---|---:|---|---|---|"]
    for p in PAPERS:
        v = value(p)
        unit = {1e9: " G", 1e6: " M", 1: ""}[p.scale]
        digits = max(p.decimals, 2) if p.scale != 1 else 0
        shown = f"{v:,.{digits}f}{unit} {'MACs' if p.quantity == 'macs' else 'params'}"
        cells = [p.spec, p.quote, p.source, shown, p.variant, verdict(p, v), p.seen or "–"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")  # a quoted table row's bars
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(), end="")
