"""In-process sizing speed: cnnsize.analyze against tools that must build and run the model.

Issue 6's target: analyzing resnet152 at least 50 times faster than torchinfo's summary of an already
built ResNet-152 (about 100 ms here), i.e. under 2 ms. Baselines measured in the same run: PyTorch's
FlopCounterMode over one forward pass of the same network already built (torch needed), and
torchinfo, fvcore, ptflops (both its backends) and thop when they are installed, each on the same module
that cnnsize builds (torchvision's structure and parameter names). Their figures are printed next to ours:
each tool counts MACs its own way (fvcore and ptflops also count norms, pooling or activations).

    python benchmarks/analyze_speed.py [SPEC]
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time

import cnnsize


def median_ms(fn, runs: int = 20) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


# Third-party tools, each run on the model cnnsize built: (row name, package, measure). measure(model, x)
# imports the tool (ImportError when it is missing) and returns a call that sizes the model once and
# gives (params, MACs) as the tool counts them (None where it does not count that figure).


def _torchinfo(model, x):
    import torchinfo

    def run():
        stats = torchinfo.summary(model, input_size=tuple(x.shape), verbose=0)
        return stats.total_params, stats.total_mult_adds

    return run


def _fvcore(model, x):
    from fvcore.nn import FlopCountAnalysis, parameter_count

    def run():  # fvcore counts one "flop" per multiply-add, and also counts norms and pooling
        flops = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return parameter_count(model)[""], flops.total()

    return run


def _ptflops(backend: str):
    def measure(model, x):
        from ptflops import get_model_complexity_info

        def run():  # ptflops adds bias, norm, activation and pooling operations to its MACs
            macs, params = get_model_complexity_info(model, tuple(x.shape[1:]), print_per_layer_stat=False,
                                                     as_strings=False, backend=backend, verbose=False)
            return params, macs

        return run

    return measure


def _thop(model, x):
    from thop import profile

    def run():
        macs, params = profile(model, inputs=(x,), verbose=False)
        return int(params), int(macs)

    return run


THIRD_PARTY = [("torchinfo.summary (built model)", "torchinfo", _torchinfo),
               ("fvcore FlopCountAnalysis (built model)", "fvcore", _fvcore),
               ("ptflops, pytorch backend (built model)", "ptflops", _ptflops("pytorch")),
               ("ptflops, aten backend (built model)", "ptflops", _ptflops("aten")),
               ("thop profile (built model)", "ultralytics-thop", _thop)]


def main() -> None:
    spec = sys.argv[1] if len(sys.argv) > 1 else "resnet152"
    a = cnnsize.analyze(spec)
    graph = cnnsize.load(spec)
    from cnnsize.engine.walk import analyze_graph
    from cnnsize.spec.sources import read_text

    text, _ = read_text(spec)
    fresh = itertools.count()
    params, macs = a.totals["params"], a.totals["macs"]
    rows = [(f"cnnsize.analyze('{spec}')", median_ms(lambda: cnnsize.analyze(spec)), params, macs),
            # new text each run: nothing from the cache of parsed specs (as a spec being edited)
            ("cnnsize.analyze(new text): parse + size", median_ms(lambda: cnnsize.analyze(f"{text}#{next(fresh)}\n")),
             params, macs),
            ("cnnsize analyze_graph (parsed spec)", median_ms(lambda: analyze_graph(graph)), params, macs)]
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        torch = None
    if torch is not None:
        model = cnnsize.build(a)
        x = torch.zeros((1, *a.input_shape))

        def flop_counter():
            with torch.inference_mode(), FlopCounterMode(display=False) as counter:
                model(x)
            return counter.get_total_flops()

        rows.append(("torch FlopCounterMode (built model)", median_ms(flop_counter, 5),
                     sum(p.numel() for p in model.parameters()), flop_counter() // 2))
        for name, package, measure in THIRD_PARTY:
            try:
                run = measure(model, x)
            except ImportError:
                print(f"{package} not installed: pip install {package} to compare")
                continue
            params, macs = run()
            rows.append((name, median_ms(run, 5), params, macs))
    base = rows[0][1]
    print(f"{spec}: {len(a.layers) - 1} layers")
    print(f"{'tool':42} {'median ms':>10} {'vs cnnsize':>10} {'params':>14} {'MACs':>16}")
    for name, ms, params, macs in rows:
        print(f"{name:42} {ms:10.2f} {ms / base:9.1f}x {params if params is not None else '-':>14} "
              f"{macs if macs is not None else '-':>16}")
    torchinfo_ms = next((ms for name, ms, *_ in rows if name.startswith("torchinfo")), None)
    if torchinfo_ms is not None:
        ratio = torchinfo_ms / base
        print(f"target: at least 50x faster than torchinfo ({ratio:.0f}x), under 2 ms ({base:.2f} ms): "
              f"{'met' if ratio >= 50 and base < 2 else 'missed'}")


if __name__ == "__main__":
    main()
