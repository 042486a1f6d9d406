"""Generate each dialect's XSD from its binding, so schema, parser and renderer cannot drift apart.

`python -m broker.contract.generate` rewrites schemas/; a test fails when the committed files differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from broker.contract.binding import Binding, Leaf, Node
from broker.contract.codecs import XS


@dataclass
class _Decl:
    name: str
    type_name: str | None = None  # leaf: the simple type
    min_occurs: int | None = None  # None: required when any child is
    max_occurs: int = 1
    doc: str = ""
    children: list[_Decl] = field(default_factory=list)

    def child(self, name: str) -> _Decl:
        """The last child of that name, or a new one: mirrors how the renderer nests elements."""
        if self.children and self.children[-1].name == name and self.children[-1].type_name is None:
            return self.children[-1]
        decl = _Decl(name)
        self.children.append(decl)
        return decl

    def required(self) -> bool:
        if self.min_occurs is not None:
            return self.min_occurs > 0
        return any(c.required() for c in self.children)


def _walk(node: Node, decl: _Decl, optional_context: bool) -> None:
    for child in node.children:
        if isinstance(child, Leaf):
            parent = decl
            for name in child.names[:-1]:
                parent = parent.child(name)
            optional = child.optional or optional_context
            parent.children.append(_Decl(child.names[-1], child.codec.type_name, 0 if optional else 1))
            continue
        target = decl
        names = child.names[:-1] if child.items is not None else child.names
        for name in names:
            target = target.child(name)
        if child.items is not None:
            item = _Decl(child.names[-1], min_occurs=max(child.items.min, 1), max_occurs=child.items.max)
            target.min_occurs = 0 if child.items.min == 0 else None
            target.children.append(item)
            _walk(child, item, False)
        elif child.transparent or not child.names:
            # Flattened optional group: each of its elements becomes optional in the parent.
            _walk(child, target, optional_context or child.optional)
        else:
            target.min_occurs = 0 if child.optional or optional_context else 1
            _walk(child, target, False)


def _emit(decl: _Decl, parent: etree._Element) -> None:
    attrs = {"name": decl.name}
    if decl.type_name is not None:
        attrs["type"] = f"tns:{decl.type_name}"
    if not decl.required():
        attrs["minOccurs"] = "0"
    elif decl.min_occurs and decl.min_occurs > 1:
        attrs["minOccurs"] = str(decl.min_occurs)
    if decl.max_occurs != 1:
        attrs["maxOccurs"] = str(decl.max_occurs)
    el = etree.SubElement(parent, f"{{{XS}}}element", attrs)
    if decl.doc:
        ann = etree.SubElement(el, f"{{{XS}}}annotation")
        etree.SubElement(ann, f"{{{XS}}}documentation").text = decl.doc
    if decl.type_name is None:
        seq = etree.SubElement(etree.SubElement(el, f"{{{XS}}}complexType"), f"{{{XS}}}sequence")
        for child in decl.children:
            _emit(child, seq)


def generate(binding: Binding, title: str) -> bytes:
    schema = etree.Element(
        f"{{{XS}}}schema",
        nsmap={"xs": XS, "tns": binding.namespace},
        targetNamespace=binding.namespace,
        elementFormDefault="qualified",
        version="1.0",
    )
    schema.append(etree.Comment(f" {title} Generated from broker/contract/mapping.py; do not edit by hand. "))
    for root_name, node in binding.roots.items():
        decl = _Decl(root_name, min_occurs=1, doc=(node.cls.__doc__ or node.cls.__name__).strip().splitlines()[0])
        _walk(node, decl, False)
        _emit(decl, schema)
    for name in sorted(binding.codecs):
        definition = binding.codecs[name].xsd()
        if definition is not None:
            schema.append(definition)
    data: bytes = etree.tostring(schema, pretty_print=True, xml_declaration=True, encoding="UTF-8")
    return data
