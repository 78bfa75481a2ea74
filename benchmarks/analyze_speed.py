"""In-process sizing speed: cnnsize.analyze against tools that must build and run the model.

Issue 6's target: analyzing resnet152 at least 50 times faster than torchinfo's summary of an already
built ResNet-152 (about 100 ms here), i.e. under 2 ms. Baselines measured in the same run: PyTorch's
FlopCounterMode over one forward pass of the same network already built (torch needed), and
torchinfo, fvcore and ptflops when they are installed (each on the same module that cnnsize builds,
which has torchvision's structure and parameter names). Figures are printed next to ours.

    python benchmarks/analyze_speed.py [SPEC]
"""

from __future__ import annotations

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


def main() -> None:
    spec = sys.argv[1] if len(sys.argv) > 1 else "resnet152"
    a = cnnsize.analyze(spec)
    graph = cnnsize.load(spec)
    from cnnsize.analysis import analyze_graph

    rows = [("cnnsize.analyze (parse + size)", median_ms(lambda: cnnsize.analyze(spec)), a.totals["params"],
             a.totals["macs"]),
            ("cnnsize analyze_graph (parsed spec)", median_ms(lambda: analyze_graph(graph)), a.totals["params"],
             a.totals["macs"])]
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
        try:
            import torchinfo

            stats = torchinfo.summary(model, input_size=(1, *a.input_shape), verbose=0)
            rows.append(("torchinfo.summary (built model)",
                         median_ms(lambda: torchinfo.summary(model, input_size=(1, *a.input_shape), verbose=0), 5),
                         stats.total_params, stats.total_mult_adds))
        except ImportError:
            print("torchinfo not installed: pip install torchinfo to compare")
        try:
            from fvcore.nn import FlopCountAnalysis

            rows.append(("fvcore FlopCountAnalysis (built model)",
                         median_ms(lambda: FlopCountAnalysis(model, x).unsupported_ops_warnings(False).total(), 5),
                         None, FlopCountAnalysis(model, x).total()))
        except ImportError:
            print("fvcore not installed: pip install fvcore to compare")
    base = rows[0][1]
    print(f"{spec}: {len(a.layers) - 1} layers")
    print(f"{'tool':42} {'median ms':>10} {'vs cnnsize':>10} {'params':>14} {'MACs':>16}")
    for name, ms, params, macs in rows:
        print(f"{name:42} {ms:10.2f} {ms / base:9.1f}x {params if params is not None else '-':>14} "
              f"{macs if macs is not None else '-':>16}")


if __name__ == "__main__":
    main()
