"""Text templates in the playbook (email subjects and bodies), in Jinja2's sandbox.

A template reads the lead, its account and its deal (`{{ lead.name }}`, `{{ deal.owner }}`);
a value that is missing renders as nothing (or its `default`), never as an error, and the
sandbox keeps a template from reaching anything but the values it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import ChainableUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_environment = ImmutableSandboxedEnvironment(undefined=ChainableUndefined, autoescape=False, keep_trailing_newline=True)

__all__ = ["HtmlTemplate", "TemplateError", "TextTemplate"]


class TextTemplate:
    """A compiled template; calling it with a context gives the text (TemplateError at compile time)."""

    __slots__ = ("source", "_template")

    def __init__(self, source: str) -> None:
        self.source = source
        self._template = _environment.from_string(source)

    def __call__(self, context: Mapping[str, Any]) -> str:
        try:
            return self._template.render(context)
        except TemplateError as error:  # e.g. a sandboxed attribute: say so in the text, do not fail the send
            return f"[template error: {error}]"


_html_environment = ImmutableSandboxedEnvironment(undefined=ChainableUndefined, autoescape=True,
                                                  keep_trailing_newline=True)


class HtmlTemplate(TextTemplate):
    """A template for HTML: every value it shows is escaped (`<` in a lead's name stays text), so
    lead data can never add markup or links to an email."""

    __slots__ = ()

    def __init__(self, source: str) -> None:
        self.source = source
        self._template = _html_environment.from_string(source)
