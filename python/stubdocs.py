"""Copies the runtime docstrings of ``meshtls._meshtls`` (written once, as ``///`` docs in the
Rust binding) into the hand-written stub ``meshtls/_meshtls.pyi``, so that editors and type
checkers show the same text as ``help()``.

    python python/stubdocs.py          # rewrite the stub in place
    python python/stubdocs.py --check  # exit 1 if the stub is out of date (the tests do this)

Classes, functions, methods and properties get their runtime ``__doc__``; dunder methods
are left alone (their documentation is Python's).
"""

from __future__ import annotations

import ast
import inspect
import pathlib
import sys
import textwrap

STUB = pathlib.Path(__file__).resolve().parent / "meshtls" / "_meshtls.pyi"


def _literal(doc: str, indent: str) -> str:
    body = textwrap.indent(doc, indent).lstrip() if "\n" in doc else doc
    prefix = "r" if "\\" in doc else ""
    closing = f"\n{indent}" if "\n" in doc else ""
    return f'{prefix}"""{body}{closing}"""'


def _runtime_doc(obj: object) -> str | None:
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return None
    return inspect.cleandoc(doc)


def render(stub_text: str, module: object) -> str:
    """The stub with every docstring replaced by (or set to) the runtime one."""
    tree = ast.parse(stub_text)
    lines = stub_text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def pos(lineno: int, col: int) -> int:
        return offsets[lineno - 1] + col

    edits: list[tuple[int, int, str]] = []

    def document(node: ast.ClassDef | ast.FunctionDef, obj: object, indent: str) -> None:
        doc = _runtime_doc(obj)
        if doc is None:
            return
        literal = _literal(doc, indent)
        first = node.body[0]
        is_doc = (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        )
        is_ellipsis = (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and first.value.value is Ellipsis
        )
        assert first.end_lineno is not None and first.end_col_offset is not None
        if is_doc or (is_ellipsis and len(node.body) == 1):
            start = pos(first.lineno, first.col_offset)
            end = pos(first.end_lineno, first.end_col_offset)
            if first.lineno == node.lineno:
                # `def f() -> X: ...` on one line: the docstring goes on the next.
                edits.append((start, end, f"\n{indent}{literal}"))
            else:
                edits.append((start, end, literal))
        else:
            decorators = getattr(first, "decorator_list", None) or []
            line = min([first.lineno] + [d.lineno for d in decorators])
            start = pos(line, 0)
            edits.append((start, start, f"{indent}{literal}\n"))

    def visit_class(node: ast.ClassDef, cls: object, indent: str) -> None:
        document(node, cls, indent + "    ")
        for child in node.body:
            if isinstance(child, ast.FunctionDef) and not child.name.startswith("__"):
                member = inspect.getattr_static(cls, child.name, None)
                if member is None:
                    continue
                if isinstance(member, (classmethod, staticmethod)):
                    member = member.__func__
                document(child, member, indent + "        ")

    for node in tree.body:
        if isinstance(node, ast.ClassDef) and hasattr(module, node.name):
            visit_class(node, getattr(module, node.name), "")
        elif isinstance(node, ast.FunctionDef) and hasattr(module, node.name):
            document(node, getattr(module, node.name), "    ")

    out = stub_text
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text + out[end:]
    return "\n".join(line.rstrip() for line in out.split("\n"))


def main() -> int:
    from meshtls import _meshtls

    current = STUB.read_text()
    wanted = render(current, _meshtls)
    if "--check" in sys.argv:
        if wanted != current:
            print(f"{STUB} is out of date: run python python/stubdocs.py", file=sys.stderr)
            return 1
        return 0
    STUB.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
