"""How many of timm's architecture families import exactly: one model per family, built with pretrained=False.

    python -m tools.timm_survey                  # every family (the smallest model of each), a summary at the end
    python -m tools.timm_survey --json OUT.jsonl # also one JSON line per family
    python -m tools.timm_survey resnet vit_...   # only these models
    python -m tools.timm_survey --pick           # choose the smallest model of each family again (builds hundreds)

A family is one of timm's model modules (timm.models.resnet, timm.models.vision_transformer...). For each, the
model is built on the CPU, as a user builds it, and imported with cnnsize.from_torch at the
model's own input size; torch's truth is ``sum(p.numel())`` over parameters and buffers, FlopCounterMode's total / 2
and the shape of the output (tests/zoo_truth.py). "exact" means params, buffers, MACs and the output shape all equal
torch's. A failure is grouped by the pattern it stopped on (CAUSES, matched on cnnsize's one-line error).

tests/test_timm_zoo.py runs a representative few of these in the zoo set, and every family under ``-m slow``.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time

# the smallest model of each family (by parameters) in timm 1.0.31, as --pick chose it
FAMILIES: dict[str, str] = {
    "beit": "beit_base_patch16_224", "byoanet": "halonet_h1", "byobnet": "test_byobnet", "cait": "cait_s24_224",
    "coat": "coat_tiny", "convit": "convit_tiny", "convmixer": "convmixer_768_32", "convnext": "test_convnext",
    "cpubone": "cpubone_nano", "crossvit": "crossvit_tiny_240", "csatv2": "csatv2", "cspnet": "cs3darknet_focus_s",
    "cspnext": "cspnext_tiny", "davit": "davit_tiny", "deepseek_vit": "deepseek_vit_412m",
    "deit": "deit_tiny_patch16_224", "densenet": "densenet121", "dla": "dla34", "dpn": "dpn48b",
    "edgenext": "edgenext_xx_small", "efficientformer": "efficientformer_l1",
    "efficientformer_v2": "efficientformerv2_s0", "efficientnet": "test_efficientnet",
    "efficientvim": "efficientvim_m1", "efficientvit_mit": "efficientvit_b0", "efficientvit_msra": "efficientvit_m0",
    "eva": "vit_tiny_patch16_dinov3_qkvb", "fasternet": "fasternet_t0", "fastvit": "fastvit_t8",
    "focalnet": "focalnet_tiny_srf", "gcvit": "gcvit_xtiny", "gemma4_vit": "gemma4_vit_167m",
    "ghostnet": "ghostnet_050", "hardcorenas": "hardcorenas_b", "hgnet": "hgnetv2_b0", "hiera": "hiera_tiny_224",
    "hieradet_sam2": "sam2_hiera_tiny", "hrnet": "hrnet_w18_small", "iformer": "iformer_t",
    "inception_next": "inception_next_atto", "inception_resnet_v2": "inception_resnet_v2",
    "inception_v3": "inception_v3", "inception_v4": "inception_v4", "lcnetv2": "lcnetv2_small", "levit": "levit_128",
    "lowformer": "lowformer_b0", "mambaout": "test_mambaout", "maxxvit": "test_coatnet",
    "metaformer": "caformer_s18", "mlp_mixer": "gmixer_12_224", "mobilenetv3": "mobilenetv3_small_050",
    "mobilenetv5": "mobilenetv5_base", "mobilevit": "mobilevit_xxs", "mvitv2": "mvitv2_tiny",
    "naflexvit": "naflexvit_base_patch16_gap", "nasnet": "nasnetalarge", "nest": "nest_tiny",
    "nextvit": "nextvit_small", "nfnet": "test_nfnet", "pit": "pit_xs_224", "pnasnet": "pnasnet5large",
    "pvt_v2": "pvt_v2_b0", "qwen3_vit": "qwen3_vit_88m", "rdnet": "rdnet_tiny", "regnet": "regnetx_002",
    "repghost": "repghostnet_050", "repvit": "repvit_m1", "res2net": "res2next50", "resnest": "resnest14d",
    "resnet": "test_resnet", "resnetv2": "resnetv2_18", "rexnet": "rexnet_100", "selecsls": "selecsls42",
    "senet": "legacy_seresnet18", "sequencer": "sequencer2d_s", "shvit": "shvit_s1", "sknet": "skresnet18",
    "starnet": "starnet_s1", "swiftformer": "swiftformer_xs", "swin_transformer": "swin_tiny_patch4_window7_224",
    "swin_transformer_v2": "swinv2_tiny_window8_256", "swin_transformer_v2_cr": "swinv2_cr_tiny_224",
    "tiny_vit": "tiny_vit_5m_224", "tnt": "tnt_s_legacy_patch16_224", "tresnet": "tresnet_m",
    "twins": "twins_svt_small", "vgg": "vgg11", "visformer": "visformer_tiny", "vision_transformer": "test_vit",
    "vision_transformer_hybrid": "vit_tiny_r_s16_p8_224", "vision_transformer_relpos": "test_vit_relpos",
    "vision_transformer_sam": "samvit_base_patch16_224", "vitamin": "vitamin_small_224", "volo": "volo_d1_224",
    "vovnet": "vovnet39a", "xception": "legacy_xception", "xception_aligned": "xception41p",
    "xcit": "xcit_nano_12_p8_224",
}

# (cause, pattern of the one-line error) in order: the first that matches names the failure
CAUSES = [
    ("pad / unfold", r"F\.pad|padding|unfold|fold|im2col"),
    ("sdpa argument", r"scaled_dot_product|attn_mask|dropout_p|sdpa"),
    ("tensor built in forward", r"torch\.(arange|zeros|ones|linspace|full|empty|meshgrid)|_build_grid|built in"),
    ("arithmetic with a constant", r"constant|alpha|rsqrt|normalize|clamp|where"),
    ("batch axis", r"batch"),
    ("re-tracing a module", r"KeyError|_weight|NoneType"),
    ("fx cannot trace", r"torch\.fx cannot trace"),
    ("module does not run", r"does not run on"),
    ("function or module not mapped", r"cannot import"),
]


def cause_of(error: str) -> str:
    for cause, pattern in CAUSES:
        if re.search(pattern, error, re.IGNORECASE):
            return cause
    return "other"


def _families() -> dict[str, list[str]]:
    import timm
    from timm.models import _registry

    out: dict[str, list[str]] = {}
    for name in timm.list_models():
        out.setdefault(_registry._model_to_module[name], []).append(name)
    return out


SMALL_WORDS = ("test", "atto", "femto", "pico", "nano", "tiny", "micro", "xxs", "xs", "mini", "small", "t", "s")


def _rank(name: str) -> tuple:
    """Names that say small first (a guess, checked by building the few first)."""
    words = re.split(r"[_\-.]", name)
    for i, word in enumerate(SMALL_WORDS):
        if word in words:
            return (i, len(name))
    return (len(SMALL_WORDS), len(name))


def build(name: str, device: str = "meta"):
    import timm
    import torch

    with torch.device(device):
        return timm.create_model(name, pretrained=False).eval()


def pick(names: list[str], tries: int = 4) -> str:
    """The model with the fewest parameters among the ``tries`` whose names say smallest."""
    best, fewest = names[0], None
    for name in sorted(names, key=_rank)[:tries]:
        try:
            n = sum(p.numel() for p in build(name).parameters())
        except Exception:  # noqa: BLE001 (a model that does not build is not the one to survey)
            continue
        if fewest is None or n < fewest:
            best, fewest = name, n
    return best


def input_shape(model) -> tuple:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return tuple(cfg.get("input_size", (3, 224, 224)))


def _truth(model, shape: tuple) -> tuple:
    """torch's figures and output, on the meta device (seconds) unless the forward makes CPU tensors of its own;
    on the CPU with the math attention kernel (CPU's fused kernels have no FLOP formula; the same arithmetic)."""
    import copy

    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from tests.zoo_truth import torch_figures

    # FlopCounterMode's module tracker asserts on a parameter passed to a submodule (PiT's, CaiT's class token):
    # the copies measured hold no gradients (their numbers of parameters are the same)
    try:
        meta = copy.deepcopy(model).to("meta").requires_grad_(False)
        with torch.no_grad():
            return torch_figures(meta, shape), meta(torch.empty(1, *shape, device="meta"))
    except Exception:  # noqa: BLE001 (a forward the meta device cannot run: one making CPU tensors of its own)
        cpu = copy.deepcopy(model).requires_grad_(False)
        with sdpa_kernel(SDPBackend.MATH), torch.no_grad():
            return torch_figures(cpu, shape), cpu(torch.zeros(1, *shape))


class _Timeout(Exception):
    pass


class _TorchFailed(Exception):
    pass


def _first_line(exc) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]


def _alarm(signum, frame):
    raise _Timeout()


def survey(name: str, seconds: int = 300) -> dict:
    """One model: torch's figures, cnnsize's, and whether they are equal, or the error and its cause."""
    import torch

    import cnnsize

    row: dict = {"name": name}
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        model = build(name, "cpu")  # as a user builds it (a forward's own tensors are on the CPU)
        shape = input_shape(model)
        row["input"] = list(shape)
        try:
            truth, out = _truth(model, shape)
        except Exception as exc:  # noqa: BLE001 (torch itself does not run it: not cnnsize's failure)
            raise _TorchFailed(exc) from exc
        truth["output"] = list(out.shape[1:]) if isinstance(out, torch.Tensor) else None
        row["torch"] = {k: truth[k] for k in ("params", "buffers", "macs", "output")}
        imported = cnnsize.from_torch(model, shape, name=name)
        a = imported.analyze()
        got = {"params": a.totals["params"], "buffers": a.totals["buffers"], "macs": a.totals["macs"],
               "output": [int(v) for v in a.layers[-1].output_shape]}
        row["cnnsize"] = got
        row["exact"] = got == row["torch"]
        if not row["exact"]:
            row["cause"] = "inexact: " + ", ".join(k for k in got if got[k] != row["torch"][k])
    except cnnsize.CnnsizeError as exc:
        row["error"] = exc.one_line()
        row["cause"] = cause_of(row["error"])
    except _Timeout:
        row["error"], row["cause"] = f"over {seconds} s", "time"
    except _TorchFailed as exc:
        row["error"], row["cause"] = _first_line(exc.__cause__), "torch fails"
    except Exception as exc:  # noqa: BLE001 (a survey: cnnsize failing otherwise than in one line is a row too)
        row["error"], row["cause"] = _first_line(exc), "crash: " + type(exc).__name__
    finally:
        signal.alarm(0)
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def summary(rows: list[dict]) -> str:
    exact = [r for r in rows if r.get("exact")]
    causes: dict[str, list[str]] = {}
    for r in rows:
        if not r.get("exact"):
            causes.setdefault(r.get("cause", "?"), []).append(r["name"])
    lines = [f"{len(exact)} of {len(rows)} families import exactly (params, buffers, MACs, output shape)"]
    for cause, names in sorted(causes.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"  {len(names):3d}  {cause}: {', '.join(names)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="models to survey (default: one per family)")
    parser.add_argument("--json", help="append one JSON line per model to this file")
    parser.add_argument("--pick", action="store_true", help="choose each family's smallest model again")
    parser.add_argument("--timeout", type=int, default=300, help="seconds for one model")
    args = parser.parse_args(argv)
    if args.pick:
        chosen = {family: pick(names) for family, names in sorted(_families().items())}
        print(json.dumps(chosen, indent=4))
        return 0
    rows = []
    for name in args.models or list(FAMILIES.values()):
        row = survey(name, args.timeout)
        rows.append(row)
        print(f"{name:45s} {row['seconds']:6.1f}s  " + ("exact" if row.get("exact") else
                                                      f"{row.get('cause')}: {row.get('error', '')[:150]}"),
              flush=True)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
