"""The Colab edition: every chapter as a notebook that renders outside the book.

    python tools/colab_edition.py [--out DIR]     (make colab)

Colab, JupyterLab and GitHub render plain Markdown and MathJax, not MyST. This script reads each
chapter notebook listed in ``_toc.yml`` and writes ``_build/colab/chapters/<chapter>.ipynb`` with the
MyST flattened to plain Markdown, numbered exactly as the book numbers it:

- label targets ``(name)=`` are dropped; ``{math}`` blocks and ``$$...$$ (label)`` become
  ``$$ ... \\tag{1.2} $$``; ``{eq}``, ``{numref}`` and ``{ref}`` become the book's numbers or titles
  (a link to the online book when the target is in another chapter); ``{doc}`` links to the online book;
- ``{exercise}`` and ``{prf:...}`` become numbered blockquotes with bold titles, ``{solution}`` a
  closed ``<details>`` block, admonitions and similar directives blockquotes;
- citations become author-year from ``chapters/references.bib`` and ``{footbibliography}`` the list of
  the works cited since the previous one;
- figures of code cells (MyST-NB ``mystnb.figure`` metadata) get their number and caption in a
  Markdown cell after the cell;
- ``{glue}`` roles take their value from the book's last execution of the chapter's current code
  (the execution cache of ``make book``), else a short placeholder naming the cell that computes it;
- cells tagged ``remove-cell``, ``remove-input`` or ``hidden-check`` are dropped; the install cell
  stays first.

Colab's own interface then does what the book's toggles do (``write``, ``make colab``; the student
and solution copies of ``tools/assignments.py`` are flattened without it):

- a code exercise (a cell with ``# BEGIN SOLUTION`` blocks) becomes its **stub** (each solution
  block replaced by ``raise NotImplementedError(...)``, as in a student copy), then its **solution**
  in a cell Colab shows folded (``cellView: form``, first line ``#@title Solution (double-click to
  show)``), then its check: the solution is one click away, and "Run all" still completes, since
  the stub only defines what the folded solution redefines before the check runs;
- other cells tagged ``hide-input`` or ``hide-cell`` (plotting, glue, claims) are folded the same
  way, titled by their first comment line;
- an evidence block (``:::{admonition} Evidence: ...`` with ``:class: dropdown``) becomes a
  **collapsed section**: a heading cell listed in the notebook's ``metadata.colab.collapsed_sections``
  (Colab's format: the ids of the heading cells whose sections start collapsed), its text, and the
  folded code cells after it. A Colab section runs to the next heading of the same or a higher
  level, so this needs a heading (or the end) right after the block's cells; where the main text
  goes on instead, the block becomes a closed ``<details>`` (any other dropdown admonition too).

Any directive or role this script does not know stops it with an error naming the chapter and the
cell, so new MyST cannot leak into the edition as raw text.
"""

# (no `from __future__ import annotations`: tests import this file without registering it in sys.modules,
#  which dataclasses with string annotations would need)

import argparse
import copy
import hashlib
import dataclasses
import importlib.util
import json
import pathlib
import re
import sys
from ast import literal_eval

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "colab"
DROP_TAGS = {"remove-cell", "remove-input", "hidden-check"}
FOLD_TAGS = {"hide-input", "hide-cell"}
SOLUTION_TITLE = "#@title Solution (double-click to show)"
EVIDENCE = "Evidence"
PROOF_TYPES = ("axiom", "theorem", "lemma", "algorithm", "definition", "remark", "conjecture", "corollary",
               "criterion", "example", "property", "observation", "proposition", "assumption", "notation")
ADMONITIONS = ("note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error",
               "seealso", "margin", "sidebar", "topic", "epigraph")
# Sphinx's numfig formats (defaults of Sphinx, sphinx-exercise and sphinx-proof; _config.yml may override)
NUMFIG_FORMAT = {"figure": "Fig. %s", "table": "Table %s", "code-block": "Listing %s", "exercise": "Exercise %s",
                 **{t: f"{t} %s" for t in PROOF_TYPES}}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, pathlib.Path(__file__).resolve().parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class EditionError(Exception):
    """MyST the edition cannot flatten (names the chapter and the cell)."""


# ---------------------------------------------------------------------------------------------
# the book: configuration, chapter numbers, bibliography


@dataclasses.dataclass
class Book:
    root: pathlib.Path
    base_url: str              # the online book, ending in "/"
    repo_url: str
    version: str
    numfig_format: dict
    chapters: list[str]        # docnames of the notebook chapters, book order ("chapters/01_data_model")
    numbers: dict              # docname -> chapter number ("1") or None (an unnumbered chapter)
    bib: object                # pybtex BibliographyData
    root_doc: str = "intro"    # the landing page (_toc.yml's root), numbered first


def base_url(config: dict) -> str:
    """The online book: ``html.baseurl`` of _config.yml, else the GitHub Pages address of the repository."""
    explicit = (config.get("html") or {}).get("baseurl")
    if explicit:
        return explicit.rstrip("/") + "/"
    m = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", config["repository"]["url"])
    if not m:
        raise EditionError(f"_config.yml: repository.url {config['repository']['url']!r} is not a GitHub URL "
                           "and html.baseurl is not set: cannot tell where the online book lives")
    return f"https://{m.group(1)}.github.io/{m.group(2)}/"


def chapter_numbers(toc: dict) -> dict[str, str | None]:
    """Docname -> the book's chapter number, as Jupyter Book numbers them (numbered parts continue
    one sequence across parts)."""
    numbers: dict[str, str | None] = {}
    count = 0
    for part in toc.get("parts", [{"chapters": toc.get("chapters", []), "numbered": False}]):
        for chapter in part.get("chapters", []):
            if chapter.get("sections"):
                raise EditionError(f"_toc.yml: {chapter['file']} has sections; the edition numbers flat chapters only")
            if part.get("numbered"):
                count += 1
                numbers[chapter["file"]] = str(count)
            else:
                numbers[chapter["file"]] = None
    return numbers


def load_book(root: pathlib.Path = ROOT) -> Book:
    import pybtex.database

    config = yaml.safe_load((root / "_config.yml").read_text())
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    repo_url, version = _load("notebooks").release(root)
    numfig = {**NUMFIG_FORMAT, **((config.get("sphinx") or {}).get("config") or {}).get("numfig_format", {})}
    numbers = chapter_numbers(toc)
    chapters = [d for d in numbers if (root / f"{d}.ipynb").exists()]
    bibfiles = config.get("bibtex_bibfiles", [])
    bib = pybtex.database.BibliographyData()
    for f in bibfiles:
        for key, entry in pybtex.database.parse_file(str(root / f)).entries.items():
            bib.add_entry(key, entry)
    return Book(root, base_url(config), repo_url, version, numfig, chapters, numbers, bib, toc.get("root", "intro"))


def _latex_text(s: str) -> str:
    from pybtex.richtext import Text

    return Text.from_latex(s).render_as("text")


def author_year(book: Book, key: str, style: str, where: str) -> str:
    """``style``: t (Yang et al. (2023)), p (Yang et al., 2023), author, year; ts/ps: all authors."""
    if key not in book.bib.entries:
        raise EditionError(f"{where}: citation key {key!r} is not in the bibliography")
    entry = book.bib.entries[key]
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    last = [_latex_text(" ".join(p.prelast_names + p.last_names)) for p in people]
    if not last:
        names = _latex_text(entry.fields.get("organization", key))
    elif len(last) == 1:
        names = last[0]
    elif len(last) == 2 or style.endswith("s"):
        names = ", ".join(last[:-1]) + " and " + last[-1]
    else:
        names = f"{last[0]} et al."
    year = entry.fields.get("year", "n.d.")
    return {"t": f"{names} ({year})", "ts": f"{names} ({year})", "p": f"{names}, {year}", "ps": f"{names}, {year}",
            "author": names, "year": year}[style]


def reference_list(book: Book, keys: list[str]) -> str:
    """A Markdown list of the given entries, in the bibliography style the book uses (plain, by author)."""
    import pybtex.plugin
    from pybtex.database import BibliographyData

    style = pybtex.plugin.find_plugin("pybtex.style.formatting", "plain")()
    data = BibliographyData({k: book.bib.entries[k] for k in dict.fromkeys(keys)})
    entries = style.format_entries(style.sort(data.entries.values()))
    # HTML inside Markdown: the Markdown backend's escapes (``\\(``) would read as TeX delimiters to MathJax
    return "\n".join("- " + " ".join(e.text.render_as("html").split()) for e in entries)


# ---------------------------------------------------------------------------------------------
# MyST blocks


@dataclasses.dataclass
class Directive:
    name: str
    argument: str
    options: dict
    body: str
    indent: str


FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|:{3,}|~{3,})[ \t]*(?P<info>.*)$")
DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[^}\s]+)\}[ \t]*(?P<arg>.*)$")


def blocks(text: str) -> list:
    """Split Markdown into str (plain Markdown), ("code", text) and Directive items, top level only."""
    lines = text.split("\n")
    out: list = []
    plain: list[str] = []
    i = 0
    while i < len(lines):
        m = FENCE_OPEN.match(lines[i])
        if not m or (m.group("fence")[0] == ":" and not m.group("info").startswith("{")):
            plain.append(lines[i])
            i += 1
            continue
        fence, indent = m.group("fence"), m.group("indent")
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        body = [ln[len(indent):] if ln.startswith(indent) else ln.lstrip() for ln in lines[i + 1 : j]]
        d = DIRECTIVE_INFO.match(m.group("info").strip())
        if plain:
            out.append("\n".join(plain))
            plain = []
        if d is None:
            out.append(("code", "\n".join(lines[i : j + 1])))
        else:
            options, body = _options(body)
            out.append(Directive(d.group("name"), d.group("arg").strip(), options, "\n".join(body), indent))
        i = j + 1
    if plain:
        out.append("\n".join(plain))
    return out


def _options(body: list[str]) -> tuple[dict, list[str]]:
    if body and body[0].strip() == "---":
        end = next(k for k in range(1, len(body)) if body[k].strip() == "---")
        return yaml.safe_load("\n".join(body[1:end])) or {}, body[end + 1 :]
    options, k = {}, 0
    while k < len(body):
        m = re.match(r"^:([\w-]+):(?:[ \t]+(.*))?$", body[k].strip())
        if not m:
            break
        options[m.group(1)] = (m.group(2) or "").strip()
        k += 1
    return options, body[k:]


LABEL_LINE = re.compile(r"^[ \t]*\((?P<label>[^()\s]+)\)=[ \t]*$", re.M)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
ROLE = re.compile(r"\{(?P<name>[A-Za-z][\w:.+-]*)\}(?P<ticks>`+)(?P<content>.+?)(?<!`)(?P=ticks)(?!`)", re.S)
CODE_SPAN = re.compile(r"(?P<ticks>`+)(?!`).+?(?<!`)(?P=ticks)(?!`)", re.S)
DISPLAY_MATH = re.compile(r"\$\$(?P<body>.+?)\$\$(?:[ \t]*\((?P<label>[^()\s]+)\))?", re.S)
PLAIN_TARGETS = re.compile(r"(?P<target>^[ \t]*\((?P<tlabel>[^()\s]+)\)=[ \t]*$)|(?P<heading>^#{1,6}[ \t]+.+?$)"
                           r"|\$\$.+?\$\$(?:[ \t]*\((?P<mlabel>[^()\s]+)\))?", re.M | re.S)
INLINE = re.compile(ROLE.pattern + "|" + CODE_SPAN.pattern.replace("ticks", "cticks") + "|" + DISPLAY_MATH.pattern, re.S)


# ---------------------------------------------------------------------------------------------
# pass 1: every numbered or labelled thing in the book


@dataclasses.dataclass
class Target:
    doc: str
    kind: str           # equation, figure, table, exercise, a proof type, section
    number: str | None
    title: str
    anchor: str


class Collector:
    """Numbers the targets of one chapter in document order, as Sphinx does."""

    def __init__(self, book: Book, doc: str, targets: dict, counts: dict | None = None):
        self.book, self.doc, self.targets = book, doc, targets
        # Sphinx numbers the unnumbered documents (the landing page, unnumbered parts) with one
        # counter per kind across all of them, in reading order: pass the shared ``counts``
        self.counts: dict[str, int] = {} if counts is None else counts
        self.pending_label: str | None = None

    def next_number(self, kind: str) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        chapter = self.book.numbers.get(self.doc)
        return f"{chapter}.{self.counts[kind]}" if chapter else str(self.counts[kind])

    def add(self, label: str, kind: str, number: str | None, title: str, anchor: str | None = None):
        if label in self.targets:
            raise EditionError(f"{self.doc}: label {label!r} defined twice (also in {self.targets[label].doc})")
        self.targets[label] = Target(self.doc, kind, number, title, anchor or label)

    def markdown(self, text: str):
        for item in blocks(text):
            if isinstance(item, Directive):
                self.directive(item)
            elif isinstance(item, str):
                self.plain(item)

    def plain(self, text: str):
        for m in PLAIN_TARGETS.finditer(text):
            if m.group("tlabel"):
                self.pending_label = m.group("tlabel")
            elif m.group("heading"):
                if self.pending_label:
                    self.add(self.pending_label, "section", None, m.group("heading").lstrip("#").strip())
                    self.pending_label = None
            elif m.group("mlabel"):
                self.add(m.group("mlabel"), "equation", self.next_number("equation"), "", f"equation-{m.group('mlabel')}")

    def directive(self, d: Directive):
        label = d.options.get("label") or d.options.get("name")
        if d.name == "math" and label:
            self.add(label, "equation", self.next_number("equation"), "", f"equation-{label}")
        elif d.name == "figure" or d.name in ("table", "list-table"):
            kind = "figure" if d.name == "figure" else "table"
            number = self.next_number(kind)
            if label:
                self.add(label, kind, number, d.argument if kind == "table" else d.body.strip())
        elif d.name == "exercise":
            number = None if "nonumber" in d.options else self.next_number("exercise")
            if label:
                self.add(label, "exercise", number, d.argument)
        elif d.name.startswith("prf:") and d.name[4:] in PROOF_TYPES:
            kind = d.name[4:]
            number = None if "nonumber" in d.options else self.next_number(kind)
            if label:
                self.add(label, kind, number, d.argument)
        if d.name not in ("math", "code", "code-block", "code-cell"):
            self.markdown(d.body)

    def figure_cell(self, cell: dict):
        fig = cell["metadata"].get("mystnb", {}).get("figure")
        if fig is not None:
            number = self.next_number("figure")
            if fig.get("name"):
                self.add(fig["name"], "figure", number, fig.get("caption", ""))
            return number
        return None


# ---------------------------------------------------------------------------------------------
# pass 2: flatten


class Flattener:
    def __init__(self, book: Book, doc: str, targets: dict, glue: dict, cells: list, cell_index: int):
        self.book, self.doc, self.targets, self.glue = book, doc, targets, glue
        self.cells, self.cell_index = cells, cell_index
        self.cited: list[str] = []

    @property
    def where(self) -> str:
        return f"{self.doc}.ipynb, cell {self.cell_index}"

    def fail(self, message: str):
        raise EditionError(f"{self.where}: {message}")

    # -- references
    def url(self, target: Target) -> str:
        return f"{self.book.base_url}{target.doc}.html#{target.anchor}"

    def target(self, label: str, role: str) -> Target:
        if label not in self.targets:
            self.fail(f"{{{role}}}`{label}`: no such label in the book")
        return self.targets[label]

    def ref_text(self, text: str, target: Target) -> str:
        return text if target.doc == self.doc else f"[{text}]({self.url(target)})"

    def role(self, name: str, content: str) -> str:
        explicit = re.fullmatch(r"(?P<text>.*?)\s*<(?P<label>[^<>]+)>", content, re.S)
        text, label = (explicit.group("text"), explicit.group("label")) if explicit else (None, content.strip())
        if name == "eq":
            t = self.target(label, name)
            if t.kind != "equation":
                self.fail(f"{{eq}}`{label}` is not an equation")
            return self.ref_text(text or f"({t.number})", t)
        if name == "numref":
            t = self.target(label, name)
            fmt = self.book.numfig_format.get(t.kind)
            if fmt is None or t.number is None:
                self.fail(f"{{numref}}`{label}`: a {t.kind} has no number in the book")
            shown = (text or fmt).replace("%s", t.number).replace("{number}", t.number).replace("{name}", t.title)
            return self.ref_text(shown, t)
        if name == "ref":
            t = self.target(label, name)
            shown = text or t.title or (self.book.numfig_format.get(t.kind, "%s").replace("%s", t.number or ""))
            return self.ref_text(self.inline(shown), t)
        if name == "doc":
            path = (pathlib.PurePosixPath(self.doc).parent / label).as_posix() if not label.startswith("/") else label[1:]
            path = re.sub(r"\.(ipynb|md)$", "", path)
            path = "/".join(p for p in path.split("/") if p != ".")
            while "/../" in f"/{path}":
                path = re.sub(r"[^/]+/\.\./", "", path, count=1)
            if not text:
                text = self.doc_title(path)
            return f"[{text}]({self.book.base_url}{path}.html)"
        cite = re.fullmatch(r"(foot)?cite(?::(t|p|ts|ps|author|year))?", name)
        if cite:
            style = cite.group(2) or "p"
            keys = [k.strip() for k in content.split(",") if k.strip()]
            if cite.group(1):
                self.cited += keys
            parts = [author_year(self.book, k, style, self.where) for k in keys]
            return f"({'; '.join(parts)})" if style in ("p", "ps") else ", ".join(parts)
        if name in ("glue", "glue:", "glue:any", "glue:text", "glue:md"):
            return self.glue_value(name, content)
        if name == "math":
            return f"${content}$"
        if name == "download":
            return f"[{text or pathlib.PurePosixPath(label).name}]({self.download_url(label)})"
        if name in ("sub", "sup", "kbd"):
            return f"<{name}>{content}</{name}>"
        if name in ("abbr", "term", "index"):
            return re.sub(r"\s*\([^()]*\)$|\s*<[^<>]*>$", "", content) if name != "index" else ""
        self.fail(f"unknown role {{{name}}}`{content}` (teach tools/colab_edition.py to flatten it)")

    def download_url(self, label: str) -> str:
        """Where the online book serves a file of the {download} role: Sphinx copies it to
        ``_downloads/<md5 of its path relative to the book's root>/<name>``."""
        rel = (pathlib.PurePosixPath(self.doc).parent / label).as_posix() if not label.startswith("/") else label[1:]
        parts = []
        for part in rel.split("/"):
            if part == "..":
                parts.pop() if parts else self.fail(f"{{download}}`{label}`: outside the book")
            elif part not in ("", "."):
                parts.append(part)
        rel = "/".join(parts)
        digest = hashlib.md5(rel.encode()).hexdigest()
        return f"{self.book.base_url}_downloads/{digest}/{pathlib.PurePosixPath(rel).name}"

    def doc_title(self, docname: str) -> str:
        path = self.book.root / f"{docname}.ipynb"
        if path.exists():
            for cell in json.loads(path.read_text())["cells"]:
                if cell["cell_type"] == "markdown":
                    h = re.search(r"^#\s+(.+)$", "".join(cell["source"]), re.M)
                    if h:
                        return h.group(1).strip()
        md = self.book.root / f"{docname}.md"
        if md.exists():
            h = re.search(r"^#\s+(.+)$", md.read_text(), re.M)
            if h:
                return h.group(1).strip()
        self.fail(f"{{doc}}`{docname}`: no such document with a title")

    def glue_value(self, role: str, content: str) -> str:
        key, fmt = content, ""
        if role == "glue:text" and ":" in content:
            key, fmt = content.rsplit(":", 1)
        if "::" in key:
            self.fail(f"{{{role}}}`{content}`: glue from another document is not supported")
        data = self.glue.get(key)
        if data is not None:
            if role == "glue:md" and "text/markdown" in data:
                return data["text/markdown"]
            if "text/plain" in data:
                from myst_nb.core.variables import format_plain_text

                return format_plain_text(data["text/plain"], fmt) if fmt else str(_unquote(data["text/plain"]))
        where = "below" if self.glue_cell(key) > self.cell_index else "above"
        return f"*(`{key}`, computed in a cell {where})*" if self.glue_cell(key) >= 0 else f"*(`{key}`, computed in this notebook)*"

    def glue_cell(self, key: str) -> int:
        pattern = re.compile(rf"""glue\(\s*(?:name\s*=\s*)?["']{re.escape(key)}["']""")
        for i, c in enumerate(self.cells):
            if c["cell_type"] == "code" and pattern.search("".join(c["source"])):
                return i
        return -1

    # -- inline text
    def inline(self, text: str) -> str:
        def sub(m: re.Match) -> str:
            if m.group("name"):
                return self.role(m.group("name"), m.group("content"))
            if m.group("cticks"):
                return m.group(0)
            return self.display_math(m.group("body"), m.group("label"))

        return INLINE.sub(sub, text)

    def display_math(self, body: str, label: str | None) -> str:
        tex = body.strip()
        parts = [p.strip() for p in re.split(r"\n[ \t]*\n", tex) if p.strip()]
        parts = [rf"\begin{{split}}{p}\end{{split}}" if "\\\\" in p and not p.lstrip().startswith("\\begin") else p
                 for p in parts]
        tex = parts[0] if len(parts) == 1 else r"\begin{gathered}" + r" \\ ".join(parts) + r"\end{gathered}"
        if label:
            t = self.target(label, "math")
            tex += rf" \tag{{{t.number}}}"
        return f"$$\n{tex}\n$$"

    # -- blocks
    def markdown(self, text: str) -> str:
        return self._render(blocks(text))

    def _render(self, items: list) -> str:
        out = []
        for item in items:
            if isinstance(item, Directive):
                rendered = self.directive(item).strip("\n")
                out.append("\n".join(item.indent + ln if ln else ln for ln in rendered.split("\n")))
            elif isinstance(item, tuple):
                out.append(item[1])
            else:
                out.append(self.plain(item))
        # a directive is a block of its own: a blank line on either side, never more than one
        joined = ""
        for piece in out:
            if joined and piece:
                joined = joined.rstrip("\n") + "\n\n"
            joined += piece.lstrip("\n") if joined else piece
        return joined

    def plain(self, text: str) -> str:
        text = LABEL_LINE.sub("", text)
        if re.search(r"\{\{.*?\}\}", CODE_SPAN.sub("", text)):
            self.fail("MyST substitution {{ ... }}: not supported by the edition")
        return self.inline(text)

    def details(self, summary: str, body: str) -> str:
        return f"<details>\n<summary>{summary}</summary>\n\n{self.markdown(body).strip()}\n\n</details>\n"

    def pieces(self, text: str) -> list:
        """The cell's Markdown flattened, split at its top-level evidence blocks: a list of str
        (flattened Markdown) and (title, flattened body) pairs, one per evidence block."""
        out, plain = [], []
        for item in blocks(text):
            if (isinstance(item, Directive) and item.name == "admonition" and not item.indent
                    and item.argument.startswith(EVIDENCE)
                    and "dropdown" in str(item.options.get("class", "")).split()):
                if plain:
                    out.append(self._render(plain))
                    plain = []
                out.append((self.inline(item.argument), self.markdown(item.body).strip()))
            else:
                plain.append(item)
        if plain:
            out.append(self._render(plain))
        return [p for p in out if not isinstance(p, str) or p.strip()]

    def titled(self, title: str, body: str, end: str = "") -> str:
        inner = f"**{title}**" + ("\n\n" + self.markdown(body).strip() if body.strip() else "") + end
        return "\n" + "\n".join("> " + ln if ln.strip() else ">" for ln in inner.split("\n")) + "\n"

    def directive(self, d: Directive) -> str:
        name, label = d.name, d.options.get("label") or d.options.get("name")
        if name == "math":
            if d.argument:
                self.fail("{math} with an argument on the directive line is not supported")
            return self.display_math(d.body, label)
        if name in ("code", "code-block", "sourcecode"):
            return f"```{d.argument}\n{d.body}\n```"
        if name == "admonition":
            if "dropdown" in str(d.options.get("class", "")).split():
                return self.details(self.inline(d.argument) or "Details", d.body)
            return self.titled(self.inline(d.argument) or "Note", d.body)
        if name in ADMONITIONS:
            title = self.inline(d.argument) if d.argument and name in ("topic", "sidebar") else name.capitalize()
            body = d.body if not (d.argument and name not in ("topic", "sidebar")) else d.argument + "\n" + d.body
            return self.titled("See also" if name == "seealso" else title, body)
        if name == "dropdown":
            return self.details(self.inline(d.argument) or "Details", d.body)
        if name == "exercise":
            number = self.targets[label].number if label else None
            if not label and "nonumber" not in d.options:
                self.fail("{exercise} without a :label: (the edition numbers exercises by label)")
            title = self.book.numfig_format["exercise"].replace("%s", number) if number else "Exercise"
            if d.argument:
                title += f" ({self.inline(d.argument)})"
            return self.titled(title, d.body)
        if name == "solution":
            t = self.target(d.argument, "solution")
            title = "Solution to " + self.book.numfig_format["exercise"].replace("%s", t.number or "")
            return f"<details>\n<summary><b>{title.strip()}</b></summary>\n\n{self.markdown(d.body).strip()}\n\n</details>\n"
        if name.startswith("prf:"):
            kind = name[4:]
            if kind == "proof":
                return self.titled("Proof.", d.body, end="\n\n∎")
            if kind not in PROOF_TYPES:
                self.fail(f"unknown directive {{{name}}}")
            number = self.targets[label].number if label else None
            if not label and "nonumber" not in d.options:
                self.fail(f"{{{name}}} without a :label: (the edition numbers these by label)")
            title = kind.capitalize() + (f" {number}" if number else "")
            if d.argument:
                title += f" ({self.inline(d.argument)})"
            return self.titled(title, d.body)
        if name == "footbibliography":
            if not self.cited:
                return ""
            listing, self.cited = reference_list(self.book, self.cited), []
            return listing
        if name == "figure":
            t = self.targets.get(label) if label else None
            src = d.argument if re.match(r"https?://", d.argument) else (
                f"{self.book.repo_url.replace('https://github.com/', 'https://raw.githubusercontent.com/')}"
                f"/v{self.book.version}/{(pathlib.PurePosixPath(self.doc).parent / d.argument).as_posix()}")
            caption = self.markdown(d.body).strip()
            number = f"**{self.book.numfig_format['figure'].replace('%s', t.number)}** " if t else ""
            return f"![{d.options.get('alt', '')}]({src})\n\n{number}{caption}\n"
        self.fail(f"unknown directive {{{name}}} (teach tools/colab_edition.py to flatten it)")


def _unquote(text: str):
    try:
        value = literal_eval(text)
    except (SyntaxError, ValueError):
        return text
    return value if isinstance(value, str) else text


# ---------------------------------------------------------------------------------------------
# chapters


def executed_glue(executed: dict | None) -> dict:
    """The values glued (MyST-NB ``glue``) in an executed notebook: name -> mime bundle."""
    values = {}
    for cell in (executed or {}).get("cells", []):
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook")
            if meta:
                prefix = meta.get("mime_prefix", "")
                values[meta["name"]] = {k[len(prefix):]: "".join(v) if isinstance(v, list) else v
                                        for k, v in out.get("data", {}).items()}
    return values


def collect(book: Book) -> dict:
    """Every labelled or numbered target of the book, numbered as Sphinx numbers them: each numbered
    chapter on its own ("1.2"), the unnumbered documents (the landing page first, then unnumbered
    chapters and pages in reading order) sharing one count ("3")."""
    targets: dict = {}
    shared: dict = {}
    for doc in [book.root_doc, *book.numbers]:
        counts = shared if book.numbers.get(doc) is None else None
        md = book.root / f"{doc}.md"
        if not (book.root / f"{doc}.ipynb").exists():
            if md.exists():
                try:
                    Collector(book, doc, targets, counts).markdown(md.read_text())
                except EditionError as e:
                    raise EditionError(f"{doc}.md: {e}") from None
            continue
        nb = json.loads((book.root / f"{doc}.ipynb").read_text())
        c = Collector(book, doc, targets, counts)
        for i, cell in enumerate(nb["cells"]):
            try:
                if cell["cell_type"] == "markdown":
                    c.markdown("".join(cell["source"]))
                elif cell["cell_type"] == "code":
                    c.figure_cell(cell)
            except EditionError as e:
                raise EditionError(f"{doc}.ipynb, cell {i}: {e}") from None
    return targets


def banner(book: Book, doc: str) -> dict:
    return {"cell_type": "markdown", "id": "colab-edition", "metadata": {},
            "source": [f"*Colab edition of a chapter of [the online book]({book.base_url}{doc}.html), "
                       f"release v{book.version}. Run the first cell to install the book's package "
                       f"(`prunebook=={book.version}`).*"]}


def edition(book: Book, doc: str, targets: dict, nb: dict | None = None, *, colab_ui: bool = True) -> dict:
    """The Colab edition of chapter ``doc`` (or of ``nb``, a copy of that chapter, e.g. a student copy).

    ``colab_ui``: fold code exercises' solutions, hide-input/hide-cell cells and evidence blocks with
    Colab's forms and collapsed sections (module docstring); False keeps every cell as it is (the
    flattened student and solution copies)."""
    path = book.root / f"{doc}.ipynb"
    nb = json.loads(path.read_text()) if nb is None else nb
    glue = executed_glue(_load("notebooks").executed(path, book.root))
    cells, out = nb["cells"], []
    flat = None
    for i, cell in enumerate(cells):
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & DROP_TAGS:
            continue
        new = copy.deepcopy(cell)
        if flat is None:
            flat = Flattener(book, doc, targets, glue, cells, i)
        flat.cell_index = i
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"])
            if colab_ui:
                out += _markdown_cells(flat, new, source, i)
                continue
            new["source"] = flat.markdown(source).strip("\n")
        elif cell["cell_type"] == "code":
            new["outputs"], new["execution_count"] = [], None
            new["metadata"].pop("mystnb", None)
            if colab_ui and "colab-install" not in tags:
                folded = _fold(new, tags, f"{doc}.ipynb, cell {i}")
                out += folded[:-1]
                new = folded[-1]
        out.append(new)
        fig = cell["metadata"].get("mystnb", {}).get("figure") if cell["cell_type"] == "code" else None
        if fig is not None:
            name = fig.get("name")
            number = targets[name].number if name else None
            head = f"**{book.numfig_format['figure'].replace('%s', number)}.** " if number else ""
            out.append({"cell_type": "markdown", "id": f"{cell.get('id', i)}-caption", "metadata": {},
                        "source": head + flat.inline(fig.get("caption", ""))})
        if i == 0 and "colab-install" in tags:
            out.append(banner(book, doc))
    if not out or "colab-install" not in out[0].get("metadata", {}).get("tags", []):
        raise EditionError(f"{doc}.ipynb: the first cell is not the install cell (run tools/notebooks.py sync)")
    if flat is not None and flat.cited:
        raise EditionError(f"{doc}.ipynb: cites {flat.cited} after its last {{footbibliography}}")
    out, collapsed = _sections(out, flat) if colab_ui else (out, [])
    result = {"cells": out, "metadata": copy.deepcopy(nb["metadata"]), "nbformat": 4, "nbformat_minor": 5}
    result["metadata"]["colab"] = {"name": pathlib.PurePosixPath(doc).name + ".ipynb", "provenance": [],
                                   **({"collapsed_sections": collapsed} if collapsed else {})}
    for c in result["cells"]:
        c["source"] = c["source"].splitlines(keepends=True) if isinstance(c["source"], str) else c["source"]
    leaks = raw_myst(result)
    if leaks:
        raise EditionError(f"{doc}.ipynb: MyST left in the edition: {leaks}")
    return result


def _markdown_cells(flat: "Flattener", cell: dict, source: str, index: int) -> list[dict]:
    """A markdown cell, flattened; each top-level evidence block becomes a placeholder cell
    (metadata ``prunebook_evidence``) that :func:`_sections` turns into a section or a <details>."""
    base = cell.get("id", f"cell-{index}")
    cells = []
    for k, piece in enumerate(flat.pieces(source)):
        cid = base if k == 0 else f"{base}-{k}"
        if isinstance(piece, str):
            cells.append({**cell, "id": cid, "source": piece.strip("\n")})
        else:
            cells.append({"cell_type": "markdown", "id": cid, "metadata": {"prunebook_evidence": piece[0]},
                          "source": piece[1]})
    return cells or [{**cell, "source": ""}]


def _title(source: str, fallback: str) -> str:
    first = source.lstrip("\n").split("\n", 1)[0].strip()
    text = first.lstrip("#").strip() if first.startswith("#") and not first.startswith("#@") else ""
    return (text or fallback).replace('"', "'")


def _fold(cell: dict, tags: set, where: str) -> list[dict]:
    """A code cell as Colab shows it: an exercise as stub + folded solution; a hide-input/hide-cell
    cell folded under a title; any other cell unchanged."""
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    if "# BEGIN SOLUTION" in source:
        assignments = _load("assignments")
        stub = {**copy.deepcopy(cell), "source": assignments.strip_code(source, where)}
        stub["metadata"]["tags"] = [t for t in stub["metadata"].get("tags", []) if t not in FOLD_TAGS]
        solution_lines = [ln for ln in source.split("\n") if ln.strip() not in (assignments.BEGIN, assignments.END)]
        solution = {"cell_type": "code", "execution_count": None, "id": f"{cell.get('id', 'exercise')}-solution",
                    "outputs": [], "source": SOLUTION_TITLE + "\n" + "\n".join(solution_lines),
                    "metadata": {"cellView": "form", "tags": ["solution"]}}
        return [stub, solution]
    if tags & FOLD_TAGS:
        folded = copy.deepcopy(cell)
        folded["metadata"]["cellView"] = "form"
        title = _title(source, "Code (double-click to show)")
        folded["source"] = f'#@title {title}\n{source}'
        return [folded]
    return [cell]


def _heading_level(cell: dict) -> int | None:
    if cell["cell_type"] != "markdown":
        return None
    m = re.match(r"^(#{1,6})[ \t]+\S", "".join(cell["source"]).lstrip("\n"))
    return len(m.group(1)) if m else None


def _last_heading_level(cell: dict) -> int | None:
    if cell["cell_type"] != "markdown":
        return None
    text = re.sub(r"^(`{3,}|~{3,}).*?^\1[ \t]*$", "", "".join(cell["source"]), flags=re.M | re.S)
    levels = [len(m.group(1)) for m in re.finditer(r"^(#{1,6})[ \t]+\S", text, re.M)]
    return levels[-1] if levels else None


def _sections(cells: list[dict], flat: "Flattener") -> tuple[list[dict], list[str]]:
    """Evidence placeholders -> a collapsed section (heading cell + body) where a heading of the same
    or a higher level (or the end) follows the block's folded code cells; else a closed <details>."""
    out, collapsed, level = [], [], 1
    for k, cell in enumerate(cells):
        title = cell.get("metadata", {}).get("prunebook_evidence")
        h = _last_heading_level(cell)
        if h is not None:
            level = h
        if title is None:
            out.append(cell)
            continue
        own = min(level + 1, 6)
        j = k + 1
        while j < len(cells) and cells[j]["cell_type"] == "code" and cells[j]["metadata"].get("cellView") == "form" \
                and "solution" not in cells[j]["metadata"].get("tags", []):
            j += 1
        after = _heading_level(cells[j]) if j < len(cells) and "prunebook_evidence" not in cells[j]["metadata"] else None
        body = cell["source"]
        if j == len(cells) or (after is not None and after <= own):
            hid = f"{cell['id']}-evidence"
            out.append({"cell_type": "markdown", "id": hid, "metadata": {"id": hid},
                        "source": f"{'#' * own} {title}"})
            out.append({"cell_type": "markdown", "id": cell["id"], "metadata": {}, "source": body})
            collapsed.append(hid)
        else:
            out.append({"cell_type": "markdown", "id": cell["id"], "metadata": {},
                        "source": f"<details>\n<summary>{title}</summary>\n\n{body}\n\n</details>"})
    return out, collapsed


RAW_MYST = re.compile(r"\{[A-Za-z][\w:.+-]*\}`|^[ \t]*(?:`{3,}|:{3,})[ \t]*\{|^[ \t]*\([^()\s]+\)=[ \t]*$", re.M)


def raw_myst(nb: dict) -> list[str]:
    """MyST syntax (roles, directive fences, label targets) left in the Markdown cells."""
    found = []
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] == "markdown":
            text = "".join(c["source"])
            text = re.sub(r"^(`{3,})[^\n{]*\n.*?^\1[ \t]*$", "", text, flags=re.M | re.S)  # plain code blocks
            found += [f"cell {i}: {m.group(0).strip()}" for m in RAW_MYST.finditer(CODE_SPAN.sub("", text))]
    return found


def flatten_notebook(nb: dict, root: pathlib.Path = ROOT) -> dict:
    """The flattened (Colab-edition) form of a copy of a chapter, e.g. a student or solution copy.

    The chapter is named by the copy's metadata ``prunebook.assignment`` (its file stem). Cell
    metadata (exercise ids, ``check`` and ``parameters`` tags) and answer cells are kept.
    """
    stem = nb.get("metadata", {}).get("prunebook", {}).get("assignment")
    book = load_book(root)
    doc = next((d for d in book.chapters if pathlib.PurePosixPath(d).name == stem), None)
    if doc is None:
        raise EditionError(f"notebook: metadata prunebook.assignment {stem!r} names no chapter of the book")
    flat = edition(book, doc, collect(book), nb=copy.deepcopy(nb), colab_ui=False)
    flat["metadata"]["prunebook"] = copy.deepcopy(nb["metadata"]["prunebook"])
    return flat


def write(out: pathlib.Path = OUT, root: pathlib.Path = ROOT) -> list[pathlib.Path]:
    book = load_book(root)
    targets = collect(book)
    written = []
    for doc in book.chapters:
        nb = edition(book, doc, targets)
        path = out / f"{doc}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, default=OUT, help="output folder (default _build/colab)")
    args = ap.parse_args(argv)
    try:
        paths = write(args.out, ROOT)
    except EditionError as e:
        print(f"colab edition: {e}", file=sys.stderr)
        return 1
    for p in paths:
        print(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
