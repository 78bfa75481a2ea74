"""`cnnsize fit SPEC [--min 32 --max 1024] [--size 224]`: the input sizes at which every layer fits exactly."""

from __future__ import annotations

from .common import write_output


def register(sub) -> None:
    p = sub.add_parser("fit", help="list the input sizes at which every layer fits exactly",
                       description="List the square input sizes (C x n x n) at which every layer fits exactly, "
                                   "and the nearest ones to --size.")
    p.add_argument("spec", help="a spec file, a bundled spec name (alexnet_cs231n), or - for standard input")
    p.add_argument("--min", type=int, default=32, help="smallest input size to try (default 32)")
    p.add_argument("--max", type=int, default=1024, help="largest input size to try (default 1024)")
    p.add_argument("-s", "--size", type=int, help="a size to ask about: does it fit, which sizes near it do")
    p.add_argument("--fit", choices=("exact", "floor"), metavar="RULE",
                   help="exact (every window tiles its input) or floor (sizes round down, as PyTorch); "
                        "default: the spec's own fit rule, and with fit: floor both are listed")
    p.add_argument("-f", "--format", default="text", help="text or json")
    p.set_defaults(run=run_fit)


def run_fit(args) -> int:
    """Print the sizes that fit (and the answer for --size)."""
    from ..api import fit_sizes, load_graph
    from ..core.errors import unknown_name
    from ..core.safe import json_text

    spec, min, max, size, format = args.spec, args.min, args.max, args.size, args.format  # noqa: A001
    if format not in ("text", "json"):
        raise unknown_name("format", format, ("text", "json"))
    rule = args.fit or load_graph(spec).fit
    results = [fit_sizes(spec, min=min, max=max, rule=rule)]
    if rule == "floor" and args.fit is None:  # the spec rounds down: say where it runs and where it fits exactly
        results.append(fit_sizes(spec, min=min, max=max, rule="exact"))
    if format == "json":
        doc = results[0].to_dict()
        if len(results) > 1:
            doc["exact"] = results[1].to_dict()
        if size is not None:
            doc["size"] = _answer_dict(results[0], size)
            if len(results) > 1:
                doc["exact"]["size"] = _answer_dict(results[1], size)
        write_output(json_text(doc), None)
        return 0
    lines = []
    if len(results) > 1:
        lines.append(f"{results[0].graph.name} has fit: floor (each size rounds down, as PyTorch does); "
                     "both rules follow (--fit exact or --fit floor for one).")
    for result in results:
        lines.append(str(result))
        if size is not None:
            lines += _answer_lines(result, size)
    from ..render.boxes import terminal_width, wrap

    width = terminal_width()  # sentences: wrapped on a terminal, whole lines in a pipe
    write_output("".join(part + "\n" for line in lines for part in wrap(line, width)), None)
    return 0


def _answer_dict(result, size: int) -> dict:
    below, above = result.nearest(size)
    why = result.why_not(size)
    return {"size": size, "fits": why is None, "why_not": None if why is None else why.one_line(),
            "nearest_below": below, "nearest_above": above}


def _answer_lines(result, size: int) -> list[str]:
    why = result.why_not(size)
    below, above = result.nearest(size)
    near = " and ".join(str(v) for v in (below, above) if v is not None) or "none"
    fits, verb = ("fits", "fit") if result.rule == "exact" else ("runs (fit: floor)", "run (fit: floor)")
    if why is None:
        return [f"{size} {fits}. Nearest other sizes that {verb.split()[0]}: {near}."]
    return [f"{size} does not {verb}: {why.one_line()}", f"Nearest sizes that {verb.split()[0]}: {near}."]
