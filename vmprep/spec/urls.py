"""The one URL rule for every URL in a spec (download, phone-home, report, wait_for) and the
header rule for download headers.

- No user name or password (`https://user:pw@host/`): the URL is baked into the image, so the
  credential would be too; a header with a `{secret: name}` value is the way.
- A host name in its ASCII form only: an internationalised name must be written as its
  A-label (`xn--...`, RFC 5891 section 5.2; https://www.rfc-editor.org/rfc/rfc5891), so that
  a look-alike host (`аpple.com` with a Cyrillic `а`) cannot pass review.
- No control character, white space or backslash anywhere (a backslash is a `/` to some
  clients and part of the user name to others).
- Header names are HTTP tokens and values hold no control character (CR/LF would start a new
  header: https://www.rfc-editor.org/rfc/rfc9110#section-5.5).
"""

from __future__ import annotations

from urllib.parse import urlsplit

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def url_problem(url: str, *, schemes: tuple[str, ...] = ("https",)) -> str | None:
    """Why `url` cannot be used, or None. `schemes`: the schemes this field accepts."""
    for c in url:
        code = ord(c)
        if code <= 0x20 or 0x7F <= code <= 0x9F or c.isspace():
            return "contains white space or a control character"
        if c == "\\":
            return "contains a backslash"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in schemes:
        return f"must start with {' or '.join(s + '://' for s in schemes)}"
    if "@" in parts.netloc:
        return "holds a user name or password, which would be baked into the image"
    host = parts.hostname
    if not host:
        return "has no host"
    if not host.isascii():
        try:
            a_label = host.encode("idna").decode("ascii")
        except UnicodeError:
            return f"has the host '{host}', which is not a valid international domain name"
        return f"has the non-ASCII host '{host}'; write its A-label '{a_label}' instead"
    for label in host.split("."):
        if label.lower().startswith("xn--"):
            try:
                label.encode("ascii").decode("idna")
            except UnicodeError:
                return f"has '{label}', which is not a valid A-label"
    return None


def header_problem(name: str, value: object) -> str | None:
    """Why a download header cannot be sent as written, or None."""
    if not name or not set(name) <= _TOKEN:
        return "is not an HTTP header name (letters, digits and ! # $ % & ' * + - . ^ _ ` | ~)"
    if isinstance(value, str) and any(
        (ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value
    ):
        return "has a value with a control character (CR or LF would start a new header)"
    return None
