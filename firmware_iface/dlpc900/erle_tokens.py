"""Token view of an ERLE stream (erle.py has the format), for documentation examples and
debugging: the stream as tokens, without checking the image geometry."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import CodecError


def _token_length(d: bytes, q: int) -> tuple[int, int]:
    """(ERLE length at byte q, position after it); CodecError if the stream ends inside it."""
    if q >= len(d):
        raise CodecError(f"ERLE stream ends inside a length at byte {q}")
    if d[q] < 128:
        return d[q], q + 1
    if q + 1 >= len(d):
        raise CodecError(f"ERLE stream ends inside a 2-byte length at byte {q}")
    return (d[q] & 0x7F) | d[q + 1] << 7, q + 2


def _token_word(d: bytes, q: int) -> int:
    """The 3-byte pixel word at byte q; CodecError if the stream ends inside it."""
    if q + 3 > len(d):
        raise CodecError(f"ERLE stream ends inside a pixel at byte {q}")
    return d[q] << 16 | d[q + 1] << 8 | d[q + 2]


def iter_erle_tokens(data: bytes) -> Iterator[tuple]:
    """Yield ERLE tokens as tuples: ("repeat", n, word), ("literal", [words]), ("copy", n),
    ("eol",), ("end",). Does not check line geometry."""
    d = bytes(data)
    p = 0
    while p < len(d):
        if d[p]:
            n, p = _token_length(d, p)
            yield ("repeat", n, _token_word(d, p))
            p += 3
        elif p + 1 >= len(d):
            raise CodecError(f"ERLE stream ends inside a control token at byte {p}")
        elif d[p + 1] == 0:
            yield ("eol",)
            p += 2
        elif d[p + 1] == 1:
            n, p = _token_length(d, p + 2)
            if n == 0:
                yield ("end",)
                return
            yield ("copy", n)
        else:
            n, p = _token_length(d, p + 1)
            yield ("literal", [_token_word(d, p + 3 * k) for k in range(n)])
            p += 3 * n
