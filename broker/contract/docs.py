"""The field-by-field mapping table of schemas/MAPPING.md, written from the mapping table itself."""

from __future__ import annotations

from broker.contract.mapping import SESAM2_CODES, TYPE_MAPS
from broker.contract.spec import F, G, R, Spec


def _join(base: str, path: str) -> str:
    return f"{base}/{path}" if path else base


def _rows(specs: tuple[Spec, ...], field: str, customer: str, sesam2: str | None) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for spec in specs:
        name = f"{field}.{spec.attr}".strip(".") if spec.attr else field
        c = _join(customer, spec.customer)
        s = _join(sesam2, spec.sesam2) if sesam2 is not None else None
        if isinstance(spec, F):
            # A leaf with no element in a dialect is not carried there (a group's empty path flattens it).
            shown = f"{c} (since {spec.since})" if spec.since != "1.0" else c
            if spec.before is not None:
                shown += f" (widened in {spec.before[0]})"
            rows.append((name, shown if spec.customer else "-", s if s and spec.sesam2 else "-"))
        else:
            suffix = "[]" if isinstance(spec, R) else ""
            group = _rows(spec.fields, name + suffix, c, s)
            if isinstance(spec, G) and spec.since != "1.0":  # a group a later version added: all of it since then
                group = [
                    (n, f"{cc} (since {spec.since})" if cc != "-" and "since" not in cc else cc, ss)
                    for n, cc, ss in group
                ]
            rows.extend(group)
    return rows


def mapping_markdown() -> str:
    out = [
        "# Mapping customer dialect <-> SESAM2 dialect",
        "",
        "Generated from broker/contract/mapping.py by `python -m broker.contract.generate`; do not edit.",
        "Paths are element paths from the root; `[]` marks a repeated group. `-`: not exchanged with SESAM2.",
        "",
    ]
    for tmap in TYPE_MAPS.values():
        out += [f"## {tmap.cls.__name__} ({tmap.cls.direction.value})", ""]
        out += [f"{(tmap.cls.__doc__ or '').strip().splitlines()[0] if tmap.cls.__doc__ else ''}", ""]
        out += ["| model field | customer element | SESAM2 element |", "|---|---|---|"]
        sesam2_root = f"/{tmap.sesam2}" if tmap.sesam2 else None
        for name, c, s in _rows(tmap.fields, "", f"/{tmap.customer}", sesam2_root):
            out.append(f"| {name} | {c} | {s} |")
        out.append("")
    out += ["## Code lists", "", "| code list | customer token | SESAM2 code |", "|---|---|---|"]
    for enum, codes in SESAM2_CODES.items():
        for value, code in codes.items():
            out.append(f"| {enum.__name__} | {value} | {code} |")
    out.append("")
    return "\n".join(out)
