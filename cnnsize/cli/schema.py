"""`cnnsize schema`: the JSON Schema of the spec format, for editors (validation and autocompletion)."""

from __future__ import annotations

from .common import output_extensions, write_output


def register(sub) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of the spec format (for editors)",
                       description="Print the JSON Schema of the spec format, generated from the layer registry. "
                                   "In a spec, a first line '# yaml-language-server: $schema=PATH' (PATH from "
                                   "--path) makes editors validate and autocomplete it.")
    p.add_argument("--path", action="store_true", help="print the path of the schema file shipped with cnnsize")
    p.add_argument("-o", "--output", help="write to this file (.json) instead of standard output")
    output_extensions(p, ".json")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..spec.schema import SCHEMA_FILE, schema_text

    if args.path:
        write_output(f"{SCHEMA_FILE}\n", None)
        return 0
    write_output(schema_text(), args.output)
    return 0
