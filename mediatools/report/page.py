"""The report's one HTML page: CSS and JS inline, the data as JSON in a script element.

Nothing is fetched at view time (no fonts, no libraries, no images): it opens from
``file://`` as it is. Lanes are canvases, so a 20-user, 3-hour call (tens of thousands of
turns) draws in milliseconds; hit-testing is a binary search over the same arrays.
Each lane element says how many turn rectangles it drew (``data-drawn``) so a test can
count what the reader sees. ``window.mtReport`` exposes the view for tests and scripting.
"""
from __future__ import annotations

CSS = """
*{box-sizing:border-box}body{font:13px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:10px 16px;background:#263238;color:#fff}header h1{font-size:16px;margin:0 0 2px}
header .sub{opacity:.8;font-size:12px}#bar{display:flex;gap:8px;align-items:center;padding:8px 16px;flex-wrap:wrap}
#bar button{font:inherit;padding:2px 10px}#bar audio{height:32px;min-width:360px}
#view{font-variant-numeric:tabular-nums;color:#555}
#timeline{position:relative;margin:0 16px;border:1px solid #ccc;background:#fff;user-select:none}
.row{display:flex;border-bottom:1px solid #eee;height:30px}.row .name{width:140px;flex:none;padding:4px 6px;
overflow:hidden;text-overflow:ellipsis;white-space:nowrap;border-right:1px solid #ddd;font-size:12px}
.row canvas{flex:1;display:block;width:100%;height:100%;min-width:0}#axis{height:34px}#axis .name{font-size:11px;color:#666}
#overview{height:30px}.lane.overlap .name{color:#b71c1c}#cursor{position:absolute;top:0;bottom:0;width:2px;
background:#e53935;pointer-events:none;display:none}#tip{position:fixed;pointer-events:none;background:#333;color:#fff;
padding:4px 8px;border-radius:3px;font-size:12px;display:none;white-space:pre;z-index:9;max-width:600px}
section{margin:16px}table{border-collapse:collapse;background:#fff}th,td{border:1px solid #ddd;padding:3px 8px;
text-align:right}th{background:#eceff1}td:first-child,th:first-child{text-align:left}
.legend span{display:inline-block;width:12px;height:10px;margin:0 4px 0 10px;vertical-align:middle}
ul.problems{font-family:monospace;font-size:12px}
"""

JS = r"""
(function(){
'use strict';
const D = JSON.parse(document.getElementById('mt-data').textContent);
const COLORS = ['#1e88e5','#43a047','#fb8c00','#8e24aa','#00897b','#f4511e','#3949ab','#c0ca33','#6d4c41','#d81b60'];
const span = Math.max(D.span_ms, 1);
let v0 = 0, v1 = span;
const tl = document.getElementById('timeline'), tip = document.getElementById('tip');
const cursor = document.getElementById('cursor'), audio = document.getElementById('player');
const lanes = Array.from(document.querySelectorAll('.lane'));
const axis = document.querySelector('#axis canvas'), ov = document.querySelector('#overview canvas');
const pad = n => String(n).padStart(2, '0');
function fmtOff(ms){ const s = Math.floor(ms/1000), h = Math.floor(s/3600);
  return (h ? h + ':' + pad(Math.floor(s/60)%60) : Math.floor(s/60)) + ':' + pad(s%60) +
    (v1 - v0 < 20000 ? '.' + String(Math.floor(ms%1000)).padStart(3,'0') : ''); }
function fmtUtc(ms){ const d = new Date(D.origin_ms + ms);
  return pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds()) + 'Z'; }
function fmtDur(ms){ return (ms/1000).toFixed(ms < 10000 ? 2 : 1) + ' s'; }
// arrays are flat [start0, end0, start1, end1, ...] in ms from the origin, sorted
function first(a, t){ let lo = 0, hi = a.length/2; while (lo < hi){ const m = (lo+hi)>>1; if (a[2*m+1] <= t) lo = m+1; else hi = m; } return lo; }
function hit(a, t){ const i = first(a, t); return (i < a.length/2 && a[2*i] <= t && t < a[2*i+1]) ? i : -1; }
function size(c){ const r = c.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(r.width*dpr)), h = Math.max(1, Math.round(r.height*dpr));
  if (c.width !== w || c.height !== h){ c.width = w; c.height = h; } return [w, h]; }
function draw(){
  const k = v1 - v0;
  lanes.forEach(function(el){
    const c = el.querySelector('canvas'), [w, h] = size(c), g = c.getContext('2d'), x = t => (t - v0)/k*w;
    g.clearRect(0, 0, w, h);
    const u = el.dataset.kind === 'overlap' ? null : D.users[+el.dataset.index];
    let drawn = 0;
    if (u){
      const p = u.presence;
      if (p.length){ g.fillStyle = '#fbe9e7';                      // gaps: inside the call, not recorded
        g.fillRect(x(p[0]), h*0.42, x(p[p.length-1]) - x(p[0]), h*0.16); }
      g.fillStyle = '#e3f2fd';
      for (let i = first(p, v0); i < p.length/2 && p[2*i] < v1; i++) g.fillRect(x(p[2*i]), 2, Math.max(1, x(p[2*i+1]) - x(p[2*i])), h-4);
      const t = u.turns; g.fillStyle = COLORS[+el.dataset.index % COLORS.length];
      for (let i = first(t, v0); i < t.length/2 && t[2*i] < v1; i++){
        g.fillRect(x(t[2*i]), 5, Math.max(1, x(t[2*i+1]) - x(t[2*i])), h-10); drawn++; }
      g.fillStyle = '#c62828';
      u.markers.forEach(function(m){ if (m.t < v0 || m.t > v1) return; const X = x(m.t);
        g.beginPath(); g.moveTo(X-5, 0); g.lineTo(X+5, 0); g.lineTo(X, 9); g.fill(); g.fillRect(X-0.5, 0, 1, h); });
    } else {
      const o = D.overlap; g.fillStyle = '#e53935';
      for (let i = first(o, v0); i < o.length/2 && o[2*i] < v1; i++){ g.fillRect(x(o[2*i]), 6, Math.max(1, x(o[2*i+1]) - x(o[2*i])), h-12); drawn++; }
      const s = D.silences; g.fillStyle = 'rgba(0,0,0,.08)';
      for (let i = 0; i < s.length/2; i++) g.fillRect(x(s[2*i]), 0, x(s[2*i+1]) - x(s[2*i]), h);
    }
    el.dataset.drawn = drawn;
  });
  drawAxis(); drawOverview(); moveCursor();
  document.getElementById('view').textContent = fmtOff(v0) + ' – ' + fmtOff(v1) + '  (' + fmtUtc(v0) + ' – ' + fmtUtc(v1) + ')';
}
function drawAxis(){
  const [w, h] = size(axis), g = axis.getContext('2d'), k = v1 - v0, dpr = window.devicePixelRatio || 1;
  g.clearRect(0, 0, w, h); g.fillStyle = '#555'; g.font = (11*dpr) + 'px system-ui,sans-serif';
  const steps = [100,200,500,1e3,2e3,5e3,1e4,15e3,3e4,6e4,12e4,3e5,6e5,9e5,18e5,36e5,72e5];
  const step = steps.find(s => k/s <= w/(90*dpr)) || 72e5;
  for (let t = Math.ceil(v0/step)*step; t <= v1; t += step){ const X = (t - v0)/k*w;
    g.fillRect(X, 0, 1, 5*dpr); g.fillText(fmtOff(t), X+3*dpr, 14*dpr); g.fillText(fmtUtc(t), X+3*dpr, 28*dpr); }
}
function drawOverview(){
  const [w, h] = size(ov), g = ov.getContext('2d'), n = D.users.length || 1;
  g.clearRect(0, 0, w, h);
  D.users.forEach(function(u, j){ g.fillStyle = COLORS[j % COLORS.length]; const y = j*h/n, hh = Math.max(1, h/n - 1);
    for (let i = 0; i < u.turns.length; i += 2) g.fillRect(u.turns[i]/span*w, y, Math.max(1, (u.turns[i+1]-u.turns[i])/span*w), hh); });
  g.fillStyle = 'rgba(38,50,56,.18)'; g.strokeStyle = '#263238';
  g.fillRect(v0/span*w, 0, Math.max(2, (v1-v0)/span*w), h); g.strokeRect(v0/span*w, 0.5, Math.max(2, (v1-v0)/span*w), h-1);
}
function setView(a, b){ const k = Math.min(span, Math.max(200, b - a)); a = Math.max(0, Math.min(a, span - k)); v0 = a; v1 = a + k; draw(); }
function zoom(f, at){ at = at === undefined ? (v0+v1)/2 : at; setView(at - (at - v0)*f, at + (v1 - at)*f); }
function timeAt(el, ev){ const r = el.getBoundingClientRect(); return v0 + (ev.clientX - r.left)/r.width*(v1 - v0); }
function moveCursor(){
  if (!audio){ return; }
  const t = audio.currentTime*1000 + (D.mix ? D.mix.offset_ms : 0), c = lanes[0] && lanes[0].querySelector('canvas');
  if (!c || t < v0 || t > v1){ cursor.style.display = 'none'; return; }
  const r = c.getBoundingClientRect(), base = tl.getBoundingClientRect();
  cursor.style.left = (r.left - base.left + (t - v0)/(v1 - v0)*r.width) + 'px'; cursor.style.display = 'block';
}
function playAt(ms){ if (!audio) return false; audio.currentTime = Math.max(0, (ms - D.mix.offset_ms)/1000);
  const p = audio.play(); if (p && p.catch) p.catch(function(){}); moveCursor(); return true; }
function describe(el, t){
  if (el.dataset.kind === 'overlap'){ const i = hit(D.overlap, t);
    return i < 0 ? null : 'overlap ' + fmtOff(D.overlap[2*i]) + ' – ' + fmtOff(D.overlap[2*i+1]) + ' (' + fmtDur(D.overlap[2*i+1] - D.overlap[2*i]) + ')'; }
  const u = D.users[+el.dataset.index], k = (v1 - v0)/el.querySelector('canvas').getBoundingClientRect().width;
  const m = u.markers.find(m => Math.abs(m.t - t) <= 6*k);
  if (m) return m.code + ': ' + m.file + '\n' + m.message;
  const i = hit(u.turns, t);
  if (i >= 0) return u.uid + ' speaks ' + fmtOff(u.turns[2*i]) + ' – ' + fmtOff(u.turns[2*i+1]) + ' (' + fmtDur(u.turns[2*i+1] - u.turns[2*i]) + ')\nUTC ' + fmtUtc(u.turns[2*i]) + (audio ? '\nclick to play from here' : '');
  const p = hit(u.presence, t);
  return p >= 0 ? u.uid + ' present, silent' : u.uid + ' not recorded here (gap)';
}
let drag = null;
lanes.forEach(function(el){
  const c = el.querySelector('canvas');
  c.addEventListener('mousemove', function(ev){
    if (drag){ const r = c.getBoundingClientRect(), dt = (ev.clientX - drag.x)/r.width*(drag.v1 - drag.v0);
      if (Math.abs(ev.clientX - drag.x) > 3){ drag.moved = true; setView(drag.v0 - dt, drag.v1 - dt); } return; }
    const text = describe(el, timeAt(c, ev));
    if (!text){ tip.style.display = 'none'; return; }
    tip.textContent = text; tip.style.display = 'block'; tip.style.left = (ev.clientX + 12) + 'px'; tip.style.top = (ev.clientY + 14) + 'px';
  });
  c.addEventListener('mouseleave', function(){ tip.style.display = 'none'; });
  c.addEventListener('mousedown', function(ev){ drag = {x: ev.clientX, v0: v0, v1: v1, moved: false}; });
  c.addEventListener('click', function(ev){
    if (drag && drag.moved){ drag = null; return; } drag = null;
    if (el.dataset.kind === 'overlap') return;
    const u = D.users[+el.dataset.index], i = hit(u.turns, timeAt(c, ev));
    if (i >= 0){ el.dataset.clicked = u.turns[2*i]; playAt(u.turns[2*i]); }
  });
  c.addEventListener('wheel', function(ev){ ev.preventDefault(); zoom(ev.deltaY > 0 ? 1.25 : 0.8, timeAt(c, ev)); }, {passive: false});
});
window.addEventListener('mouseup', function(){ if (drag && !drag.moved) return; drag = null; });
let ovDrag = false;
function ovMove(ev){ const r = ov.getBoundingClientRect(), t = (ev.clientX - r.left)/r.width*span, k = v1 - v0; setView(t - k/2, t + k/2); }
ov.addEventListener('mousedown', function(ev){ ovDrag = true; ovMove(ev); });
ov.addEventListener('mousemove', function(ev){ if (ovDrag) ovMove(ev); });
window.addEventListener('mouseup', function(){ ovDrag = false; });
document.getElementById('zin').onclick = function(){ zoom(0.5); };
document.getElementById('zout').onclick = function(){ zoom(2); };
document.getElementById('zall').onclick = function(){ setView(0, span); };
document.addEventListener('keydown', function(ev){ if (ev.key === '+' || ev.key === '=') zoom(0.5); else if (ev.key === '-') zoom(2); else if (ev.key === '0') setView(0, span); });
if (audio){ audio.addEventListener('timeupdate', moveCursor); audio.addEventListener('seeked', moveCursor);
  (function tick(){ if (!audio.paused) moveCursor(); requestAnimationFrame(tick); })(); }
window.addEventListener('resize', draw);
window.mtReport = {data: D, view: function(){ return [v0, v1]; }, setView: setView, playAt: playAt, draw: draw};
draw();
window.mtReportReady = performance.now();
document.body.dataset.ready = '1';
})();
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; media-src 'self' file: data: blob:; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{css}</style></head>
<body>
<header><h1>{title}</h1><div class="sub">{subtitle}</div></header>
<div id="bar"><button id="zin" title="zoom in (+)">+</button><button id="zout" title="zoom out (-)">&minus;</button>
<button id="zall" title="whole call (0)">whole call</button><span id="view"></span>{player}
<span class="legend"><span style="background:#1e88e5"></span>speech<span style="background:#e3f2fd"></span>present
<span style="background:#fbe9e7"></span>gap<span style="background:#e53935"></span>overlap<span style="background:#c62828;width:4px"></span>problem</span></div>
<div id="timeline">
<div class="row" id="overview"><div class="name">overview</div><canvas></canvas></div>
<div class="row" id="axis"><div class="name">offset<br>UTC</div><canvas></canvas></div>
{lanes}
<div id="cursor"></div></div>
<div id="tip"></div>
<section><h2>Talk time</h2>{table}</section>
{problems}
<script id="mt-data" type="application/json">{data}</script>
<script>{js}</script>
</body></html>
"""
