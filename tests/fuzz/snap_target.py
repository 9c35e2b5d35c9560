# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# -*- coding: utf-8 -*-
"""The process tests/fuzz/snapshot reads: a few frames deep, blocked in a read
of stdin, with function names and strings of every str kind (ASCII, latin-1,
UCS-2, UCS-4, and legacy strings, which keep their data behind a pointer).
Runs on CPython 3.6 and up.  Prints READY and a JSON object of addresses."""
import json
import os
import sys


class Legacy(str):
    """Instances of str subclasses are not compact: their data is elsewhere."""


KEEP = [
    "ascii_only_name",
    "caf\u00e9_latin1",
    "\u0444\u0443\u043d\u043a\u0446\u0438\u044f_ucs2",
    "\U00020000_ucs4_\U0001f600",
    Legacy("legacy_caf\u00e9"),
    Legacy("legacy_\U00020000"),
    "x" * 3000,
    "",
]


def café(n):  # latin-1 name
    ready = {"pid": os.getpid(), "strs": [hex(id(s)) for s in KEEP]}
    sys.stdout.write("READY " + json.dumps(ready) + "\n")
    sys.stdout.flush()
    return sys.stdin.read(1)  # blocks until the snapshot is taken


def функция(n):  # UCS-2 name
    if n:
        return функция(n - 1)
    return café(n)


def 𠀀(n):  # UCS-4 name (CJK Extension B: an identifier, stable under NFKC)
    return функция(n)


class Outer:
    def method(self):
        return [𠀀(2) for _ in range(1)]


if __name__ == "__main__":
    Outer().method()
