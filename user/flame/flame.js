// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// hangtrace flame graph: draws the tree in the script element #ht-data into svg#ht-flame,
// and in the HTML report the event-loop stall timeline into svg#ht-timeline.
// Embedded in every svg/html file by user/flame.c; runs in the file, offline.
// Names come from the traced program: they only ever reach the page through
// textContent and setAttribute, never as markup.
(function () {
	'use strict';
	var SVGNS = 'http://www.w3.org/2000/svg';
	var dataEl = document.getElementById('ht-data');
	var svg = document.getElementById('ht-flame');
	if (!dataEl || !svg)
		return;
	var data = JSON.parse(dataEl.textContent);
	var standalone = svg.getAttribute('class').indexOf('ht-standalone') >= 0;
	var W = 1200, PAD = 10, FH = 16, MINW = 0.1, TIP_MAX = 500;

	// One palette per kind: [base hue, saturation %, lightness %]; a frame's
	// shade varies a little with its name, as in flamegraph.pl.
	var PALETTE = {
		'on-cpu': [12, 75, 58], cpu: [12, 75, 58], gil: [48, 85, 52],
		child: [85, 55, 50], socket: [125, 50, 52], io: [175, 55, 45],
		sleep: [215, 65, 62], lock: [265, 55, 65], 'page-fault': [335, 65, 65],
		runqueue: [0, 0, 62], other: [200, 12, 70], idle: [0, 0, 85]
	};
	var NEUTRAL = 'hsl(0, 0%, 82%)';
	var SPREAD = 6;

	// --- helpers ----------------------------------------------------------
	function el(name, attrs, parent) {
		var e = document.createElementNS(SVGNS, name);
		for (var k in attrs)
			e.setAttribute(k, String(attrs[k]));
		if (parent)
			parent.appendChild(e);
		return e;
	}
	function txt(parent, x, y, s, cls) {
		var t = el('text', { x: x, y: y }, parent);
		if (cls)
			t.setAttribute('class', cls);
		t.textContent = s;
		return t;
	}
	// Control characters as \xNN (as the text report shows them), long names cut.
	function clean(s, max) {
		s = String(s).replace(/[\x00-\x1f\x7f]/g, function (c) {
			return '\\x' + ('0' + c.charCodeAt(0).toString(16)).slice(-2);
		});
		if (max && s.length > max)
			s = s.slice(0, max) + '... (' + (s.length - max) + ' more characters)';
		return s;
	}
	function secs(ns) {
		return (ns / 1e9).toFixed(3) + ' s';
	}
	function pct(part, whole) {
		return whole ? (100 * part / whole).toFixed(1) + '%' : '0%';
	}
	function hash(s) {
		var h = 2166136261;
		for (var i = 0; i < s.length; i++) {
			h ^= s.charCodeAt(i);
			h = Math.imul(h, 16777619);
		}
		return (h >>> 0) / 4294967296;
	}
	function baseColour(kind) {
		var p = PALETTE[kind] || PALETTE.other;
		return 'hsl(' + p[0] + ', ' + p[1] + '%, ' + p[2] + '%)';
	}
	function frameColour(kind, name) {
		var p = PALETTE[kind] || PALETTE.other, v = hash(name);
		var h = (p[0] + (v - 0.5) * 2 * SPREAD + 360) % 360;
		var l = p[2] + (hash(name + '~') - 0.5) * 8;
		return 'hsl(' + h.toFixed(1) + ', ' + p[1] + '%, ' + l.toFixed(1) + '%)';
	}

	// --- the tree -----------------------------------------------------------
	var nodes = [];
	function prepare(n, parent, depth) {
		n.id = nodes.length;
		nodes.push(n);
		n.parent = parent;
		n.depth = depth;
		n.c = n.c || [];
		n.k = n.k || {};
		// a frame with neither file nor line is a marker: <truncated>
		n.located = n.t === 'f' && (n.f !== undefined || n.l !== undefined);
		n.file = n.f !== undefined ? data.files[n.f] : '?';
		n.label = n.located ? n.n + ' (' + n.file + (n.l !== undefined ? ':' + n.l : '') + ')' : n.n;
		var best = null;
		for (var k in n.k)
			if (best === null || n.k[k] > n.k[best])
				best = k;
		n.kind = best;
		for (var i = 0; i < n.c.length; i++)
			prepare(n.c[i], n, depth + 1);
	}
	var root = data.tree;
	prepare(root, null, 0);
	var maxDepth = 0;
	for (var i = 0; i < nodes.length; i++)
		maxDepth = Math.max(maxDepth, nodes[i].depth);

	// The label as shown: function and file each cut at @max characters.
	function shown(n, max) {
		if (!n.located)
			return clean(n.label, max);
		return clean(n.n, max) + ' (' + clean(n.file, max) + (n.l !== undefined ? ':' + n.l : '') + ')';
	}
	function tooltip(n) {
		var lines = [shown(n, TIP_MAX)];
		lines.push(secs(n.v) + ', ' + pct(n.v, root.v) + ' of all' +
			   (zoomed !== root && n.v <= zoomed.v && n !== zoomed ?
			    ', ' + pct(n.v, zoomed.v) + ' of the zoomed frame' : ''));
		var kinds = Object.keys(n.k).sort(function (a, b) { return n.k[b] - n.k[a]; });
		lines.push('reason: ' + kinds.map(function (k) {
			return k + ' ' + secs(n.k[k]);
		}).join(', '));
		var counts = [];
		if (n.b)
			counts.push(n.b + (n.b === 1 ? ' block' : ' blocks'));
		if (n.s)
			counts.push(n.s + (n.s === 1 ? ' sample' : ' samples'));
		if (counts.length)
			lines.push('count: ' + counts.join(', '));
		if (n.st)
			lines.push('blamed for event-loop stalls: ' + secs(n.st) + ' inside ' + n.sc +
				   (n.sc === 1 ? ' stall' : ' stalls'));
		return lines.join('\n');
	}

	// --- layout ---------------------------------------------------------------
	var top = standalone ? 74 : 26;
	var framesH = (maxDepth + 1) * FH;
	var H = top + framesH + 34;
	svg.setAttribute('width', W);
	svg.setAttribute('height', H);
	svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
	var stale = svg.querySelector('.ht-nojs');
	if (stale)
		stale.parentNode.removeChild(stale);

	var ui = el('g', { class: 'ht-ui' }, svg);
	var resetBtn, searchBtn;
	if (standalone) {
		txt(ui, W / 2, 24, data.title, 'ht-title');
		txt(ui, W / 2, 42, 'hangtrace --what ' + data.what + ': ' + secs(root.v) +
		    ' in all; hover for details, click to zoom', 'ht-subtitle');
		resetBtn = txt(ui, PAD, 24, 'Reset Zoom', 'ht-button ht-hidden');
		resetBtn.setAttribute('id', 'ht-reset');
		searchBtn = txt(ui, W - PAD, 24, 'Search', 'ht-button');
		searchBtn.setAttribute('id', 'ht-search-button');
		searchBtn.setAttribute('text-anchor', 'end');
	} else {
		resetBtn = document.getElementById('ht-reset');
	}

	// legend: the kinds present, by time, then the stall outline
	var legend = el('g', { class: 'ht-legend', id: 'ht-legend' }, ui);
	var ly = top - 12, lx = PAD;
	Object.keys(root.k).sort(function (a, b) { return root.k[b] - root.k[a]; }).forEach(function (k) {
		var g = el('g', { class: 'ht-legend-item', id: 'ht-legend-' + k, 'data-kind': k }, legend);
		el('rect', { x: lx, y: ly - 9, width: 12, height: 11, fill: baseColour(k),
			     class: 'ht-swatch' }, g);
		var label = k + ' ' + secs(root.k[k]);
		txt(g, lx + 16, ly, label);
		lx += 16 + label.length * 6.5 + 14;
	});
	if (root.st) {
		var g = el('g', { class: 'ht-legend-item', id: 'ht-legend-stall' }, legend);
		el('rect', { x: lx, y: ly - 9, width: 12, height: 11, class: 'ht-swatch-stall' }, g);
		txt(g, lx + 16, ly, 'outlined: blamed for event-loop stalls (' + secs(root.st) + ')');
	}

	var framesG = el('g', { id: 'ht-frames' }, svg);
	var details = txt(svg, PAD, top + framesH + 22, ' ', 'ht-details');
	details.setAttribute('id', 'ht-details');
	var matchedT = txt(svg, W - PAD, top + framesH + 22, '', 'ht-details');
	matchedT.setAttribute('id', 'ht-matched');
	matchedT.setAttribute('text-anchor', 'end');
	var matchedHtml = document.getElementById('ht-matched-html');
	var searchInput = document.getElementById('ht-search');

	// --- drawing ----------------------------------------------------------------
	var zoomed = root, term = '';
	function matches(n) {
		return term !== '' && n.label.indexOf(term) >= 0;
	}
	function addFrame(n, x, w, parentOfZoom) {
		var y = top + (maxDepth - n.depth) * FH;
		var cls = 'ht-frame';
		if (parentOfZoom)
			cls += ' ht-parent';
		if (n.st && (n.t === 'f' || n.t === 'r'))
			cls += ' ht-stall';
		if (matches(n))
			cls += ' ht-match';
		var g = el('g', { class: cls, 'data-id': n.id, 'data-ns': n.v,
				  'data-kind': n.kind || '' }, framesG);
		g.setAttribute('data-label', n.label);
		el('title', {}, g).textContent = tooltip(n);
		var fill = n.t === 'f' || n.t === 'r' ? frameColour(n.kind, n.label) : NEUTRAL;
		el('rect', { x: x.toFixed(2), y: y, width: w.toFixed(3), height: FH - 1, rx: 2,
			     fill: fill }, g);
		var chars = Math.floor((w - 6) / 6.6);
		if (chars >= 3) {
			var s = shown(n, 300);
			txt(g, (x + 3).toFixed(2), y + 11.5, s.length <= chars ? s : s.slice(0, chars - 2) + '..');
		}
	}
	function walk(n, x, scale) {
		var w = n.v * scale;
		if (w < MINW)
			return;
		addFrame(n, x, w, false);
		for (var i = 0; i < n.c.length; i++) {
			walk(n.c[i], x, scale);
			x += n.c[i].v * scale;
		}
	}
	function draw() {
		while (framesG.firstChild)
			framesG.removeChild(framesG.firstChild);
		for (var a = zoomed.parent; a; a = a.parent)
			addFrame(a, PAD, W - 2 * PAD, true);
		if (zoomed.v > 0)
			walk(zoomed, PAD, (W - 2 * PAD) / zoomed.v);
		else
			txt(framesG, PAD, top + framesH - 4, 'Nothing was recorded for --what ' + data.what +
			    (data.what !== 'offcpu' && !data.sample_period ? ' (on-CPU sampling was off: --sample-hz 0)' : '') +
			    '.', 'ht-empty');
		if (resetBtn)
			resetBtn.classList.toggle('ht-hidden', standalone && zoomed === root);
	}
	function zoom(n) {
		zoomed = n || root;
		draw();
	}

	// --- search ---------------------------------------------------------------------
	function matchedNs(n) {
		if (matches(n))
			return n.v;	// nested matches are inside this one
		var sum = 0;
		for (var i = 0; i < n.c.length; i++)
			sum += matchedNs(n.c[i]);
		return sum;
	}
	function search(t) {
		term = t || '';
		draw();
		var ns = term ? matchedNs(root) : 0;
		var shown = term ? 'Matched: ' + pct(ns, root.v) + ' (' + secs(ns) + ')' : '';
		matchedT.textContent = shown;
		matchedT.setAttribute('data-matched-ns', ns);
		matchedT.setAttribute('data-term', term);
		if (matchedHtml)
			matchedHtml.textContent = shown;
		if (searchInput && searchInput.value !== term)
			searchInput.value = term;
		if (searchBtn)
			searchBtn.textContent = term ? 'Search: ' + clean(term, 40) : 'Search';
		try {
			var want = term ? '#search=' + encodeURIComponent(term) : '';
			if (location.hash !== want && (want || location.hash))
				history.replaceState(null, '', want || location.pathname + location.search);
		} catch (e) {
			// a page without history (some viewers): the fragment stays as it was
		}
	}
	function fromHash() {
		var m = /(?:^#|&)search=([^&]*)/.exec(location.hash);
		var t = '';
		if (m) {
			try {
				t = decodeURIComponent(m[1]);
			} catch (e) {
				t = m[1];
			}
		}
		if (t !== term)
			search(t);
	}
	function askSearch() {
		var t = window.prompt('Search frames (function, file or line):', term);
		if (t !== null)
			search(t);
	}

	// --- events ---------------------------------------------------------------------
	function frameOf(e) {
		var g = e.target.closest ? e.target.closest('.ht-frame') : null;
		return g ? nodes[+g.getAttribute('data-id')] : null;
	}
	framesG.addEventListener('mouseover', function (e) {
		var n = frameOf(e);
		if (n)
			details.textContent = tooltip(n).split('\n').map(function (s, i) {
				return i ? s : shown(n, 120);
			}).join(' | ');
	});
	framesG.addEventListener('mouseout', function () {
		details.textContent = ' ';
	});
	framesG.addEventListener('click', function (e) {
		var n = frameOf(e);
		if (n)
			zoom(n === zoomed ? root : n);
	});
	if (resetBtn)
		resetBtn.addEventListener('click', function () { zoom(root); });
	if (searchBtn)
		searchBtn.addEventListener('click', askSearch);
	if (searchInput)
		searchInput.addEventListener('input', function () { search(searchInput.value); });
	window.addEventListener('keydown', function (e) {
		if (e.key === 'Escape')
			zoom(root);
		else if ((e.ctrlKey || e.metaKey) && e.key === 'f') {
			e.preventDefault();
			if (searchInput)
				searchInput.focus();
			else
				askSearch();
		}
	});
	window.addEventListener('hashchange', fromHash);

	// --- the stall timeline (HTML report) ---------------------------------------------
	function timeline() {
		var tl = document.getElementById('ht-timeline');
		if (!tl || !data.stalls || !data.stalls.length)
			return;
		// one row per (process, loop thread); with --children the label names the process
		var multi = data.processes > 1;
		var LABEL = multi ? 220 : 170, w = W - 2 * PAD - LABEL;
		var dur = Math.max(data.span || data.duration, 1);
		var rows = [], names = {};
		function rowKey(pid, tid) { return pid + '/' + tid; }
		(data.threads || []).forEach(function (t) { names[rowKey(t.pid, t.tid)] = t.name; });
		data.stalls.forEach(function (s) {
			if (rows.indexOf(rowKey(s.pid, s.tid)) < 0)
				rows.push(rowKey(s.pid, s.tid));
		});
		var h = 10 + rows.length * 24 + 30;
		tl.setAttribute('height', h);
		tl.setAttribute('viewBox', '0 0 ' + W + ' ' + h);
		rows.forEach(function (key, row) {
			var pid = key.split('/')[0], tid = key.split('/')[1], name = names[key] || '';
			var label = txt(tl, PAD, 10 + row * 24 + 15,
					multi ? 'pid ' + pid + ': ' + clean(name, 18) + ' ' + tid :
					clean(name + ' ' + tid, 24));
			label.setAttribute('class', 'ht-row');
			label.setAttribute('data-pid', pid);
			label.setAttribute('data-tid', tid);
			el('title', {}, label).textContent = 'thread ' + tid + ' "' + clean(name, TIP_MAX) +
				'" of process ' + pid;
			el('rect', { x: PAD + LABEL, y: 10 + row * 24 + 2, width: w, height: 18,
				     fill: '#f3f3f3' }, tl);
		});
		var axisY = 10 + rows.length * 24 + 4;
		el('line', { x1: PAD + LABEL, x2: PAD + LABEL + w, y1: axisY, y2: axisY,
			     class: 'ht-axis' }, tl);
		var steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
		var step = steps[steps.length - 1];
		for (var i = 0; i < steps.length; i++)
			if (dur / 1e9 / steps[i] <= 12) {
				step = steps[i];
				break;
			}
		for (var s = 0; s * 1e9 <= dur; s += step) {
			var x = PAD + LABEL + s * 1e9 / dur * w;
			el('line', { x1: x, x2: x, y1: axisY, y2: axisY + 4, class: 'ht-axis' }, tl);
			txt(tl, x, axisY + 16, +s.toFixed(1) + ' s').setAttribute('text-anchor', 'middle');
		}
		data.stalls.forEach(function (st) {
			var row = rows.indexOf(rowKey(st.pid, st.tid)), b = st.blocker;
			var x = PAD + LABEL + st.start / dur * w;
			var bw = Math.max(2, st.dur / dur * w);
			var where = b && b.frame ? b.frame.function + ' (' + b.frame.file +
				(b.frame.line !== null ? ':' + b.frame.line : '') + ')' : null;
			var r = el('rect', { x: x.toFixed(2), y: 10 + row * 24 + 2, width: bw.toFixed(3),
					     height: 18, class: 'ht-bar',
					     fill: b ? baseColour(b.kind) : '#999',
					     'data-start-ns': st.start, 'data-dur-ns': st.dur,
					     'data-pid': st.pid, 'data-tid': st.tid }, tl);
			if (where)
				r.setAttribute('data-frame', where);
			var lines = ['event-loop stall at ' + secs(st.start) + ' for ' + secs(st.dur) +
				     (st.in_progress ? ' (still stalled when tracing ended)' : '') +
				     (multi ? ' in thread ' + st.tid + ' of process ' + st.pid : ''),
				     'blamed on: ' + (b ? b.kind + (b.syscall ? ' (' + b.syscall + ')' : '') +
						      (where ? ' in ' + clean(where, TIP_MAX) : '') :
						      'nothing found')];
			if (st.coro)
				lines.push('running: ' + clean(st.coro, TIP_MAX));
			if (b && b.hint)
				lines.push('hint: ' + b.hint);
			el('title', {}, r).textContent = lines.join('\n');
			if (where)
				r.addEventListener('click', function () {
					search(where);
					svg.scrollIntoView();
				});
		});
	}

	draw();
	timeline();
	fromHash();
	window.hangtrace = { data: data, search: search, zoom: zoom, nodes: nodes };
	svg.setAttribute('data-ready', '1');
})();
