"""The code page cmd.exe reads a batch file in, and a `cmd` script written in it (#19).

cmd.exe reads a batch file one byte per character in the console's code page, which is the
system's OEM code page (437 in the US, 850 in most of Europe, 932 in Japan...) unless `chcp`
changed it; a UTF-8 file comes out mangled (`ü` read as `├╝`). `chcp 65001` would need a
console (the agent may run without one, and a console it shares with its steps would stay
changed for the steps after), so the agent writes the script in the code page cmd.exe will
read it with and refuses, before anything runs, a script with a character that code page
lacks; `validate` reports the same from the image's system locale (`cmd-code-page`).
https://learn.microsoft.com/en-us/windows/win32/intl/code-pages
https://learn.microsoft.com/en-us/windows-server/administration/windows-commands/chcp
https://learn.microsoft.com/en-us/windows/console/getconsoleoutputcp
https://learn.microsoft.com/en-us/windows/win32/api/winnls/nf-winnls-getoemcp
"""

from __future__ import annotations

import codecs

# The OEM code page of a system locale (Windows' locale data, as GetOEMCP reports it): a
# language's entry applies to each of its regions except those listed by full tag.
OEM_CODE_PAGES = {
    "en-us": 437,
    "en": 850,
    "fr": 850,
    "de": 850,
    "es": 850,
    "it": 850,
    "pt": 850,
    "nl": 850,
    "sv": 850,
    "da": 850,
    "nb": 850,
    "fi": 850,
    "is": 850,
    "ru": 866,
    "uk": 866,
    "pl": 852,
    "cs": 852,
    "hu": 852,
    "tr": 857,
    "el": 737,
    "he": 862,
    "ar": 720,
    "ja": 932,
    "zh-cn": 936,
    "zh-tw": 950,
    "ko": 949,
    "th": 874,
    "vi": 1258,
    "lt": 775,
}


def oem_code_page(locale: str) -> int | None:
    """The OEM code page of a locale tag such as en-US, or None when not in the table."""
    tag = locale.lower()
    return OEM_CODE_PAGES.get(tag) or OEM_CODE_PAGES.get(tag.split("-")[0])


def codec(code_page: int) -> str:
    return "utf-8" if code_page == 65001 else f"cp{code_page}"


def outside(script: str, code_page: int) -> list[str]:
    """The distinct characters of `script` that `code_page` cannot encode, in order."""
    try:
        encoder = codecs.lookup(codec(code_page))
    except LookupError:
        return sorted({c for c in script if ord(c) > 127}, key=script.index)
    found: list[str] = []
    for char in script:
        if ord(char) > 127 and char not in found:
            try:
                encoder.encode(char)
            except UnicodeEncodeError:
                found.append(char)
    return found


def encode_script(script: str, code_page: int) -> bytes:
    """The script in `code_page`; ValueError naming the characters that code page lacks."""
    missing = outside(script, code_page)
    if missing:
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:5])
        raise ValueError(
            f"the cmd script has characters that cmd.exe cannot read in this machine's code "
            f"page {code_page}: {shown}; write them in a powershell step, or give the image "
            "a system locale whose code page has them"
        )
    return script.encode(codec(code_page))
