# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""--format svg and --format html, opened in headless Chromium as a user would.

Real targets are traced; the files are loaded in Chromium (DevTools protocol on
a pipe, tests/integration/browser.py), and the live DOM, after the page's
script ran, must draw the frames the test expects (exact function and
file:line) with widths matching the time the target measured itself; a
screenshot must show the reason colours of the legend; hover, zoom, search
(from the URL's #search= and from the page's own controls) must work; the
event-loop stall must be on the HTML timeline and outlined in the graph;
hostile names must stay text.
"""
import colorsys
import pathlib
import re
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

import browser
from conftest import SCENARIOS, TARGETS, Target, Tracer, marker_line, requires_root
from pythons import interpreters

pytestmark = [requires_root,
              pytest.mark.skipif(not browser.available(),
                                 reason="no %s (Debian package chromium)" % browser.CHROMIUM)]
PYS = interpreters()
LOOPS = TARGETS / "loops.py"
HOSTILE = TARGETS / "hostile_names.py"
SVGNS = "{http://www.w3.org/2000/svg}"
STALL_RGB = (0xd0, 0, 0)
MATCH_RGB = (230, 0, 230)

# Every frame drawn, as the page's script left it (document coordinates).
FRAMES_JS = """Array.from(document.querySelectorAll('#ht-frames .ht-frame')).map(function (g) {
    var r = g.querySelector('rect'), t = g.querySelector('text'), b = r.getBoundingClientRect();
    return {label: g.getAttribute('data-label'), cls: g.getAttribute('class'),
            x: +r.getAttribute('x'), y: +r.getAttribute('y'), w: +r.getAttribute('width'),
            title: g.querySelector('title').textContent, text: t ? t.textContent : null,
            box: [b.left + scrollX, b.top + scrollY, b.width, b.height]};
})"""


def box_js(selector):
    return """(function () { var e = document.querySelector(%r); if (!e) return null;
        var b = e.getBoundingClientRect();
        return [b.left + scrollX, b.top + scrollY, b.width, b.height]; })()""" % selector


def trace_to_files(procs, tmp_path, argv, formats, args=()):
    """Start target @argv, one hangtrace per format writing -o FILE, trigger, wait.
    Returns ({format: path}, what the target measured, target, seconds traced)."""
    t = Target(argv)
    procs.append(t)
    paths, tracers = {}, []
    t0 = time.monotonic()
    for fmt in formats:
        paths[fmt] = tmp_path / ("report." + fmt)
        tr = Tracer(t.pid, args=list(args) + ["-o", str(paths[fmt])], fmt=fmt)
        procs.append(tr)
        tracers.append(tr)
    t.trigger()
    done = t.wait_done()
    time.sleep(0.2)
    for tr in tracers:
        assert tr.stop() == ""  # the report went to the file
    return paths, done, t, time.monotonic() - t0


@pytest.fixture
def chromium(procs):
    b = browser.Browser()
    procs.append(b)
    return b


def frame_label(function, path, line):
    return "%s (%s:%d)" % (function, path, line)


def by_label(frames, label):
    found = [f for f in frames if f["label"] == label]
    assert len(found) == 1, (label, [f["label"] for f in frames])
    return found[0]


def children(frames, parent):
    """The frames drawn directly above @parent, inside its span."""
    return [f for f in frames if abs(f["y"] - (parent["y"] - 16)) < 0.01
            and f["x"] >= parent["x"] - 0.01 and f["x"] + f["w"] <= parent["x"] + parent["w"] + 0.01]


def secs_of(f, root):
    """What a frame's width stands for, in seconds of the root's total."""
    return f["w"] / root["w"] * root_seconds(root)


def root_seconds(root):
    return float(re.search(r"^([0-9.]+) s, 100\.0% of all", root["title"], re.M).group(1))


def dominant(img, box, inset=2):
    x, y, w, h = box
    crop = img.crop((int(x + inset), int(y + inset), int(x + w - inset), int(y + h - inset)))
    return max(crop.getcolors(crop.size[0] * crop.size[1]))[1]


def hue(rgb):
    return colorsys.rgb_to_hsv(*[c / 255 for c in rgb])[0] * 360


def hue_diff(a, b):
    d = abs(hue(a) - hue(b)) % 360
    return min(d, 360 - d)


def legend_rgb(page, img, kind):
    box = page.eval(box_js("#ht-legend-%s rect" % kind))
    assert box, "no legend entry for %s" % kind
    return dominant(img, box, inset=3)


def close(reported, truth, rel=0.1, floor=0.005):
    return abs(reported - truth) <= max(rel * truth, floor)


def no_markup_from_target(page):
    """Nothing from the target became markup, and the page's script ran cleanly."""
    assert page.errors == []
    assert page.eval("document.getElementById('ht-flame').getAttribute('data-ready')") == "1"
    assert page.eval("typeof window.__pwned") == "undefined"
    assert page.eval("document.querySelectorAll('script').length") == 2
    assert page.eval("document.querySelectorAll('img, i').length") == 0


def test_profile_svg(procs, tmp_path, chromium):
    """--what all: on-CPU burn() and off-CPU rest() side by side, with exact frames,
    widths matching the target's own clocks, reason colours, hover, zoom, search."""
    py = PYS[-1]
    paths, done, t, traced = trace_to_files(
        procs, tmp_path, py.argv + [str(SCENARIOS), "profile", "0.6"], ["svg"],
        ["--what", "all"])
    ET.parse(paths["svg"])  # well-formed XML
    page = chromium.open(paths["svg"].as_uri())
    no_markup_from_target(page)
    frames = page.eval(FRAMES_JS)
    root = by_label(frames, "all")
    assert root["w"] == pytest.approx(1180)
    total = root_seconds(root)
    assert done["rested"] + 0.5 * done["burned"] <= total <= traced + 0.1, (total, done, traced)

    # rest(): its exact frame, on its caller's, with the [sleep] leaf on top
    rest = by_label(frames, frame_label("rest", SCENARIOS, marker_line(SCENARIOS, "rest")))
    caller = by_label(frames, frame_label("profile_scenario", SCENARIOS,
                                          marker_line(SCENARIOS, "call_rest")))
    assert rest in children(frames, caller)
    assert close(secs_of(rest, root), done["rested"]), (secs_of(rest, root), done)
    # (a sample may catch the thread on its way into the sleep: an [on-cpu] leaf beside)
    leaf = [f for f in children(frames, rest) if f["label"] == "[sleep]"]
    assert len(leaf) == 1 and close(secs_of(leaf[0], root), done["rested"])
    assert "reason: sleep" in rest["title"] and "count: 1 block" in rest["title"]

    # burn(): on-CPU samples at its loop's lines, the '+= 1' line among them
    burns = [f for f in frames if f["label"].startswith("burn (%s:" % SCENARIOS)]
    lines = {int(f["label"].rsplit(":", 1)[1].rstrip(")")) for f in burns}
    assert marker_line(SCENARIOS, "burn") in lines, lines
    burn_caller = by_label(frames, frame_label("profile_scenario", SCENARIOS,
                                               marker_line(SCENARIOS, "call_burn")))
    assert all(b in children(frames, burn_caller) for b in burns)
    on_cpu = [c for b in burns for c in children(frames, b) if c["label"] == "[on-cpu]"]
    on_s = sum(secs_of(c, root) for c in on_cpu)
    # 199 Hz samples of the burn's own CPU time: within 25% (sampling noise)
    assert close(on_s, done["burned_cpu"], rel=0.25), (on_s, done)

    # colours: the legend's palette for each reason is what the frames are drawn in
    img = page.screenshot()
    sleep_rgb, cpu_rgb = legend_rgb(page, img, "sleep"), legend_rgb(page, img, "on-cpu")
    assert hue_diff(sleep_rgb, cpu_rgb) > 60, (sleep_rgb, cpu_rgb)
    assert hue_diff(dominant(img, leaf[0]["box"]), sleep_rgb) <= 12
    assert hue_diff(dominant(img, rest["box"]), sleep_rgb) <= 12
    widest = max(on_cpu, key=lambda f: f["w"])
    assert hue_diff(dominant(img, widest["box"]), cpu_rgb) <= 12

    # hover: the details line says what the frame is, how long, what share, why
    x, y, w, h = rest["box"]
    page.mouse(x + w / 2, y + h / 2)
    details = page.eval("document.getElementById('ht-details').textContent")
    m = re.search(r"^rest \(.*:(\d+)\) \| ([0-9.]+) s, ([0-9.]+)% of all \| reason: sleep", details)
    assert m and int(m.group(1)) == marker_line(SCENARIOS, "rest"), details
    assert close(float(m.group(2)), done["rested"])
    assert float(m.group(3)) == pytest.approx(100 * float(m.group(2)) / total, abs=0.2)

    # click to zoom on rest()'s caller: it and rest() span the graph; burn() is gone
    x, y, w, h = caller["box"]
    page.click(x + w / 2, y + h / 2)
    zoomed = page.eval(FRAMES_JS)
    assert by_label(zoomed, caller["label"])["w"] == pytest.approx(1180)
    assert by_label(zoomed, rest["label"])["w"] == pytest.approx(1180)
    assert not [f for f in zoomed if f["label"].startswith("burn (")]
    assert "ht-parent" in by_label(zoomed, "all")["cls"]
    # ... and Reset Zoom brings everything back
    box = page.eval(box_js("#ht-reset"))
    page.click(box[0] + box[2] / 2, box[1] + box[3] / 2)
    back = page.eval(FRAMES_JS)
    assert len(back) == len(frames) and by_label(back, rest["label"])["w"] == pytest.approx(rest["w"])
    assert "ht-hidden" in page.eval("document.getElementById('ht-reset').getAttribute('class')")

    # search from the page's own Search button (it prompts)
    since = len(chromium.events)
    page.eval("setTimeout(function () { document.getElementById('ht-search-button')"
              ".dispatchEvent(new MouseEvent('click', {bubbles: true})); }, 0); 1")
    chromium.wait_event("Page.javascriptDialogOpening", page.session, since)
    page.call("Page.handleJavaScriptDialog", {"accept": True, "promptText": "burn ("})
    matched = page.eval("document.getElementById('ht-matched').textContent")
    m = re.fullmatch(r"Matched: ([0-9.]+)% \(([0-9.]+) s\)", matched)
    assert m, matched
    burn_s = sum(secs_of(b, root) for b in burns)
    assert float(m.group(2)) == pytest.approx(burn_s, abs=0.002 + 0.002 * len(burns))
    assert done["burned_cpu"] * 0.75 <= float(m.group(2)) <= done["burned"] * 1.1 + 0.01
    marked = [f for f in page.eval(FRAMES_JS) if "ht-match" in f["cls"]]
    assert sorted(f["label"] for f in marked) == sorted(b["label"] for b in burns)


def test_search_from_url_and_html_page(procs, tmp_path, chromium):
    """#search= in the URL marks the matches on load and shows the matched share;
    the HTML page has the summary, the same graph, and a search box that works."""
    py = PYS[-1]
    paths, done, t, _ = trace_to_files(
        procs, tmp_path, py.argv + [str(SCENARIOS), "profile", "0.6"], ["svg", "html"],
        ["--what", "all"])
    rest_label = frame_label("rest", SCENARIOS, marker_line(SCENARIOS, "rest"))
    for fmt in ("svg", "html"):
        page = chromium.open(paths[fmt].as_uri() + "#search=" + urllib.parse.quote(rest_label))
        no_markup_from_target(page)
        frames = page.eval(FRAMES_JS)
        root = by_label(frames, "all")
        rest = by_label(frames, rest_label)
        assert "ht-match" in rest["cls"]
        assert [f["label"] for f in frames if "ht-match" in f["cls"]] == [rest_label]
        assert close(secs_of(rest, root), done["rested"])
        matched = page.eval("document.getElementById('ht-matched').textContent")
        m = re.fullmatch(r"Matched: ([0-9.]+)% \(([0-9.]+) s\)", matched)
        assert m, matched
        assert close(float(m.group(2)), done["rested"]), (matched, done)
        assert float(m.group(1)) == pytest.approx(100 * float(m.group(2)) / root_seconds(root),
                                                  abs=0.2)
        img = page.screenshot()
        assert dominant(img, rest["box"]) == MATCH_RGB

    # the HTML page: summary first
    assert page.eval("document.querySelector('h1').textContent") == "hangtrace: process %d" % t.pid
    row = page.eval("document.querySelector('#ht-threads tr:nth-child(2)').textContent")
    assert row.startswith("%d (main)" % t.pid) and "sleep 0.6" in row, row
    items = page.eval("Array.from(document.querySelectorAll('#ht-blockers li.ht-blocker'))"
                      ".map(function (li) { return li.textContent; })")
    mine = [li for li in items if rest_label in li]
    assert len(mine) == 1, items
    m = re.match(r"([0-9.]+) s sleep \(\w+\) in thread %d " % t.pid, mine[0])
    assert m and close(float(m.group(1)), done["rested"]), mine[0]
    assert page.eval("document.getElementById('ht-matched-html').textContent") == matched
    assert page.eval("document.getElementById('ht-search').value") == rest_label
    # typing in the search box searches
    page.eval("var i = document.getElementById('ht-search'); i.focus(); i.select(); 1")
    page.call("Input.insertText", {"text": "burn ("})
    matched = page.eval("document.getElementById('ht-matched-html').textContent")
    m = re.fullmatch(r"Matched: ([0-9.]+)% \(([0-9.]+) s\)", matched)
    assert m, matched
    assert done["burned_cpu"] * 0.75 <= float(m.group(2)) <= done["burned"] * 1.1 + 0.01
    assert urllib.parse.unquote(page.eval("location.hash")) == "#search=burn ("


def test_loop_stall_timeline_and_outline(procs, tmp_path, chromium):
    """time.sleep() in a coroutine: the HTML timeline shows the stall (when, how long,
    blamed on sleepy() at its line), the graph outlines the blamed frames."""
    py = PYS[-1]
    paths, done, t, _ = trace_to_files(procs, tmp_path, py.argv + [str(LOOPS), "sleep"],
                                       ["html", "svg"])
    sleepy = frame_label("sleepy", LOOPS, marker_line(LOOPS, "sleepy"))
    page = chromium.open(paths["html"].as_uri())
    no_markup_from_target(page)

    loop = page.eval("document.querySelector('.ht-loop[data-tid=\"%d\"]').textContent" % t.pid)
    assert re.search(r"event loop: [1-9]\d* stalls? >= 100 ms, longest ([0-9.]+) s", loop), loop
    longest = float(re.search(r"longest ([0-9.]+) s", loop).group(1))
    assert close(longest, done["blocked"]), (loop, done)

    bars = page.eval("""Array.from(document.querySelectorAll('#ht-timeline .ht-bar')).map(function (r) {
        return {start: +r.getAttribute('data-start-ns'), dur: +r.getAttribute('data-dur-ns'),
                tid: +r.getAttribute('data-tid'), x: +r.getAttribute('x'), w: +r.getAttribute('width'),
                title: r.querySelector('title').textContent}; })""")
    bar = max(bars, key=lambda b: b["dur"])
    assert bar["tid"] == t.pid and close(bar["dur"] / 1e9, done["blocked"]), (bar, done)
    assert "blamed on: sleep" in bar["title"] and " in " + sleepy in bar["title"], bar["title"]
    assert "running: main" in bar["title"] and "await asyncio.sleep()" in bar["title"]
    track = page.eval("""(function () { var r = document.querySelector('#ht-timeline rect');
        return [+r.getAttribute('x'), +r.getAttribute('width')]; })()""")
    duration = float(page.eval("document.getElementById('ht-duration').textContent").split()[0])
    assert bar["w"] / track[1] == pytest.approx(done["blocked"] / duration, rel=0.12)
    assert (bar["x"] - track[0]) / track[1] == pytest.approx(bar["start"] / 1e9 / duration,
                                                             abs=0.01)
    first = page.eval("document.querySelector('#ht-blockers li').textContent")
    assert sleepy in first and "inside 1 event-loop stall" in first and "asyncio.sleep()" in first

    # the graph: sleepy() and its [sleep] leaf outlined, the legend says why
    frames = page.eval(FRAMES_JS)
    f = by_label(frames, sleepy)
    assert "ht-stall" in f["cls"], f
    m = re.search(r"blamed for event-loop stalls: ([0-9.]+) s inside 1 stall", f["title"])
    assert m and close(float(m.group(1)), done["blocked"]), f["title"]
    assert page.eval("document.getElementById('ht-legend-stall').textContent").startswith(
        "outlined: blamed for event-loop stalls")
    assert not [g for g in frames if "ht-stall" in g["cls"] and g["label"].startswith("socket.")]
    img = page.screenshot()
    x, y, w, h = f["box"]
    red_rows = [sum(1 for i in range(int(x) + 3, int(x + w) - 3)
                    if img.getpixel((i, yy)) == STALL_RGB) for yy in (int(y) - 1, int(y), int(y) + 1)]
    assert max(red_rows) >= 0.8 * (int(x + w) - int(x) - 6), red_rows

    # clicking the stall on the timeline finds its frame in the graph
    page.eval("document.querySelector('#ht-timeline .ht-bar[data-dur-ns=\"%d\"]').scrollIntoView(); 1"
              % bar["dur"])
    vb = page.eval("""(function () { var b = document.querySelector('#ht-timeline .ht-bar[data-dur-ns="%d"]')
        .getBoundingClientRect(); return [b.left, b.top, b.width, b.height]; })()""" % bar["dur"])
    page.click(vb[0] + vb[2] / 2, vb[1] + vb[3] / 2)
    marked = [g["label"] for g in page.eval(FRAMES_JS) if "ht-match" in g["cls"]]
    assert marked == [sleepy], marked

    # the standalone SVG outlines the same frame
    ET.parse(paths["svg"])
    svg = chromium.open(paths["svg"].as_uri())
    no_markup_from_target(svg)
    assert "ht-stall" in by_label(svg.eval(FRAMES_JS), sleepy)["cls"]


def test_hostile_names(procs, tmp_path, chromium):
    """Markup, quotes, ]]>, control characters, invalid UTF-8 and 10 KB names from
    the target: the SVG stays well-formed XML, both files render without script
    errors, and each name shows as escaped text."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("hostile_names", str(HOSTILE))
    hostile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hostile)
    py = [p for p in PYS if p.version[:2] >= (3, 8)][-1]
    argv = py.argv + [str(HOSTILE), "0.5", "<script>window.__pwned=3</script>\x02", b"\xfe]]>"]
    paths, done, t, _ = trace_to_files(procs, tmp_path, argv, ["svg", "html"])

    func = hostile.FUNC.replace("\udcff", "\ufffd")
    comm = hostile.COMM.decode("utf-8", "replace")
    for fmt in ("svg", "html"):
        raw = paths[fmt].read_bytes()
        raw.decode("utf-8")  # valid UTF-8
        assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", raw), fmt
        if fmt == "svg":
            tree = ET.parse(paths[fmt])
            assert len(tree.getroot().findall(".//" + SVGNS + "script")) == 2
            assert not [e for e in tree.iter() if e.tag.split("}")[-1] in ("img", "i")]
        page = chromium.open(paths[fmt].as_uri())
        no_markup_from_target(page)
        frames = page.eval(FRAMES_JS)
        mine = [f for f in frames if f["label"].startswith(func[:200])]
        assert len(mine) == 1, [f["label"][:80] for f in frames]
        f = mine[0]
        assert f["label"].endswith(" (%s:%d)" % (hostile.FILE, hostile.LINE)), f["label"][-80:]
        assert close(secs_of(f, by_label(frames, "all")), done["slept"])
        # shown escaped: control characters as \xNN, never raw; long names cut
        assert "\\x01\\x1b[31m\ufffd" in f["title"] and "\\x07\\x7f.py:2)" in f["title"]
        assert not re.search(r"[\x00-\x1f\x7f]", f["title"].replace("\n", ""))
        assert len(f["title"]) < 2000
        thread = [g for g in frames if g["label"].startswith(comm + "-")]
        assert len(thread) == 1 and thread[0]["title"].startswith('<i>"\ufffd\\x01]]>-')
        if fmt == "html":
            names = page.eval("Array.from(document.querySelectorAll('#ht-threads td:nth-child(2)'))"
                              ".map(function (td) { return td.textContent; })")
            assert '<i>"\ufffd\\x01]]>' in names, names
            assert "<script>window.__pwned=3</script>\\x02 \ufffd]]>" in page.eval(
                "document.querySelector('.ht-cmdline').textContent")
            assert "window.__pwned=3" in page.eval("document.title")
            shown = page.eval("document.querySelector('#ht-blockers').textContent")
            assert func[:60].replace("\x01", "\\x01").replace("\x1b", "\\x1b") in shown


def test_nothing_recorded(procs, tmp_path, chromium):
    """--what oncpu with sampling off: a valid page that says so, no script error."""
    py = PYS[-1]
    paths, _, _, _ = trace_to_files(procs, tmp_path, py.argv + [str(SCENARIOS), "sleep", "0.3"],
                                    ["svg"], ["--what", "oncpu", "--sample-hz", "0"])
    ET.parse(paths["svg"])
    page = chromium.open(paths["svg"].as_uri())
    no_markup_from_target(page)
    assert page.eval(FRAMES_JS) == []
    assert page.eval("document.querySelector('.ht-empty').textContent") == (
        "Nothing was recorded for --what oncpu (on-CPU sampling was off: --sample-hz 0).")


def test_truncated_deep_stack(procs, tmp_path, chromium):
    """A stack cut at --max-frames: 128 recurse() frames on a <truncated> marker, as in
    folded output, all drawn, the innermost at its line with the [sleep] leaf on top."""
    py = PYS[-1]
    paths, done, t, _ = trace_to_files(procs, tmp_path,
                                       py.argv + [str(SCENARIOS), "recursion", "0.3"], ["svg"])
    page = chromium.open(paths["svg"].as_uri())
    no_markup_from_target(page)
    frames = page.eval(FRAMES_JS)
    trunc = by_label(frames, "<truncated>")
    assert children(frames, trunc) and trunc["y"] == by_label(frames, "all")["y"] - 3 * 16
    bottom = by_label(frames, frame_label("recurse", SCENARIOS, marker_line(SCENARIOS, "recurse_bottom")))
    assert [c["label"] for c in children(frames, bottom)] == ["[sleep]"]
    assert (trunc["y"] - bottom["y"]) / 16 == 128
    assert sum(1 for f in frames if f["label"].startswith("recurse (")) == 128
