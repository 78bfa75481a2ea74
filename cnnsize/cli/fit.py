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
    p.add_argument("-f", "--format", default="text", help="text or json")
    p.set_defaults(run=run_fit)


def run_fit(args) -> int:
    """Print the sizes that fit (and the answer for --size)."""
    import json

    from ..errors import unknown_name
    from ..fitting import fit_sizes

    spec, min, max, size, format = args.spec, args.min, args.max, args.size, args.format  # noqa: A001
    if format not in ("text", "json"):
        raise unknown_name("format", format, ("text", "json"))
    result = fit_sizes(spec, min=min, max=max)
    c = result.graph.input_shape[0]
    nd = len(result.graph.input_shape) - 1
    if format == "json":
        doc = result.to_dict()
        if size is not None:
            below, above = result.nearest(size)
            why = result.why_not(size)
            doc["size"] = {"size": size, "fits": why is None, "why_not": None if why is None else why.one_line(),
                           "nearest_below": below, "nearest_above": above}
        write_output(json.dumps(doc, indent=2) + "\n", None)
        return 0
    shape = "×".join([str(c)] + ["n"] * nd)
    lines = [f"{result.graph.name} (input {shape}), n from {min} to {max}: every layer fits exactly at "
             f"{result.summary()}"]
    if size is not None:
        why = result.why_not(size)
        below, above = result.nearest(size)
        near = " and ".join(str(v) for v in (below, above) if v is not None) or "none"
        if why is None:
            lines.append(f"{size} fits. Nearest other sizes that fit: {near}.")
        else:
            lines.append(f"{size} does not fit: {why.one_line()}")
            lines.append(f"Nearest sizes that fit: {near}.")
    write_output("\n".join(lines) + "\n", None)
    return 0
