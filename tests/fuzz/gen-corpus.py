#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Regenerate the seed corpora in tests/fuzz/corpus/<target>/ from the real
interpreters on this machine (tests/integration/pythons.py finds them).

For each interpreter: run tests/fuzz/snap_target.py, let .output-fuzz/snapshot
(make .output-fuzz/snapshot) record what the real decoders read out of it
(frames, code objects, strings, line tables, _Py_DebugOffsets, maps), then cut
a small ELF out of its interpreter file: its headers, and the symbol table
and sections hangtrace looks up, without the code.  Needs root (it reads another
process's memory).  Every process it starts is killed by pid.

Usage: tests/fuzz/gen-corpus.py [OUTDIR]   (default tests/fuzz/corpus)
"""
import hashlib
import json
import os
import pathlib
import signal
import struct
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import pythons  # noqa: E402

SNAPSHOT = ROOT / ".output-fuzz" / "snapshot"
TARGET = ROOT / "tests" / "fuzz" / "snap_target.py"
# What the ELF seeds keep of an interpreter file: its ELF and program
# headers, these sections (cut to SECTION_MAX bytes), and of .dynsym only
# the symbols below: elfsym's lookups, on the interpreter's real tables.
ELF_SECTIONS = (".dynsym", ".dynstr", ".PyRuntime", ".data", ".bss")
ELF_SYMBOLS = (b"_PyRuntime", b"Py_GetVersion", b"PyCode_Type", b"_PyThreadState_Current",
               b"gil_cond", b"gil_mutex", b"Py_Initialize", b"PyUnicode_Type")
SECTION_MAX = 2048


def slim_elf(src, dst):
    """A small real ELF (ELF64, little endian) cut out of @src."""
    with open(src, "rb") as f:
        data = f.read()
    if data[:6] != b"\x7fELF\x02\x01":
        return False
    phoff, shoff = struct.unpack_from("<QQ", data, 0x20)
    phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHHH", data, 0x36)
    shdrs = [list(struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize))
             for i in range(shnum)]

    def sdata(h):
        return data[h[4]:h[4] + h[5]] if h[1] != 8 else b""  # 8: SHT_NOBITS

    names = sdata(shdrs[shstrndx])
    byname = {}
    for i, h in enumerate(shdrs):
        byname[names[h[0]:names.index(b"\0", h[0])].decode()] = i
    keep = [n for n in ELF_SECTIONS if n in byname]
    out = bytearray(data[:64] + data[phoff:phoff + phentsize * phnum])
    struct.pack_into("<Q", out, 0x20, 64)
    shstr = bytearray(b"\0")
    new_shdrs = [[0] * 10]
    blobs = {}
    if ".dynsym" in byname and ".dynstr" in byname:
        sym, strs = sdata(shdrs[byname[".dynsym"]]), sdata(shdrs[byname[".dynstr"]])
        newsym, newstr = bytearray(24), bytearray(b"\0")
        for i in range(1, len(sym) // 24):
            e = bytearray(sym[i * 24:i * 24 + 24])
            nm = struct.unpack_from("<I", e)[0]
            name = strs[nm:strs.index(b"\0", nm)]
            if name in ELF_SYMBOLS:
                struct.pack_into("<I", e, 0, len(newstr))
                newstr += name + b"\0"
                newsym += e
        blobs[".dynsym"], blobs[".dynstr"] = bytes(newsym), bytes(newstr)
    index = {}
    for n in keep:
        h = list(shdrs[byname[n]])
        blob = blobs.get(n, sdata(h)[:SECTION_MAX])
        h[0] = len(shstr)
        shstr += n.encode() + b"\0"
        if h[1] != 8:
            h[4], h[5] = len(out), len(blob)
            out += blob
        index[n] = len(new_shdrs)
        new_shdrs.append(h)
    for h in new_shdrs[1:]:
        if h[1] == 11:  # SHT_DYNSYM: sh_link names its string table
            h[6] = index.get(".dynstr", 0)
    new_shdrs.append([len(shstr), 3, 0, 0, len(out), len(shstr) + 10, 0, 0, 1, 0])
    shstr += b".shstrtab\0"
    new_shdrs[-1][4] = len(out)
    new_shdrs[-1][5] = len(shstr)
    out += shstr
    while len(out) % 8:
        out += b"\0"
    struct.pack_into("<Q", out, 0x28, len(out))
    struct.pack_into("<HH", out, 0x3c, len(new_shdrs), len(new_shdrs) - 1)
    for h in new_shdrs:
        out += struct.pack("<IIQQQQIIQQ", *h)
    with open(dst, "wb") as f:
        f.write(out)
    return True


def snap(py, outdir):
    tag = py.label
    p = subprocess.Popen(py.argv + [str(TARGET)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        line = p.stdout.readline()
        if not line.startswith("READY "):
            print("%s: no READY line: %r" % (tag, line))
            return
        ready = json.loads(line[len("READY "):])
        r = subprocess.run([str(SNAPSHOT), str(ready["pid"]), str(outdir), tag] + ready["strs"],
                           capture_output=True, text=True, timeout=60)
        sys.stdout.write(r.stdout)
        if r.returncode:
            print("%s: snapshot failed: %s" % (tag, r.stderr.strip()))
            return
        elf = [ln.split(" ", 1)[1] for ln in r.stdout.splitlines() if ln.startswith("elf ")]
        if elf:
            (outdir / "elfsym").mkdir(parents=True, exist_ok=True)
            path = "/proc/%d/root%s" % (ready["pid"], elf[0])
            if slim_elf(path, str(outdir / "elfsym" / tag)):
                print("wrote %s" % (outdir / "elfsym" / tag))
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)


def linetable_fixtures(outdir, per_file=4):
    """Line tables of every format from tests/unit/linetable-fixtures (real
    tables, CPython 3.6-3.15): the first few records of each file."""
    fmt = {6: 1, 7: 1, 8: 1, 9: 1, 10: 2}
    d = outdir / "linetable"
    d.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "tests" / "unit" / "linetable-fixtures").glob("*.txt")):
        n = 0
        for line in path.read_text().splitlines():
            if line.startswith("#") or n >= per_file:
                continue
            minor, first, hx = line.split()[:3]
            if hx == "-" or len(hx) > 2048:
                continue
            hdr = struct.pack("<B3xiq", fmt.get(int(minor), 3), int(first), 4)
            (d / ("fixture-%s-%d" % (path.stem, n))).write_bytes(hdr + bytes.fromhex(hx))
            n += 1


def dedupe(outdir):
    """Identical inputs (same interpreter build seen twice) are kept once."""
    for d in sorted(outdir.iterdir()):
        seen = set()
        for f in sorted(d.iterdir()):
            h = hashlib.sha1(f.read_bytes()).hexdigest()
            if h in seen:
                f.unlink()
            seen.add(h)


def main():
    outdir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "tests" / "fuzz" / "corpus")
    if not SNAPSHOT.exists():
        sys.exit("gen-corpus: build it first: make .output-fuzz/snapshot")
    if os.geteuid() != 0:
        sys.exit("gen-corpus: needs root (reads another process's memory)")
    outdir.mkdir(parents=True, exist_ok=True)
    for py in pythons.interpreters():
        print("== %s" % py.label)
        snap(py, outdir)
    linetable_fixtures(outdir)
    dedupe(outdir)


if __name__ == "__main__":
    main()
