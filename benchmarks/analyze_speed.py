"""In-process sizing speed: cnnsize.analyze against tools that must build and run the model.

Issue 23's target: ``cnnsize.analyze("resnet152")`` at least 80 times faster than torchinfo's summary of the
same network already built (the module cnnsize builds: torchvision's structure and parameter names). Both are
timed in this run, cnnsize before and after torchinfo (torch's idle worker threads spin for a moment after a
forward pass, so cnnsize is not timed right behind each one), and the ratio of their medians is the figure.
torch runs on one thread (``--threads``), as in import_speed.py: on a shared machine more threads than free cores
make torch's time a measure of the load (seconds instead of a tenth of one), not of the tool. The issue measured at
torch's default (``--threads 0``: as many as the cores, two here), which favours cnnsize: in one run on the shared
2-core machine (load about 7) torchinfo took 1.9 s on one thread and 5.2 s on two, for 133x and 354x. One thread is
the steadier figure and the harder target, so it is the default.
With ``--all``, the other tools are timed too (minutes): PyTorch's FlopCounterMode over one forward pass, and
fvcore, ptflops (both its backends) and thop when they are installed. Their figures are printed next to ours:
each tool counts MACs its own way (fvcore and ptflops also count norms, pooling or activations).

    python benchmarks/analyze_speed.py [--all] [SPEC]      # needs torch and torchinfo
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time

import cnnsize


def around_ms(ours, theirs, runs: int) -> tuple[float, float]:
    """Median milliseconds of ``ours`` (timed before and after ``theirs``) and of ``theirs``."""
    ours()
    theirs()
    before = _times(ours, runs)
    after_theirs = _times(theirs, max(3, runs // 3))
    time.sleep(0.5)  # torch's worker threads stop spinning
    after = _times(ours, runs)
    return statistics.median(before + after) * 1e3, statistics.median(after_theirs) * 1e3


def _times(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", nargs="?", default="resnet152")
    parser.add_argument("--all", action="store_true", help="also time FlopCounterMode, fvcore, ptflops and thop")
    parser.add_argument("--threads", type=int, default=1, help="torch's threads (default 1; 0: torch's default)")
    parser.add_argument("--runs", type=int, default=30, help="runs of cnnsize before and after torchinfo's "
                        "(a third as many); default 30")
    args = parser.parse_args()
    spec = args.spec
    import torch

    from cnnsize.engine.walk import analyze_graph
    from cnnsize.spec.sources import read_text

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    a = cnnsize.analyze(spec)
    graph = cnnsize.load(spec)
    text, _ = read_text(spec)
    fresh = itertools.count()
    params, macs = a.totals["params"], a.totals["macs"]
    model = cnnsize.build(a)
    x = torch.zeros((1, *a.input_shape))
    info = _torchinfo(model, x)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; torch on {torch.get_num_threads()} "
          "thread(s)")
    ours, theirs = around_ms(lambda: cnnsize.analyze(spec), info, args.runs)
    rows = [(f"cnnsize.analyze('{spec}')", ours, params, macs),
            # new text each run: nothing from the cache of parsed specs (as a spec being edited)
            ("cnnsize.analyze(new text): parse + size", median_ms(lambda: cnnsize.analyze(f"{text}#{next(fresh)}\n")),
             params, macs),
            ("cnnsize analyze_graph (parsed spec)", median_ms(lambda: analyze_graph(graph)), params, macs),
            ("torchinfo.summary (built model)", theirs, *info())]
    if args.all:
        from torch.utils.flop_counter import FlopCounterMode

        def flop_counter():
            with torch.inference_mode(), FlopCounterMode(display=False) as counter:
                model(x)
            return counter.get_total_flops()

        rows.append(("torch FlopCounterMode (built model)", median_ms(flop_counter, 5),
                     sum(p.numel() for p in model.parameters()), flop_counter() // 2))
        for name, package, measure in THIRD_PARTY[1:]:
            try:
                run = measure(model, x)
            except ImportError:
                print(f"{package} not installed: pip install {package} to compare")
                continue
            got = run()
            rows.append((name, median_ms(run, 5), *got))
    print(f"{spec}: {len(a.layers) - 1} layers")
    print(f"{'tool':42} {'median ms':>10} {'vs cnnsize':>10} {'params':>14} {'MACs':>16}")
    for name, ms, p, m in rows:
        print(f"{name:42} {ms:10.2f} {ms / ours:9.1f}x {p if p is not None else '-':>14} "
              f"{m if m is not None else '-':>16}")
    ratio = theirs / ours
    print(f"target: cnnsize.analyze at least 80x faster than torchinfo on the same built model: {ratio:.0f}x, "
          f"{'met' if ratio >= 80 else 'missed'}")


if __name__ == "__main__":
    main()
