"""mkdocs hook: the docstrings are written in reST, which the mkdocstrings python handler
renders as Markdown. Three reST habits are fixed up in the rendered pages:

* roles (``:class:`~genevent.Remove```) are shown as code, Sphinx's way (``~``: the last name);
* a literal block's ``::`` marker is dropped (the indented block is already code);
* a simple table (rows between ``====  ====`` rules) becomes an HTML table.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|data|mod|attr|exc|obj):<code>(~?)([^<]+)</code>")
_MARKER = re.compile(r"<p>::</p>\n?")
_RULE = r"=+(?: +=+)+"
_TABLE = re.compile(rf"<p>{_RULE}\n(.*?)\n{_RULE}\n(.*?)\n{_RULE}</p>", re.S)


def _code(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    return f"<code>{target.rsplit('.', 1)[-1] if short else target}</code>"


def _cells(line: str, tag: str) -> str:
    return "".join(f"<{tag}>{cell}</{tag}>" for cell in re.split(r" {2,}", line.strip()))


def _table(match: re.Match[str]) -> str:
    head = "".join(f"<tr>{_cells(line, 'th')}</tr>" for line in match.group(1).splitlines())
    body = "".join(f"<tr>{_cells(line, 'td')}</tr>" for line in match.group(2).splitlines())
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def on_page_content(html: str, **kwargs: Any) -> str:
    """Rewrite what reST left in the rendered docstrings."""
    html = _ROLE.sub(_code, html)
    html = _MARKER.sub("", html)
    return _TABLE.sub(_table, html)
