"""A small builder over ElementTree for answer files: components with their five attributes,
settings whose text is checked for what XML 1.0 can carry, and a record of which spec path
produced each setting (for `render --explain`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from vmprep.problems import Problem
from vmprep.render.errors import problem
from vmprep.spec import Spec
from vmprep.spec.load import JsonPath

NS = "urn:schemas-microsoft-com:unattend"
WCM = "http://schemas.microsoft.com/WMIConfig/2002/State"
PUBLIC_KEY_TOKEN = "31bf3856ad364e35"
# ElementTree cannot write a default namespace when attributes are unqualified (`pass`,
# `name`, ...), so elements are built unqualified and the root carries the two namespace
# declarations as written in every real answer file; a namespace-aware parser reads the result
# exactly as Windows does (the tests parse it that way).


@dataclass(frozen=True)
class Setting:
    """One setting written to unattend.xml, for `--explain`."""

    pass_name: str
    component: str
    setting: str  # e.g. "UserAccounts/LocalAccounts/LocalAccount[1]/Name"
    value: str  # shown value; passwords are never shown
    source: JsonPath | None  # the spec path that produced it; None for fixed text


def xml_text_problem(text: str) -> str | None:
    """Why `text` cannot round-trip through an XML 1.0 element, or None."""
    for char in text:
        code = ord(char)
        if (
            (code < 0x20 and char not in "\t\n\r")
            or 0xD800 <= code <= 0xDFFF
            or code in (0xFFFE, 0xFFFF)
        ):
            return f"contains U+{code:04X}, which XML 1.0 cannot carry"
    return None


class AnswerFile:
    def __init__(self, spec: Spec, architecture: str) -> None:
        self.spec = spec
        self.architecture = architecture
        self.root = ET.Element("unattend", {"xmlns": NS, "xmlns:wcm": WCM})
        self.settings: list[Setting] = []
        self.problems: list[Problem] = []
        self._passes: dict[str, ET.Element] = {}
        self._labels: dict[int, tuple[str, str, str]] = {}  # id(element) -> pass, component, path

    def component(self, pass_name: str, name: str) -> ET.Element:
        settings = self._passes.get(pass_name)
        if settings is None:
            settings = ET.SubElement(self.root, "settings", {"pass": pass_name})
            self._passes[pass_name] = settings
        attrs = {
            "name": name,
            "processorArchitecture": self.architecture,
            "publicKeyToken": PUBLIC_KEY_TOKEN,
            "language": "neutral",
            "versionScope": "nonSxS",
        }
        element = ET.SubElement(settings, "component", attrs)
        self._labels[id(element)] = (pass_name, name, "")
        return element

    def group(self, parent: ET.Element, tag: str, *, key: str | None = None) -> ET.Element:
        """A container setting; with `key`, a list item (`wcm:action="add"`)."""
        element = ET.SubElement(parent, tag)
        pass_name, component, path = self._labels[id(parent)]
        label = f"{path}/{tag}".lstrip("/")
        if key is not None:
            element.set("wcm:action", "add")
            if key:
                element.set("wcm:keyValue", key)
            label += f"[{sum(1 for c in parent if c.tag == element.tag)}]"
        self._labels[id(element)] = (pass_name, component, label)
        return element

    def value(
        self,
        parent: ET.Element,
        tag: str,
        text: str | bool | int,
        source: JsonPath | None,
        *,
        shown: str | None = None,
    ) -> None:
        if isinstance(text, bool):
            text = "true" if text else "false"
        text = str(text)
        reason = xml_text_problem(text)
        if reason is not None and source is not None:
            self.problems.append(problem(self.spec, source, "xml-text", f"the value {reason}"))
        element = ET.SubElement(parent, tag)
        element.text = text
        pass_name, component, path = self._labels[id(parent)]
        setting = f"{path}/{tag}".lstrip("/")
        self.settings.append(
            Setting(pass_name, component, setting, text if shown is None else shown, source)
        )

    def to_bytes(self) -> bytes:
        ET.indent(self.root, space="  ")
        body = ET.tostring(self.root, encoding="unicode")
        # ElementTree writes a carriage return in text as is, and every XML parser reads it back
        # as a newline. Only text content can hold one here (attributes are escaped, and indent
        # adds bare newlines), so a character reference keeps it exact.
        body = body.replace("\r", "&#13;")
        return ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode("utf-8")
